"""At-least-once: the retry and DLQ writes flushed, then the source offsets stored for
the consumer's auto-commit (every 0.1 s) or committed at once where it matters."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.errors import KafkaRefused
from orders_tui.kafka.delivery import AtLeastOnce, Delivery
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.tuning import CONSUME_BATCH, POLL_TIMEOUT


class AtLeastOnceCheckpoint(Checkpoint):
    def new_delivery(
        self,
        new_producer: Callable[..., Producer],
        on_refused: Callable[[KafkaError, Message], None],
        on_error: Callable[[KafkaError], None],
        on_stats: Callable[[str], None],
    ) -> Delivery:
        return AtLeastOnce(
            self.state.settings, on_refused, on_error, new_producer, on_stats=on_stats
        )

    def track_written(self, tracker: PartitionOffsets, offset: int) -> None:
        tracker.track(offset)  # done once the record is acknowledged

    def _settle(self, timeout: float, give_up: float, wait: bool) -> bool:
        state = self.state
        letters = state.letters
        if letters:
            if not state.delivery.settle([], state.consumer, timeout, give_up) or state.fatal:
                return False  # some still in flight: a later checkpoint confirms them
            state.letters = []
            for letter in letters:
                letter.tracker.done(letter.offset)
            self.outcomes.dead_lettered(letters)
            self.durable(letters)
        self.outcomes.write()
        self._store(self.changed_offsets())
        return True

    def _store(self, offsets: list[TopicPartition]) -> None:
        if not offsets:
            return
        for tp in offsets:
            self.state.stored[tp.topic, tp.partition] = tp.offset
        try:
            self.state.consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            # _STATE: the partition was revoked meanwhile; its new owner re-reads.
            if exc.args[0].code() != KafkaError._STATE:
                raise

    def commit_sync(self) -> bool:
        """Commit the stored offsets now (the broker is known to answer: a rebalance, or
        idle and healthy)."""
        try:
            results = self.state.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return True
            self.on_commit(exc.args[0], [])  # counted, reported, a fencing noticed
            return False
        self.on_commit(None, results or [])
        return all(tp.error is None for tp in results or [])

    def _commit_now(self, deadline: float) -> bool:
        """While stopping (partitions paused): commit the stored offsets and wait for the
        answer until `deadline`; a synchronous commit has no limit."""
        state = self.state
        before = state.stats.commit_failures
        wanted = dict(state.stored)
        try:
            state.consumer.commit(asynchronous=True)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return True
            self.on_commit(exc.args[0], [])  # counted, reported, a fencing noticed
            return False
        while time.monotonic() < deadline:
            state.consumer.consume(CONSUME_BATCH, POLL_TIMEOUT)  # serves the callback
            if state.stats.commit_failures > before:
                return False
            if all(state.committed.get(k, -1) >= v for k, v in wanted.items()):
                return True
        return False

    def before_revoke(self, budget: float) -> None:
        if self.checkpoint(budget, budget):
            self.commit_sync()

    def lost(self, partitions: list[TopicPartition]) -> None:
        # Their next owner (this member again, after an outage, say) starts at the
        # group's commit: what was done since comes again.
        named = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
        self.state.reports.report(
            "rewind",
            f"partitions lost ({named}): their records since "
            "the last commit (0.1 s at most) are consumed again",
            error=True,
        )

    def all_committed(self, timeout: float) -> bool:
        return self.checkpoint(timeout) and self.commit_sync()

    def final(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if not (
            self.checkpoint(remaining * 0.4, remaining * 0.5)
            and self._commit_now(deadline - remaining * 0.3)
        ):
            self.report_uncommitted()

    def producer_failed(self, why: str) -> None:
        self.state.refuse(KafkaRefused(f"the producer failed for good: {why}"))
