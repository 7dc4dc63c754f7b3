"""Exactly-once: the retry and DLQ writes and the source offsets in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.errors import KafkaRefused
from orders_tui.kafka.delivery import ProducerFailed, TransactionAborted, Transactional
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.tuning import POLL_TIMEOUT

SLOW_COMMIT_GRACE = 5.0  # a transaction's commit still not done after this is a failure
# The client's timeout for a commit the loop does not wait on (it goes on consuming).
BACKGROUND_CALL_TIMEOUT = 1.0


class ExactlyOnceCheckpoint(Checkpoint):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self._in_commit: list[TopicPartition] = []  # offsets of the transaction committing
        self._in_commit_letters = 0  # the letters the commit covers (the first ones)
        self._letters_logged = 0  # of the letters, already in the outcome log
        self._unsettled_since: float | None = None  # the first of checkpoints not settled

    @property
    def _delivery(self) -> Transactional:
        return self.state.delivery

    def new_delivery(
        self,
        new_producer: Callable[..., Producer],
        on_refused: Callable[[KafkaError, Message], None],
        on_error: Callable[[KafkaError], None],
        on_stats: Callable[[str], None],
    ) -> Transactional:
        state = self.state
        transactional_id = f"orders-tui-{state.config.group}-{state.instance_id}"
        return Transactional(
            state.settings,
            transactional_id,
            on_refused,
            on_error,
            state.interrupt,
            new_producer,
            on_stats=on_stats,
        )

    def track_written(self, tracker: PartitionOffsets, offset: int) -> None:
        tracker.track_done(offset)  # durable with the offsets, in one transaction

    def _settle(self, timeout: float, give_up: float, wait: bool) -> bool:
        state, delivery = self.state, self._delivery
        if state.down_since is not None:
            return False  # a coordinator request now could block for good (see delivery)
        if delivery.committing or delivery.blocked:
            offsets = self._in_commit  # the commit begun goes on
        else:
            offsets = self.changed_offsets()
            if not offsets and not state.letters:
                return True
            # This commit covers the letters written so far; those written while it
            # runs are held by the delivery for the next transaction.
            self._in_commit, self._in_commit_letters = offsets, len(state.letters)
            self.outcomes.dead_lettered(state.letters[self._letters_logged :])
            self._letters_logged = len(state.letters)
            self.outcomes.write()
            if not wait:  # not waited on: the client may take as long as a commit needs
                timeout = max(timeout, BACKGROUND_CALL_TIMEOUT)
        try:
            settled = delivery.settle(offsets, state.consumer, timeout, give_up, wait)
        except TransactionAborted as exc:
            self.rewind(f"the transaction was aborted ({exc})")
            return False
        except ProducerFailed as exc:
            if not state.stopping.is_set():  # stopping: what is not committed comes again
                self.replace_producer(str(exc))
            return False
        except KafkaRefused as exc:
            state.refuse(exc)
            return False
        if delivery.in_flight:
            return False  # still committing: the loop goes on meanwhile
        if not settled:
            state.be_careful()
            now = time.monotonic()
            if self._unsettled_since is None:
                self._unsettled_since = now
            # A commit that only has to wait (a loaded machine, a coordinator finishing
            # a predecessor's abort after a restart) is completed by a later checkpoint:
            # a failure once it lasts.
            slow_only = delivery.waiting and now - self._unsettled_since < SLOW_COMMIT_GRACE
            if not state.interrupt.is_set() and not slow_only:  # a stop completes it
                self.commit_failed(
                    f"the transaction's commit did not complete ({delivery.last_error})"
                )
            return False
        self._unsettled_since = None
        for tp in offsets:
            state.stored[tp.topic, tp.partition] = tp.offset
            state.committed[tp.topic, tp.partition] = tp.offset
        count = self._in_commit_letters
        durable, state.letters = state.letters[:count], state.letters[count:]
        self._letters_logged -= count
        self._in_commit_letters = 0
        self.durable(durable)
        if wait and (state.letters or self.changed_offsets()):
            # What was done while that commit ran: committed too, before this returns.
            return self._settle(timeout, give_up, wait)
        return True

    def forget_writes(self) -> None:
        super().forget_writes()
        self._letters_logged = self._in_commit_letters = 0

    def before_revoke(self, budget: float) -> None:
        self.checkpoint(budget, budget)

    def lost(self, partitions: list[TopicPartition]) -> None:
        # The transaction holds writes for partitions that are gone: abort it, and redo
        # the partitions still held from their committed offsets.
        if self._delivery.abort(POLL_TIMEOUT * 10):
            self.rewind("partitions were lost")
        else:  # replaced by the loop, which rewinds then
            self.state.producer_broken = "partitions were lost and the abort failed"

    def all_committed(self, timeout: float) -> bool:
        return self.checkpoint(timeout)

    def final(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if self.checkpoint(remaining * 0.4, remaining * 0.5):
            return
        self.report_uncommitted()
        if self.state.down_since is None:
            # Left open, it would hold back every read_committed reader of the retry and
            # DLQ topics (other members too) until it times out.
            self._delivery.abort(max(0.1, deadline - time.monotonic()) * 0.5)

    def abandon(self) -> None:
        if self.state.delivery is not None:
            self._delivery.abort(POLL_TIMEOUT * 5)

    def consumer_replaced(self) -> None:
        if not self._delivery.abort(POLL_TIMEOUT * 10):
            self.state.producer_broken = "the consumer was fenced and the abort failed"

    def producer_failed(self, why: str) -> None:
        self.replace_producer(why)
