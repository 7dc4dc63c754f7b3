"""The DLQ pane: entries read from the DLQ topic; enter opens one, r replays it."""

from __future__ import annotations

import time

from orders_tui.domain.failure import short_type
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.ui.panes.table import RowTable

TYPE_STYLES = {"permanent": "red", "retries_exhausted": "yellow", "deserialization": "magenta"}


def entry_key(entry: DlqEntry) -> str:
    return f"{entry.partition}:{entry.offset}"


def clock_time(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) if ms > 0 else "—"


class DlqPane(RowTable):
    BORDER_TITLE = "DLQ"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            [
                ("time", "time", 8),
                ("type", "error_type", 17),
                ("orig", "orig p/off", 10),
                ("reason", "reason", None),
            ],
            **kwargs,
        )
        self.entries: dict[str, DlqEntry] = {}

    def show(self, entry: DlqEntry) -> None:
        key = entry_key(entry)
        self.entries[key] = entry
        _, partition, offset = entry.original
        stamp = entry.header("timestamp")
        self.upsert(
            key,
            (
                clock_time(int(stamp) if stamp.isdigit() else entry.timestamp_ms),
                # A Java class by its simple name: 17 columns cut every `java.lang.…`
                # alike; the entry view (enter) shows the whole name.
                (short_type(entry.error_type) or "?", TYPE_STYLES.get(entry.error_type, "")),
                f"{partition}/{offset}",
                entry.reason,
            ),
        )
        if len(self.entries) > len(self.rows_model) + 100:
            self.entries = {k: self.entries[k] for k in self.rows_model if k in self.entries}

    @property
    def selected(self) -> DlqEntry | None:
        key = self.cursor_key
        return self.entries.get(key) if key else None
