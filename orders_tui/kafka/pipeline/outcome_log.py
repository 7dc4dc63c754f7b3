"""The outcome log (`--outcomes`): one record per finished order, written before the
offsets that cover it are committed."""

from __future__ import annotations

from collections.abc import Callable

from orders_tui.domain.order import Order
from orders_tui.kafka.dlq import header_text
from orders_tui.kafka.events import OrderState
from orders_tui.kafka.pipeline.records import Finished, Letter


class OutcomeLog:
    def __init__(self, write: Callable[[list[Finished]], None] | None) -> None:
        self._write = write
        self.enabled = write is not None
        self.failed = False  # a write failed: nothing is committed from then on
        self._finished: list[Finished] = []

    def finish(
        self,
        partition: int,
        offset: int,
        order: Order | None,
        key: bytes | None,
        outcome: OrderState,
        attempts: int,
        error_type: str = "",
    ) -> None:
        if self.enabled:  # only an outcome log needs these records
            self._finished.append(
                Finished(
                    partition,
                    offset,
                    order.orderId if order else header_text(key),
                    outcome,
                    attempts,
                    order.price if order else None,
                    error_type,
                    order.product if order else None,
                )
            )

    def dead_lettered(self, letters: list[Letter]) -> None:
        if not self.enabled:
            return
        for letter in letters:
            if letter.error_type is not None:
                self.finish(
                    letter.partition,
                    letter.source_offset,
                    letter.order,
                    letter.key,
                    OrderState.DEAD_LETTERED,
                    letter.attempts,
                    letter.error_type.value,
                )

    def write(self) -> None:
        if self._finished:
            try:
                self._write(self._finished)
            except BaseException:
                # A closed pipe, a full disk: nothing is committed from now on, so the
                # orders not logged come again in the next run.
                self.failed = True
                raise
            self._finished = []

    def forget(self) -> None:
        """What is not committed is done again: its outcomes are logged then."""
        self._finished = []
