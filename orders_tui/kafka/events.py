"""What the engine reports to a front end: small immutable records, put on a bounded
queue.

The engine never waits for a front end: `EventQueue.put` appends to a deque with a
maximum length, so a UI that falls behind loses the oldest rows, never the engine's time.
The per-order records are NamedTuples: one is made for each order shown, and a
NamedTuple costs a quarter of a frozen dataclass to make.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

ROWS_SHOWN = 500  # what a pane holds: newer rows push older ones out
ROWS_PER_SECOND = 2 * ROWS_SHOWN  # order rows made per second at most, sustained


class OrderState(enum.StrEnum):
    """Where an order stands, as a pane or the outcome log says."""

    PROCESSED = "processed"
    RETRYING = "retrying"
    DEAD_LETTERED = "dead_lettered"
    PRODUCED = "produced"  # seen on the source topic by an observer: its fate is a worker's


class RetryEnd(enum.StrEnum):
    RECOVERED = "recovered"
    EXHAUSTED = "exhausted"


class OrderSeen(NamedTuple):
    """An order's state changed."""

    partition: int
    offset: int
    order_id: str
    product: str
    price: float | None  # None when the value did not decode
    outcome: OrderState
    attempt: int = 1


class RetryScheduled(NamedTuple):
    partition: int
    offset: int
    order_id: str
    attempt: int  # the attempt that failed
    max_attempts: int
    reason: str
    due: float  # time.time() of the next attempt


class RetryFinished(NamedTuple):
    partition: int
    offset: int
    order_id: str
    attempts: int
    outcome: RetryEnd


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Connection state; sent when it changes."""

    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RegistryStatus:
    """Whether the schema registry answers; sent when it changes (a notice says why)."""

    reachable: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a person should read: a DLQ write retried, a replay refused, ..."""

    text: str
    error: bool = False


@dataclass(frozen=True, slots=True)
class EngineEnded:
    """The engine process ended without being asked to: what the dashboard needs is gone.
    `why` says how it ended and what it printed last."""

    why: str


Event = (
    OrderSeen
    | RetryScheduled
    | RetryFinished
    | EngineStatus
    | RegistryStatus
    | Notice
    | EngineEnded
)


class EventQueue:
    """A bounded, thread-safe hand-off from engine threads to a front end."""

    def __init__(self, maxlen: int = 5000) -> None:
        self._events: deque[Event] = deque(maxlen=maxlen)

    def put(self, event: Event) -> None:
        self._events.append(event)  # atomic under the GIL; no lock on the hot path

    def put_all(self, events: list[Event]) -> None:
        self._events.extend(events)  # one C call for a whole snapshot's events

    def drain(self) -> list[Event]:
        """Everything queued so far, oldest first. One thread drains; popleft is atomic,
        so events put meanwhile are kept for the next drain."""
        events = self._events
        return [events.popleft() for _ in range(len(events))]


RETRY_ROWS_PER_SECOND = 200  # orders whose retries a front end follows, at most


class RowBudget:
    """How many order rows are worth making. A token bucket of ROWS_SHOWN rows (a pane's
    worth at once) refilled at ROWS_PER_SECOND: at a human pace every order gets its
    row; under a backlog (1,000 orders a poll, far faster than anyone reads) each poll
    gets its newest few, and the engine does not spend its time on rows nobody sees."""

    def __init__(
        self, per_second: float = ROWS_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = per_second
        self._clock = clock
        self._tokens = float(ROWS_SHOWN)
        self._at = clock()

    def take(self, wanted: int) -> int:
        """How many of `wanted` rows to make now (the newest ones)."""
        now = self._clock()
        self._tokens = min(ROWS_SHOWN, self._tokens + (now - self._at) * self._per_second)
        self._at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted
