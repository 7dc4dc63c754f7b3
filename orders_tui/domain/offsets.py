"""Which source offset may be committed: the contiguous prefix of done offsets.

Orders finish out of order (one waits for a retry while later ones are processed), but a
committed offset N means "everything below N is done". So a partition commits up to its
oldest order that is not done yet, never past it.
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    def __init__(self) -> None:
        self._in_flight: deque[int] = deque()  # offsets in the order they were consumed
        self._done: set[int] = set()  # finished offsets that are not yet at the front
        self._next: int | None = None  # the offset to commit: all below it are done

    def __len__(self) -> int:
        """Orders consumed but not yet done."""
        return len(self._in_flight) - len(self._done)

    @property
    def committable(self) -> int | None:
        return self._next

    def track(self, offset: int) -> None:
        """An order at `offset` was consumed and is not done yet."""
        self._in_flight.append(offset)

    def done(self, offset: int) -> None:
        in_flight = self._in_flight
        if in_flight and in_flight[0] == offset:
            in_flight.popleft()
            self._next = offset + 1
            done = self._done
            while in_flight and in_flight[0] in done:
                head = in_flight.popleft()
                done.discard(head)
                self._next = head + 1
        elif not in_flight:
            # Fast path: the order was done as soon as it was consumed.
            self._next = offset + 1
        else:
            self._done.add(offset)

    def track_done(self, offset: int) -> None:
        """An order consumed and finished at once (the common case)."""
        if self._in_flight:
            self._in_flight.append(offset)
            self.done(offset)
        else:
            self._next = offset + 1
