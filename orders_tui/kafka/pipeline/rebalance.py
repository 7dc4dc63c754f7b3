"""The group's rebalance callbacks (run inside consume(), on the pipeline's thread), and
pausing: which partitions are read."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.tuning import SHUTDOWN_SECONDS


class Rebalance:
    def __init__(self, state: RunState, checkpoint: Checkpoint) -> None:
        self.state = state
        self.checkpoint = checkpoint

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state = self.state
        state.held_since, state.held_said = None, False  # our instance id is ours again
        for tp in partitions:
            state.trackers.setdefault(tp.topic, {})[tp.partition] = PartitionOffsets()
            state.stored.pop((tp.topic, tp.partition), None)
        if state.cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        state.joined = True
        if state.paused and partitions:  # pause state does not survive a rebalance
            consumer.pause(partitions)
        elif partitions:
            # A retry partition paused until its head was due, then lost: it comes back
            # still paused in librdkafka, while the pipeline forgot why (its retries
            # waited for good, silently). Whatever this member holds anew, it reads.
            consumer.resume(partitions)
        state.last_activity = time.monotonic()
        state.reports.status(True)

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Settle and commit what is done, then forget the rest: the next owner resumes
        # from the committed offsets.
        self.checkpoint.before_revoke(SHUTDOWN_SECONDS / 2)
        self._forget(partitions)
        self._release(consumer, partitions)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)
        self.checkpoint.lost(partitions)
        self._release(consumer, partitions)
        self.state.reports.status(False, "partitions lost")

    def _release(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state = self.state
        if state.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()
        state.joined = any(state.trackers.values())
        state.reports.status(True)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        state = self.state
        for topic, partition in {(tp.topic, tp.partition) for tp in partitions}:
            state.trackers.get(topic, {}).pop(partition, None)
            state.stored.pop((topic, partition), None)
            state.waiting.pop((topic, partition), None)

    def apply_pause(self) -> None:
        """A pause or resume asked from another thread, made so."""
        state = self.state
        want = state.want_paused
        if want == state.paused:
            return
        assignment = state.consumer.assignment()
        if want:
            state.consumer.pause(assignment)
        else:
            waiting = state.waiting
            state.consumer.resume(
                [tp for tp in assignment if (tp.topic, tp.partition) not in waiting]
            )
        state.paused = want
        state.reports.status(True)

    def wake_due_retries(self) -> None:
        state = self.state
        if not state.waiting or state.paused:
            return
        now = time.time()
        for key, (due, _) in list(state.waiting.items()):
            if due <= now:
                del state.waiting[key]
                state.consumer.resume([TopicPartition(*key)])
