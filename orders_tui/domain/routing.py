"""Where a record goes, decided without Kafka: its bytes, its attempt and the rules in;
`Processed`, `Retry`, `DeadLetter` or `WaitForRegistry` out. The pipeline only carries
the decision out (see kafka/pipeline)."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from typing import NamedTuple

from orders_tui.domain.codec import DecodeError, WriterSchemaUnavailable
from orders_tui.domain.order import Order
from orders_tui.domain.retry import Backoff
from orders_tui.domain.rules import OK, FailureRules, Outcome, Verdict


class ErrorType(enum.StrEnum):
    """Why an order was dead-lettered (the DLQ record's `error_type`)."""

    PERMANENT = "permanent"
    RETRIES_EXHAUSTED = "retries_exhausted"
    DESERIALIZATION = "deserialization"


class Processed(NamedTuple):
    order: Order


class Retry(NamedTuple):
    """Try again after `delay` seconds, as attempt `attempt + 1`."""

    order: Order
    attempt: int  # the attempt that failed
    delay: float
    reason: str


class DeadLetter(NamedTuple):
    error_type: ErrorType
    reason: str
    attempt: int
    order: Order | None  # None: the value did not decode


class WaitForRegistry(NamedTuple):
    """The writer schema cannot be fetched now: not undecodable, so read it again later."""

    reason: str


Route = Processed | Retry | DeadLetter | WaitForRegistry

# tuple.__new__ skips a NamedTuple's Python-level __new__: one Processed is made per order.
_processed = tuple.__new__


class Routing:
    """The decision for one record's attempt. `decode` turns bytes into an Order (raising
    DecodeError or WriterSchemaUnavailable); `rng` jitters the retry delays."""

    def __init__(
        self,
        decode: Callable[[bytes | None], Order],
        rules: FailureRules,
        backoff: Backoff,
        rng: random.Random | None = None,
    ) -> None:
        self.decode = decode
        self.rules = rules
        self.backoff = backoff
        self._rng = rng or random.Random()

    def route(self, value: bytes | None, attempt: int) -> Route:
        """Attempt `attempt` (1 is the first delivery) of the record holding `value`."""
        try:
            order = self.decode(value)
        except DecodeError as exc:
            return DeadLetter(ErrorType.DESERIALIZATION, str(exc), attempt, None)
        except WriterSchemaUnavailable as exc:
            return WaitForRegistry(str(exc))
        verdict = self.rules.check(order, attempt)
        if verdict is OK:
            return _processed(Processed, (order,))
        return self.after_failure(order, attempt, verdict)

    def after_failure(self, order: Order, attempt: int, verdict: Verdict) -> Retry | DeadLetter:
        """Attempt `attempt` failed: tried again after a backoff while attempts are left
        and the failure is transient; dead-lettered otherwise."""
        if verdict.outcome is Outcome.TRANSIENT:
            if attempt < self.rules.max_attempts:
                return Retry(order, attempt, self.backoff.delay(attempt, self._rng), verdict.reason)
            reason = f"retries exhausted after {attempt} attempts: {verdict.reason}"
            return DeadLetter(ErrorType.RETRIES_EXHAUSTED, reason, attempt, order)
        return DeadLetter(ErrorType.PERMANENT, verdict.reason, attempt, order)
