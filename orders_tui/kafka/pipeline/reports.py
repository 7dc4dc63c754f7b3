"""What the pipeline says: lines for whoever watches (stderr headless, notices in the
dashboard) and its connection status, each kind at a bounded rate."""

from __future__ import annotations

import time
from collections.abc import Callable

from orders_tui.kafka.events import EngineStatus, EventQueue, Notice
from orders_tui.kafka.pipeline.tuning import REPORT_EVERY


def per_partition(counts: dict[tuple[str, int], int], what: str = "") -> str:
    """`orders[0] 1,234 back, ...`: a count for each partition that has one."""
    return ", ".join(f"{t}[{p}] {n:,}{what}" for (t, p), n in sorted(counts.items()) if n > 0)


class Reports:
    def __init__(self, events: EventQueue | None, on_report: Callable[[str], None] | None) -> None:
        self.events = events
        self.on_report = on_report
        self._last: dict[str, float] = {}

    def report(self, kind: str, text: str, error: bool = False) -> bool:
        """At most one line of a kind every REPORT_EVERY seconds, except a rewind: each is
        said, as it tells what is done again. True when it was said."""
        now = time.monotonic()
        if kind != "rewind" and now - self._last.get(kind, -REPORT_EVERY) < REPORT_EVERY:
            return False
        self._last[kind] = now
        if self.on_report is not None:
            self.on_report(text)
        self.notice(text, error)
        return True

    def again(self, kind: str) -> None:
        """The next line of this kind is said however soon it comes."""
        self._last.pop(kind, None)

    def status(self, connected: bool, detail: str = "") -> None:
        if self.events is not None:
            self.events.put(EngineStatus(connected, detail))

    def notice(self, text: str, error: bool = False) -> None:
        if self.events is not None:
            self.events.put(Notice(text, error))
