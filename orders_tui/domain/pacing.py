"""Sending at a rate in ticks: what is owed by the schedule, a batch at a time.

Sending what is due at every turn of a loop sends one item at a time at a few thousand a
second, each through machinery built for batches, with a sub-millisecond wait in
between: `produce --rate 3000` used 81 % of a core for what takes 15 % at full speed.
A `Pace` lets what is owed build up to a batch (at least MIN_BATCH items or TICK
seconds' worth, but never more than MAX_TICK seconds' worth: at 10/s an order every
0.1 s, not 32 every 3.2 s) and says how long to wait for the next one. The schedule is
kept from the start, so the average rate is exact whatever the ticks; a late loop sends
what it owes at once (never more than the schedule), so a burst is one batch unless the
loop itself fell behind.
"""

from __future__ import annotations

import math

TICK = 0.01  # seconds between batches at high rates
MIN_BATCH = 32  # items a batch holds at least, ...
MAX_TICK = 0.1  # ... unless that is more than this many seconds' worth
# How long a paced sender's Kafka client holds records before it sends a request (its
# linger): at a request a tick the client's own cost per request was most of the run's
# (9,000 orders at 3,000/s: 0.6 s of CPU against 0.2 s sent at once); with several
# ticks to a request, 0.24 s. The records keep their tick's timestamps.
PACED_LINGER = 0.05


class Pace:
    """`rate` items a second from `start` (a monotonic time), `total` of them if given."""

    def __init__(self, rate: float, start: float, total: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("a rate must be positive")
        self.rate = rate
        self.start = start
        self.total = total
        self.sent = 0
        self.batch = max(math.ceil(rate * TICK), min(MIN_BATCH, math.ceil(rate * MAX_TICK)))

    def owed(self, now: float) -> int:
        """How many to send now: all the schedule owes by `now` once that is a batch
        (or all that is left of `total`); else 0."""
        owed = math.floor((now - self.start) * self.rate) + 1 - self.sent
        if self.total is not None:
            owed = min(owed, self.total - self.sent)
        return owed if owed >= self._next_batch() else 0

    def sent_now(self, count: int) -> None:
        """`count` were sent (fewer than owed when the sender could not take them all)."""
        self.sent += count

    def wait(self, now: float) -> float:
        """Seconds until the next batch is owed (0 when it is), rounded up to a whole
        millisecond: a Kafka client's poll() waits whole milliseconds, so 0.9 ms was no
        wait at all, and each tick spun for its last millisecond (1 ms of CPU a tick)."""
        due = self.start + (self.sent + self._next_batch() - 1) / self.rate
        return max(0.0, math.ceil((due - now) * 1000 - 1e-6) / 1000)

    @property
    def done(self) -> bool:
        return self.total is not None and self.sent >= self.total

    def _next_batch(self) -> int:
        if self.total is None:
            return self.batch
        return max(1, min(self.batch, self.total - self.sent))
