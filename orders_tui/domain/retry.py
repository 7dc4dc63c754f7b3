"""The retry schedule (exponential backoff with jitter) and a timer heap of due retries."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): base * multiplier**(n-1), capped, then jittered
    down by up to `jitter` of itself so retries of many orders do not line up."""

    base: float = 0.5
    multiplier: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff delays cannot be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")

    def ceiling(self, retry: int) -> float:
        return min(self.cap, self.base * self.multiplier ** (retry - 1))

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(retry)
        return ceiling * (1.0 - self.jitter * (rng or random).random())


class RetryQueue(Generic[T]):
    """Items waiting for their retry, earliest due first. Heap entries are plain
    (due, seq, item) tuples, compared in C; seq breaks ties, so items never are."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, item: T, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), item))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Iterator[T]:
        heap = self._heap
        while heap and heap[0][0] <= now:
            yield heapq.heappop(heap)[2]

    def discard(self, predicate: Callable[[T], bool]) -> list[T]:
        """Remove and return the items for which predicate is true."""
        dropped = [entry[2] for entry in self._heap if predicate(entry[2])]
        if dropped:
            self._heap = [entry for entry in self._heap if not predicate(entry[2])]
            heapq.heapify(self._heap)
        return dropped
