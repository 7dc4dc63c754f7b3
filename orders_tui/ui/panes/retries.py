"""The Retries pane: each failing order's attempts, the countdown, the final outcome."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text

from orders_tui.kafka.events import RetryFinished, RetryScheduled
from orders_tui.ui.panes.table import BoundedTable
from orders_tui.ui.text import literal

FINAL_STYLES = {"recovered": "green", "exhausted": "bold red"}


class RetriesPane(BoundedTable):
    BORDER_TITLE = "Retries"

    def __init__(self, clock: Callable[[], float], max_rows: int = 500, **kwargs: object) -> None:
        super().__init__(
            [
                ("order", "orderId", 13),
                ("attempt", "attempt", 7),
                ("next", "next in", 9),
                ("reason", "reason", None),
            ],
            max_rows=max_rows,
            **kwargs,
        )
        self._clock = clock
        self._pending: dict[str, RetryScheduled] = {}

    def show(self, event: RetryScheduled | RetryFinished) -> None:
        key = f"{event.partition}:{event.offset}"
        if isinstance(event, RetryScheduled):
            self._pending[key] = event
            self.upsert(key, self._cells(event, self._countdown(event)))
            return
        scheduled = self._pending.pop(key, None)
        final = Text(event.outcome, style=FINAL_STYLES.get(event.outcome, ""))
        max_attempts = scheduled.max_attempts if scheduled else "?"
        reason = scheduled.reason if scheduled else ""
        self.upsert(
            key,
            (literal(event.order_id[:13]), f"{event.attempts}/{max_attempts}", final,
             literal(reason)),
        )  # fmt: skip

    def tick(self) -> None:
        """Refresh the countdowns of orders still waiting."""
        for key, event in list(self._pending.items()):
            if key not in self.rows_model:
                del self._pending[key]
                continue
            self.upsert(key, self._cells(event, self._countdown(event)))

    def _countdown(self, event: RetryScheduled) -> Text:
        left = max(0.0, event.due - self._clock())
        return Text(f"{left:4.1f}s", style="yellow")

    def _cells(self, event: RetryScheduled, next_in: Text) -> tuple:
        return (
            literal(event.order_id[:13]),
            f"{event.attempt}/{event.max_attempts}",
            next_in,
            literal(event.reason),
        )
