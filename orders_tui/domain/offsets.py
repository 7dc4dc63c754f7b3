"""Which source offset may be committed: the contiguous prefix of done offsets.

Orders finish out of order (one waits for a retry while later ones are processed), but a
committed offset N means "everything below N is done". So a partition commits up to its
oldest order that is not done yet, never past it.
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """Offsets arrive in ascending order. Only the orders not done yet are held (a
    processed order costs one assignment): everything below the oldest of them is done,
    and with none pending, everything up to the newest offset seen."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # consumed, not done; ascending
        self._done_early: set[int] = set()  # pending ones done while an older one was not
        self._newest: int | None = None

    @property
    def has_pending(self) -> bool:
        """Whether an order consumed here is not done yet (it holds the commit back)."""
        return bool(self._pending)

    @property
    def committable(self) -> int | None:
        if self._pending:
            return self._pending[0]
        return None if self._newest is None else self._newest + 1

    def track(self, offset: int) -> None:
        """An order at `offset` was consumed and is not done yet."""
        self._pending.append(offset)
        self._newest = offset

    def track_done(self, offset: int) -> None:
        """An order consumed and finished at once (the common case)."""
        self._newest = offset

    def done(self, offset: int) -> None:
        """A tracked order is done."""
        pending = self._pending
        if pending and pending[0] == offset:
            pending.popleft()
            done_early = self._done_early
            while pending and pending[0] in done_early:
                done_early.discard(pending.popleft())
        else:
            self._done_early.add(offset)
