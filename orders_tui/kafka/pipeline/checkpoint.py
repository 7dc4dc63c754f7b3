"""Checkpoints: making what was written durable and committing the offsets of what is
done. Each guarantee is a strategy of its own (exactly_once, at_least_once); this is
what they share. Every difference between the two guarantees lives in those two."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.kafka.delivery import Delivery
from orders_tui.kafka.pipeline.client_errors import fenced_instance
from orders_tui.kafka.pipeline.outcome_log import OutcomeLog
from orders_tui.kafka.pipeline.records import Letter
from orders_tui.kafka.pipeline.rows import FrontEndRows
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.tuning import STUCK_AFTER


def _unset(why: str) -> None:
    raise RuntimeError("wired by the pipeline before its run")


class Checkpoint:
    def __init__(self, state: RunState, outcomes: OutcomeLog, rows: FrontEndRows) -> None:
        self.state = state
        self.outcomes = outcomes
        self.rows = rows
        self.last = 0.0  # when the last checkpoint was tried (monotonic)
        # Recovery's, wired by the pipeline: back to the group's commits, and a new producer.
        self.rewind: Callable[[str], None] = _unset
        self.replace_producer: Callable[[str], None] = _unset

    def checkpoint(self, timeout: float, give_up: float = STUCK_AFTER, wait: bool = True) -> bool:
        """Make what was written durable and commit (or store) the offsets of what is
        done. The outcome log is written before the offsets that cover it. True when
        everything so far is settled. `give_up` bounds a transactional call that ignores
        its timeout. Without `wait` a commit may be left running while the loop goes on
        (exactly-once: the writes made meanwhile join the next transaction)."""
        self.last = time.monotonic()
        state = self.state
        if state.fatal is not None or state.consumer is None or state.producer_broken:
            return False
        if self.outcomes.failed:
            return False
        return self._settle(timeout, give_up, wait)

    # ---- what each guarantee does its own way ----

    def _settle(self, timeout: float, give_up: float, wait: bool) -> bool:
        raise NotImplementedError

    def new_delivery(
        self,
        new_producer: Callable[..., Producer],
        on_refused: Callable[[KafkaError, Message], None],
        on_error: Callable[[KafkaError], None],
        on_stats: Callable[[str], None],
    ) -> Delivery:
        """How this guarantee writes: a producer with the callbacks given."""
        raise NotImplementedError

    def track_written(self, tracker: PartitionOffsets, offset: int) -> None:
        """A retry or DLQ record was written for the record at `offset`."""
        raise NotImplementedError

    def before_revoke(self, budget: float) -> None:
        """Partitions are about to go: settle and commit what is done."""
        raise NotImplementedError

    def lost(self, partitions: list[TopicPartition]) -> None:
        """Partitions were lost (already forgotten): their work since the last commit
        comes again, here or at their next owner."""
        raise NotImplementedError

    def all_committed(self, timeout: float) -> bool:
        """Everything done so far settled and committed (for --idle-exit)."""
        raise NotImplementedError

    def final(self, deadline: float) -> None:
        """The last checkpoint, before a stop, done by `deadline` (monotonic)."""
        raise NotImplementedError

    def abandon(self) -> None:
        """The run ends on a fatal error: nothing more is committed."""

    def consumer_replaced(self) -> None:
        """A new consumer takes over: what was written for the old one is not committed."""

    def producer_failed(self, why: str) -> None:
        """The producer failed for good."""
        raise NotImplementedError

    # ---- shared ----

    def commit_offsets(self) -> list[TopicPartition]:
        """For each partition held: where the group may resume. Before the oldest order
        not done yet; at a waiting retry head; else the consumer's position (which, unlike
        the last offset + 1, steps over a transaction's commit marker)."""
        state = self.state
        tps = state.held()
        if not tps:
            return []
        offsets = []
        for tp in state.consumer.position(tps):
            key = (tp.topic, tp.partition)
            tracker = state.trackers[tp.topic][tp.partition]
            if key in state.waiting:
                offset = state.waiting[key][1]
            elif tracker.has_pending or tp.offset < 0:
                offset = tracker.committable
            else:
                offset = tp.offset
            if offset is not None and offset >= 0:
                offsets.append(TopicPartition(tp.topic, tp.partition, offset))
        return offsets

    def changed_offsets(self) -> list[TopicPartition]:
        stored = self.state.stored
        return [
            tp for tp in self.commit_offsets() if stored.get((tp.topic, tp.partition)) != tp.offset
        ]

    def forget_writes(self) -> None:
        """What was written and not committed is done again (a rewind, a new consumer)."""
        self.state.letters = []
        self.outcomes.forget()

    def durable(self, letters: list[Letter]) -> None:
        """Dead letters are counted and shown once durable."""
        dead = [letter for letter in letters if letter.error_type is not None]
        if not dead:
            return
        counts: dict[str, int] = {}
        for letter in dead:
            counts[letter.error_type.value] = counts.get(letter.error_type.value, 0) + 1
        self.state.stats.add_dead_lettered(counts)
        self.rows.dead_lettered(dead)

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The consumer's commit callback: auto-commit's and our own commits' results."""
        state = self.state
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            self.commit_failed(error.str())
            if fenced_instance(error):
                state.fenced = error.str()  # no fatal error follows: the consumer just stops
            return
        for tp in partitions:
            if tp.error is not None:
                self.commit_failed(f"{tp.topic}[{tp.partition}]: {tp.error.str()}")
                if fenced_instance(tp.error):
                    state.fenced = tp.error.str()
            elif tp.offset >= 0:
                state.committed[tp.topic, tp.partition] = tp.offset

    def commit_failed(self, why: str) -> None:
        self.state.be_careful()
        self.state.stats.commit_failures += 1
        self.state.reports.report("commit", f"commit failed: {why}; it is tried again", error=True)

    def report_uncommitted(self) -> None:
        committed = self.state.committed
        behind = {}
        for tp in self.commit_offsets():
            key = (tp.topic, tp.partition)
            if key not in committed:
                behind[key] = "since this run started"
            elif tp.offset > committed[key]:
                behind[key] = f"{tp.offset - committed[key]:,}"
        if not behind and not self.state.letters:
            return
        parts = ", ".join(f"{t}[{p}] {n}" for (t, p), n in sorted(behind.items()))
        text = (
            f"could not commit before stopping: the records after the last commit "
            f"({parts or 'retry and DLQ writes in flight'}) will be consumed again"
        )
        self.state.reports.again("uncommitted")
        self.state.reports.report("uncommitted", text, error=True)
