"""The retry schedule: exponential backoff with jitter, capped."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): base * multiplier**(n-1), capped, then jittered
    down by up to `jitter` of itself so retries of many orders do not line up."""

    base: float = 0.5
    multiplier: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not all(math.isfinite(x) for x in (self.base, self.multiplier, self.cap)):
            raise ValueError("backoff delays must be finite numbers: an infinite one never retries")
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff delays cannot be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")

    def ceiling(self, retry: int) -> float:
        return min(self.cap, self.base * self.multiplier ** (retry - 1))

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(retry)
        return ceiling * (1.0 - self.jitter * (rng or random).random())
