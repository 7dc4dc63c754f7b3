"""Running aggregates over processed orders, pipeline counters and a per-second rate."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace


class RateMeter:
    """Events per second, bucketed by whole second, over a sliding window."""

    def __init__(self, window: int = 60) -> None:
        self._buckets: deque[list[int]] = deque(maxlen=window)  # [second, count]

    def add(self, count: int, now: float) -> None:
        second = int(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += count
        else:
            buckets.append([second, count])

    def copy(self) -> RateMeter:
        """A meter of its own with the same counts, for a reader on another thread (one
        iterating a deque another thread appends to gets "deque mutated during iteration").
        The copy itself must not overlap an `add`: take it under the writer's lock, or
        copy again on RuntimeError."""
        copied = RateMeter(self._buckets.maxlen or 60)
        copied._buckets.extend(map(list, self._buckets))
        return copied

    def history(self, now: float, seconds: int = 60) -> list[int]:
        """Counts for each of the last `seconds` whole seconds, oldest first (the current,
        unfinished second excluded)."""
        end = int(now)
        counts = {second: count for second, count in self._buckets}
        return [counts.get(s, 0) for s in range(end - seconds, end)]

    def rate(self, now: float, seconds: int = 5) -> float:
        recent = self.history(now, seconds)
        return sum(recent) / seconds


@dataclass
class PipelineStats:
    """What the consumer did. Prices aggregate processed orders only."""

    consumed: int = 0
    processed: int = 0
    retry_attempts: int = 0
    recovered: int = 0
    total_price: float = 0.0
    min_price: float = math.inf
    max_price: float = -math.inf
    dead_lettered_by_type: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    rate: RateMeter = field(default_factory=RateMeter)
    connection_losses: int = 0
    seconds_disconnected: float = 0.0
    commit_failures: int = 0
    registry_outages: int = 0
    schemas_seen: dict[str, int] = field(default_factory=dict)  # label -> records read
    foreign_retries_skipped: int = 0  # retry records of another group, left alone

    def snapshot(self) -> PipelineStats:
        """A copy for a reader on another thread: its counters, rate and tallies its own,
        while the pipeline's thread goes on counting in this one."""
        while True:
            try:
                return replace(
                    self,
                    dead_lettered_by_type=Counter(self.dead_lettered_by_type),
                    rate=self.rate.copy(),
                    schemas_seen=dict(self.schemas_seen),
                )
            except RuntimeError:  # "mutated during iteration": changed mid-copy, copy again
                continue

    def add_processed(self, price: float, recovered: bool, now: float) -> None:
        self.processed += 1
        self.total_price += price
        if price < self.min_price:
            self.min_price = price
        if price > self.max_price:
            self.max_price = price
        if recovered:
            self.recovered += 1
        self.rate.add(1, now)

    def add_processed_batch(self, prices: list[float], now: float) -> None:
        """Orders processed at their first attempt, counted in one step (the hot path)."""
        if not prices:
            return
        self.processed += len(prices)
        self.total_price += math.fsum(prices)
        self.min_price = min(self.min_price, min(prices))
        self.max_price = max(self.max_price, max(prices))
        self.rate.add(len(prices), now)

    def add_dead_lettered(self, error_types: Iterable[str] | Mapping[str, int]) -> None:
        """Count dead-lettered orders: an error type each, or a count per error type."""
        self.dead_lettered_by_type.update(error_types)

    @property
    def finished(self) -> int:
        """Orders whose fate is settled: processed or dead-lettered."""
        return self.processed + self.dead_lettered

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead_lettered_by_type.values())

    @property
    def average_price(self) -> float:
        return self.total_price / self.processed if self.processed else 0.0

    def summary(self, now: float) -> dict[str, object]:
        elapsed = max(now - self.started, 1e-9) if self.started else 0.0
        return {
            "consumed": self.consumed,
            "processed": self.processed,
            "dead_lettered": self.dead_lettered,
            "dead_lettered_by_type": dict(sorted(self.dead_lettered_by_type.items())),
            "retry_attempts": self.retry_attempts,
            "recovered": self.recovered,
            "total_price": round(self.total_price, 2),
            "average_price": round(self.average_price, 2),
            "min_price": self.min_price if self.processed else None,
            "max_price": self.max_price if self.processed else None,
            "seconds": round(elapsed, 3),
            # Orders finished (processed or dead-lettered), not source records read: a
            # run that only drained retries read none and reported 0.0.
            "orders_per_second": round(self.finished / elapsed, 1) if elapsed else 0.0,
            "connection_losses": self.connection_losses,
            "seconds_disconnected": round(self.seconds_disconnected, 1),
            "commit_failures": self.commit_failures,
            "registry_outages": self.registry_outages,
            "schemas_seen": dict(self.schemas_seen),
            "foreign_retries_skipped": self.foreign_retries_skipped,
        }
