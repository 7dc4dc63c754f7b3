"""Whether each of a pipeline's consumers is in its group, as the broker sees it.

After a broker restart on a loaded machine, a consumer whose session had timed out
sometimes never joined its group again: librdkafka reported nothing more, the consumer
went on polling an empty assignment, and the group went on without it (one run in eight
under load: the retry topic it read was left to no member, 84 orders waiting for good).
The pipeline cannot see this from the client, so it asks the broker, without waiting
for the answer: a description of the group is asked every CHECK_EVERY seconds, and read
on a later turn of the loop once it has come.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

CHECK_EVERY = 5.0  # seconds between two descriptions of the group
MISSING_AFTER = 30.0  # seconds a consumer may be out of its group (joining) before it is said


class MemberWatch:
    """Which of `expected` group.instance.ids the broker has not had in the group for
    longer than MISSING_AFTER seconds, as the descriptions `describe` asks for say."""

    def __init__(self, describe: Callable[[], Future]) -> None:
        self._describe = describe
        self._expected: frozenset[str] = frozenset()
        self._missing_since: dict[str, float] = {}
        self._asked: Future | None = None
        self._next_check = 0.0

    def expect(self, instance_ids: set[str], now: float) -> None:
        """The consumers just (re)subscribed with these ids: they are given MISSING_AFTER
        to join from now."""
        self._expected = frozenset(instance_ids)
        self._missing_since.clear()
        self._asked = None
        self._next_check = now + CHECK_EVERY

    def pause(self) -> None:
        """Not watching for now (the broker is away, or the pipeline is stopping): what
        was seen missing is forgotten."""
        self._missing_since.clear()
        self._asked = None

    def missing(self, now: float) -> list[str]:
        """The ids out of the group for longer than MISSING_AFTER, as far as the latest
        answer says; asks again every CHECK_EVERY seconds. Never waits."""
        if self._asked is not None and self._asked.done():
            self._read(self._asked, now)
            self._asked = None
        if self._asked is None and now >= self._next_check and self._expected:
            self._next_check = now + CHECK_EVERY
            try:
                self._asked = self._describe()
            except Exception:  # asked again next time
                self._asked = None
        return sorted(i for i, since in self._missing_since.items() if now - since > MISSING_AFTER)

    def _read(self, answer: Future, now: float) -> None:
        try:
            members = answer.result(0).members
        except Exception:  # no answer this time: nothing learnt
            return
        present = {m.group_instance_id for m in members}
        for instance_id in self._expected:
            if instance_id in present:
                self._missing_since.pop(instance_id, None)
            else:
                self._missing_since.setdefault(instance_id, now)
