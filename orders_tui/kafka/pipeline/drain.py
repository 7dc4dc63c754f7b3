"""Whether the work is done: `--idle-exit`'s drained check, a member that holds nothing
while work waits, and the old shared retry topics read until drained."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaException

from orders_tui.kafka.group_view import GroupView
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.reports import per_partition
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.tuning import POLL_TIMEOUT, SESSION_TIMEOUT_MS

DRAIN_CHECK_EVERY = 1.0
# --idle-exit: how long to wait for partitions held by members that may be dead (their
# session must expire before the partitions move) before saying what is not drained.
DRAIN_WAIT = SESSION_TIMEOUT_MS / 1000 + 5.0
# Holding no partition this long while the group has records waiting is said, and said
# again this often: a member alive and idle with work waiting must not be silent.
IDLE_WITH_WORK_AFTER = SESSION_TIMEOUT_MS / 1000
IDLE_WITH_WORK_EVERY = 30.0
SHARED_RETRIES_CHECK_EVERY = 10.0  # seconds between looks at the old shared retry topics


@dataclass(frozen=True)
class DrainResult:
    """What --idle-exit found: nothing left, or what is left and who holds it."""

    drained: bool
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    owners: dict[tuple[str, int], str] = field(default_factory=dict)

    def describe(self) -> str:
        def name(key: tuple[str, int]) -> str:
            return f"{key[0]}[{key[1]}]"

        others = ", ".join(f"{name(k)} ({v})" for k, v in sorted(self.owners.items()))
        if self.drained:
            return f"left to other live members: {others}" if others else ""
        left = ", ".join(f"{name(k)} lag {n:,}" for k, n in sorted(self.lag.items()))
        held = f"; held by {others}" if others else ""
        return f"not drained: {left}{held}"


class Drain:
    def __init__(self, state: RunState, checkpoint: Checkpoint, group_view: GroupView) -> None:
        self.state = state
        self.checkpoint = checkpoint
        self.group_view = group_view
        self.result: DrainResult | None = None
        self._idle_since: float | None = None
        self._next_check = 0.0
        self._holding_nothing_since: float | None = None
        self._idle_with_work_said = 0.0
        self._shared_checked = 0.0

    def idle_for(self) -> float:
        """How long nothing happened. Joining the group (a member that died may hold
        partitions until its session ends) is not idleness: messages may be on their way.
        Nor is a retry waiting."""
        state = self.state
        if not state.joined or state.waiting or state.letters or state.paused:
            state.last_activity = time.monotonic()
        return time.monotonic() - state.last_activity

    def not_idle(self) -> None:
        self._idle_since = None

    def drained_enough(self) -> bool:
        """Idle: stop once the group has committed the end of every partition; wait up
        to DRAIN_WAIT for partitions other members hold, then say what is left."""
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if now < self._next_check:
            return False
        self._next_check = now + DRAIN_CHECK_EVERY
        if not self.checkpoint.all_committed(POLL_TIMEOUT * 5):
            return False
        try:
            lag = self.group_lag()
        except KafkaException:
            return False  # the broker did not answer: ask again
        if not lag:
            self.result = DrainResult(True)
            return True
        if now - self._idle_since < DRAIN_WAIT:
            return False
        owners = self.group_view.owners(self.state.instance_id)
        held = {key: owners[key] for key in lag if key in owners}
        others_hold_all = bool(held) and set(held) == set(lag)
        self.result = DrainResult(others_hold_all, lag, held)
        return True

    def group_lag(
        self, topics: list[str] | None = None, committed_only: bool = False
    ) -> dict[tuple[str, int], int]:
        """Records not committed by the group, per partition of every topic it reads (or
        of `topics`; see GroupView.lag)."""
        state = self.state
        topics = state.topics if topics is None else topics
        return self.group_view.lag(topics, state.consumer.committed, committed_only)

    def say_if_idle_with_work(self) -> None:
        """Holding no partition for longer than a session while the group has records
        waiting: said every IDLE_WITH_WORK_EVERY seconds, with what waits."""
        state = self.state
        now = time.monotonic()
        if any(state.trackers.values()) or state.paused or state.down_since is not None:
            # Holding partitions, paused, or cut off (the outage has its own line, and
            # asking a broker that is away would hold the loop, and a stop, for seconds).
            self._holding_nothing_since = None
            return
        if self._holding_nothing_since is None:
            self._holding_nothing_since = now
        held_nothing_for = now - self._holding_nothing_since
        if held_nothing_for < IDLE_WITH_WORK_AFTER or (
            now - self._idle_with_work_said < IDLE_WITH_WORK_EVERY
        ):
            return
        self._idle_with_work_said = now
        try:
            lag = self.group_lag()
        except KafkaException:
            return  # the outage has its own line
        if lag:
            waiting = sum(lag.values())
            state.reports.report(
                "idle",
                f"holding no partition for {held_nothing_for:.0f} s "
                f"while {waiting:,} records wait in group "
                f"{state.config.group!r} ({per_partition(lag)}): other "
                "members hold them, or the group is not balancing "
                "(orders-tui watch shows who holds what)",
                error=True,
            )

    def shared_retries_waiting(self, shared: list[str]) -> list[str]:
        """Of the old shared retry topics (`<topic>-retry-N`), those that hold records this
        group has not consumed: read until drained, so an upgrade strands no retry."""
        if not shared:
            return []
        state = self.state
        waiting = sorted({topic for topic, _ in self.group_lag(shared, committed_only=True)})
        if waiting:
            state.reports.report(
                "draining",
                f"draining this group's retries from the old "
                f"shared retry topics ({', '.join(waiting)}); new retries "
                f"go to {state.retry_topics[0]} and on",
            )
        return waiting

    def shared_retries_drained(self) -> bool:
        """True once the old shared retry topics being read are drained (no longer read)."""
        state = self.state
        if time.monotonic() - self._shared_checked < SHARED_RETRIES_CHECK_EVERY:
            return False
        self._shared_checked = time.monotonic()
        try:
            left = self.group_lag(state.draining, committed_only=True)
        except KafkaException:
            return False  # asked again at the next check
        if left:
            return False
        drained, state.draining = state.draining, []
        state.reports.report(
            "drained",
            f"the old shared retry topics are drained ({', '.join(drained)}): no longer read",
        )
        return True
