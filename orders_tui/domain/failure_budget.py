"""Giving up on a recovery that keeps failing: at most `allowed` recoveries within a
sliding `window` of seconds; one more means the cause will not go away by itself (another
pipeline uses our instance id, say), and the run ends saying so."""

from __future__ import annotations


class FailureBudget:
    def __init__(self, allowed: int, window: float = 300.0) -> None:
        self.allowed = allowed
        self.window = window
        self._times: list[float] = []

    def spend(self, now: float) -> bool:
        """Count a failure at `now` (monotonic seconds); False once more than `allowed`
        fell within the window: give up."""
        self._times = [t for t in self._times if now - t < self.window] + [now]
        return len(self._times) <= self.allowed
