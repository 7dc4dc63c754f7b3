"""The Retries pane: each failing order's attempts, the countdown, the final outcome."""

from __future__ import annotations

from collections.abc import Callable

from orders_tui.kafka.events import RetryEnd, RetryFinished, RetryScheduled
from orders_tui.ui.panes.table import TRIM_SLACK, RowTable

FINAL_STYLES = {RetryEnd.RECOVERED: "green", RetryEnd.EXHAUSTED: "bold red"}


class RetriesPane(RowTable):
    BORDER_TITLE = "Retries"

    def __init__(self, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(
            [
                ("order", "orderId", 13),
                ("attempt", "attempt", 7),
                ("next", "next in", 9),
                ("reason", "reason", None),
            ],
            **kwargs,
        )
        self._clock = clock
        self._pending: dict[str, RetryScheduled] = {}  # until its outcome arrives
        self._counting: set[str] = set()  # of those, the ones whose countdown runs

    def show(self, event: RetryScheduled | RetryFinished) -> None:
        key = f"{event.partition}:{event.offset}"
        if isinstance(event, RetryScheduled):
            pending = self._pending
            pending[key] = event
            self._counting.add(key)
            if len(pending) > self.max_rows + TRIM_SLACK:  # never more than the table holds
                oldest = next(iter(pending))
                del pending[oldest]
                self._counting.discard(oldest)
            self.upsert(key, self._cells(event, self._countdown(event)))
            return
        scheduled = self._pending.pop(key, None)
        self._counting.discard(key)
        final = (str(event.outcome), FINAL_STYLES.get(event.outcome, ""))
        max_attempts = scheduled.max_attempts if scheduled else "?"
        reason = scheduled.reason if scheduled else ""
        self.upsert(
            key,
            (event.order_id, f"{event.attempts}/{max_attempts}", final, reason),
        )

    def tick(self) -> None:
        """Refresh the countdowns of orders still waiting; one that reached `due` stays
        so until its outcome arrives (a row less to redraw each tick)."""
        for key in list(self._counting):
            event = self._pending.get(key)
            if event is None or key not in self.rows_model:  # trimmed away
                self._pending.pop(key, None)
                self._counting.discard(key)
                continue
            next_in = self._countdown(event)
            if next_in[0] == "due":
                self._counting.discard(key)
            self.upsert(key, self._cells(event, next_in))

    def _countdown(self, event: RetryScheduled) -> tuple[str, str]:
        left = event.due - self._clock()
        if left <= 0:
            return ("due", "bold yellow")  # its worker takes it up as soon as it can
        return (f"{left:4.1f}s", "yellow")

    def _cells(self, event: RetryScheduled, next_in: tuple[str, str]) -> tuple:
        return (event.order_id, f"{event.attempt}/{event.max_attempts}", next_in, event.reason)
