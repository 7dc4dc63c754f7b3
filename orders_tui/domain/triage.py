"""Triage of a DLQ: how many failed, of what, since when, where, and over time.

Reasons are grouped with their numbers taken out ("price 1374.34 is above the threshold
1000.00" and "price 1210.02 is above ..." are one reason, "price # is above the
threshold #"), so a million entries fold into the handful of causes behind them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from orders_tui.domain.failure import Failure

NUMBER_MARK = "#"
BUCKETS = 24  # columns of the over-time bars
# A hex run, or digits with decimals and thousands separators; a sign stays ("-#"), so
# "5.00-50.00" folds to "#-#".
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+(?:[.,]\d+)*")


def normalised_reason(reason: str) -> str:
    """The reason with every number (and hex run) replaced by #."""
    return _NUMBER.sub(NUMBER_MARK, reason)


@dataclass
class Group:
    count: int = 0
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, timestamp_ms: int) -> None:
        if self.count:
            if timestamp_ms < self.first_ms:
                self.first_ms = timestamp_ms
            elif timestamp_ms > self.last_ms:
                self.last_ms = timestamp_ms
        else:
            self.first_ms = self.last_ms = timestamp_ms
        self.count += 1


@dataclass
class Triage:
    """Counts of a DLQ (or of what a filter let through), fed one entry at a time."""

    total: Group = field(default_factory=Group)
    by_type: dict[str, Group] = field(default_factory=dict)
    by_reason: dict[tuple[str, str], Group] = field(default_factory=dict)  # (type, reason)
    by_original: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    by_minute: Counter[int] = field(default_factory=Counter)  # minute since the epoch

    def add(self, failure: Failure, timestamp_ms: int) -> None:
        self.total.add(timestamp_ms)
        error_type = failure.error_type or "(none)"
        self.by_type.setdefault(error_type, Group()).add(timestamp_ms)
        reason = normalised_reason(failure.reason) or "(no reason)"
        self.by_reason.setdefault((error_type, reason), Group()).add(timestamp_ms)
        self.by_original[failure.original_topic, failure.original_partition] += 1
        self.by_minute[timestamp_ms // 60_000] += 1

    @property
    def by_partition(self) -> Counter[str]:
        """Counts by original partition, named `topic[partition]` (? when unknown)."""
        return Counter(
            {
                f"{topic or '?'}[{'?' if partition is None else partition}]": count
                for (topic, partition), count in self.by_original.items()
            }
        )

    def over_time(self, buckets: int = BUCKETS) -> tuple[list[int], int, int]:
        """Counts in `buckets` equal spans from the first to the last entry, with the
        span's start and end (ms)."""
        if self.total.first_ms is None or self.total.last_ms is None:
            return [0] * buckets, 0, 0
        start = self.total.first_ms // 60_000
        minutes = self.total.last_ms // 60_000 - start + 1
        counts = [0] * buckets
        for minute, count in self.by_minute.items():
            counts[min(buckets - 1, (minute - start) * buckets // minutes)] += count
        return counts, start * 60_000, (start + minutes) * 60_000

    def to_dict(self) -> dict[str, object]:
        def group(g: Group) -> dict[str, object]:
            return {"count": g.count, "first": g.first_ms, "last": g.last_ms}

        counts, start, end = self.over_time()
        return {
            "total": group(self.total),
            "by_type": {t: group(g) for t, g in _largest(self.by_type)},
            "by_reason": [
                {"type": t, "reason": r, **group(g)} for (t, r), g in _largest(self.by_reason)
            ],
            "by_original_partition": dict(self.by_partition.most_common()),
            "over_time": {"start": start, "end": end, "counts": counts},
        }


def _largest(groups: dict) -> list[tuple[object, Group]]:
    return sorted(groups.items(), key=lambda item: (-item[1].count, str(item[0])))
