"""What the engine reports to a front end: small frozen records, put on a bounded queue.

The engine never waits for a front end: `EventQueue.put` appends to a deque with a
maximum length, so a UI that falls behind loses the oldest rows, never the engine's time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OrderSeen:
    """An order's state changed: processed, retrying or dead_lettered."""

    partition: int
    offset: int
    order_id: str
    product: str
    price: float | None  # None when the value did not decode
    outcome: str
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    partition: int
    offset: int
    order_id: str
    attempt: int  # the attempt that failed
    max_attempts: int
    reason: str
    due: float  # time.time() of the next attempt


@dataclass(frozen=True, slots=True)
class RetryFinished:
    partition: int
    offset: int
    order_id: str
    attempts: int
    outcome: str  # recovered | exhausted


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Connection state; sent when it changes."""

    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a person should read: a DLQ write retried, a replay refused, ..."""

    text: str
    error: bool = False


Event = OrderSeen | RetryScheduled | RetryFinished | EngineStatus | Notice


class EventQueue:
    """A bounded, thread-safe hand-off from engine threads to a front end."""

    def __init__(self, maxlen: int = 5000) -> None:
        self._events: deque[Event] = deque(maxlen=maxlen)

    def put(self, event: Event) -> None:
        self._events.append(event)  # atomic under the GIL; no lock on the hot path

    def drain(self) -> list[Event]:
        """Everything queued so far, oldest first. One thread drains; popleft is atomic,
        so events put meanwhile are kept for the next drain."""
        events = self._events
        return [events.popleft() for _ in range(len(events))]
