"""Rows for a front end: only what it can show (the newest orders of a batch, the
retries of a few orders a second followed to their end)."""

from __future__ import annotations

from orders_tui.domain.order import Order
from orders_tui.kafka.dlq import header_text
from orders_tui.kafka.events import (
    RETRY_ROWS_PER_SECOND,
    EventQueue,
    OrderSeen,
    OrderState,
    RetryEnd,
    RetryFinished,
    RetryScheduled,
    RowBudget,
)
from orders_tui.kafka.pipeline.records import Failed, Letter

FOLLOWED_MAX = 10_000


class FrontEndRows:
    def __init__(self, events: EventQueue | None) -> None:
        self.events = events
        self._rows = RowBudget()
        self._retry_rows = RowBudget(per_second=RETRY_ROWS_PER_SECOND)
        self._followed: dict[tuple[int, int], None] = {}

    def rows_from(self, count: int) -> int:
        """Of `count` orders, the index from which a front end gets rows (the newest)."""
        return count - (self._rows.take(count) if self.events is not None else 0)

    def processed(self, partition: int, offset: int, order: Order) -> None:
        self.events.put(
            OrderSeen(
                partition, offset, order.orderId, order.product, order.price, OrderState.PROCESSED
            )
        )

    def retry_scheduled(
        self,
        failed: Failed,
        order: Order,
        attempts: int,
        max_attempts: int,
        reason: str,
        due: float,
    ) -> None:
        """Shown for the orders a front end follows (decided at their first failure seen
        here, within RETRY_ROWS_PER_SECOND)."""
        if self.events is None or not self._follow(failed):
            return
        self._show(failed, order, OrderState.RETRYING, attempts)
        self.events.put(
            RetryScheduled(
                failed.partition,
                failed.source_offset,
                order.orderId,
                attempts,
                max_attempts,
                reason,
                due,
            )
        )

    def recovered(self, failed: Failed, order: Order, attempt: int) -> None:
        if self._unfollow(failed):
            self._show(failed, order, OrderState.PROCESSED, attempt)
            self.events.put(
                RetryFinished(
                    failed.partition,
                    failed.source_offset,
                    order.orderId,
                    attempt,
                    RetryEnd.RECOVERED,
                )
            )

    def exhausted(self, failed: Failed, order: Order, attempt: int) -> None:
        if self._unfollow(failed):
            self.events.put(
                RetryFinished(
                    failed.partition,
                    failed.source_offset,
                    order.orderId,
                    attempt,
                    RetryEnd.EXHAUSTED,
                )
            )

    def dead_lettered(self, letters: list[Letter]) -> None:
        """Dead letters, shown once durable."""
        if self.events is None:
            return
        for letter in letters[self.rows_from(len(letters)) :]:
            order = letter.order
            self.events.put(
                OrderSeen(
                    letter.partition,
                    letter.source_offset,
                    order.orderId if order else header_text(letter.key),
                    order.product if order else "",
                    order.price if order else None,
                    OrderState.DEAD_LETTERED,
                    letter.attempts,
                )
            )

    def _follow(self, failed: Failed) -> bool:
        key = (failed.partition, failed.source_offset)
        if key in self._followed:
            return True
        if self._retry_rows.take(1) != 1:
            return False
        if len(self._followed) >= FOLLOWED_MAX:
            del self._followed[next(iter(self._followed))]
        self._followed[key] = None
        return True

    def _unfollow(self, failed: Failed) -> bool:
        if self.events is None:
            return False
        return self._followed.pop((failed.partition, failed.source_offset), 0) is None

    def _show(self, failed: Failed, order: Order, outcome: OrderState, attempt: int) -> None:
        self.events.put(
            OrderSeen(
                failed.partition,
                failed.source_offset,
                order.orderId,
                order.product,
                order.price,
                outcome,
                attempt,
            )
        )
