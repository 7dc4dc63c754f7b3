"""Where a replay may send a DLQ entry.

An entry's `original_topic` header is written by whoever wrote the entry: a forged one
named the fleet's control topic (a fleet command), another pipeline's topic, or
`__consumer_offsets`. So a replay sends only to the topics the pipeline reads: its
source topic, and that topic's retry topics (`<topic>-retry`, `<topic>-retry-N`, as
orders-tui and Spring Kafka name them), unless the user names others (`--allow-topic`)
or sends everything to one (`--to`). Kafka's internal topics (`__*`), the DLQ itself, its
redrive log and the fleet's status and control topics are never targets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import StrEnum


class TargetRefused(ValueError):
    """A topic the user named (`--to`, `--allow-topic`) can never be a replay's target."""


class ReplayVerdict(StrEnum):
    """What becomes of a DLQ entry asked to be replayed (by `r`, `R` or `dlq replay`)."""

    SEND = "send"
    AT_MAX_REPLAYS = "at_max_replays"
    NO_TARGET = "no_target"  # no original topic, or it does not exist
    NOT_ALLOWED = "not_allowed"


class ReplayTargets:
    def __init__(
        self,
        source_topic: str,
        protected: Iterable[str],
        allowed: Iterable[str] = (),
        to: str | None = None,
    ) -> None:
        self.source_topic = source_topic
        self.protected = frozenset(protected)
        self.to = to
        self.allowed = frozenset(allowed)
        self._retry = re.compile(re.escape(source_topic) + r"-retry(-\d+)?")
        for topic in [*self.allowed, *([to] if to else [])]:
            why = self._never(topic)
            if why:
                raise TargetRefused(f"{topic!r} cannot be a replay's target: {why}")

    def _never(self, topic: str) -> str:
        if topic.startswith("__"):
            return "it is one of Kafka's internal topics"
        if topic in self.protected:
            return "orders-tui keeps its own records there (the DLQ, the redrive log, the fleet)"
        return ""

    def target(self, original_topic: str | None) -> str | None:
        """Where an entry from `original_topic` goes, or None when it may not be sent."""
        if self.to is not None:
            return self.to
        if not original_topic or self._never(original_topic):
            return None
        if (
            original_topic == self.source_topic
            or original_topic in self.allowed
            or self._retry.fullmatch(original_topic)
        ):
            return original_topic
        return None

    def verdict(
        self,
        original_topic: str | None,
        replay_count: int,
        max_replays: int,
        exists: Callable[[str], bool] = lambda _topic: True,
    ) -> ReplayVerdict:
        """The replay policy, checked in this order wherever an entry is replayed: replayed
        `max_replays` times already; no original topic, or its target does not `exist`;
        a target the user has not allowed."""
        if replay_count >= max_replays:
            return ReplayVerdict.AT_MAX_REPLAYS
        if not original_topic:
            return ReplayVerdict.NO_TARGET
        target = self.target(original_topic)
        if not exists(target or original_topic):
            return ReplayVerdict.NO_TARGET
        if target is None:
            return ReplayVerdict.NOT_ALLOWED
        return ReplayVerdict.SEND

    def partition(
        self, original_topic: str | None, original_partition: int | None, partitions: int
    ) -> int | None:
        """The partition to send to: the original one when the entry goes back to its own
        topic and that partition is still there, else None (by key, as Java's clients
        place keys), so a key stays on its partition and in its order."""
        if (
            self.to is None
            and original_partition is not None
            and 0 <= original_partition < partitions
            and self.target(original_topic) == original_topic
        ):
            return original_partition
        return None

    def refusal(self, original_topic: str | None) -> str:
        """Why an entry from `original_topic` is not sent, or "" when it is."""
        if self.target(original_topic) is not None:
            return ""
        if not original_topic:
            return "the entry has no original topic"
        why = self._never(original_topic)
        if why:
            return f"its original topic {original_topic!r} is never a target: {why}"
        return (
            f"its original topic {original_topic!r} is not the pipeline's ({self.source_topic!r}); "
            "--allow-topic or --to sends there"
        )
