"""The pipeline: poll -> decode -> rules -> retry / DLQ -> offsets, on one thread.

At-least-once. Offsets are stored with `store_offsets` (auto-commit sends them every
few seconds) only up to the oldest order of a partition that is not done yet; an order is
done when it was processed, or when the broker acknowledged its DLQ record. Retries wait
in an in-memory timer heap while later orders keep flowing; after a crash the source
offset was not committed, so the order is re-delivered and its attempts start again.

DLQ acknowledgements are confirmed a batch at a time, as Kafka Streams does before it
commits: every CONFIRM_EVERY seconds the DLQ producer is flushed, and when nothing is left
in its queue every record written so far was acknowledged. Successful delivery reports
are switched off (`delivery.report.only.error`), and the one callback for failures is
the producer's: a callback per record made each `produce()` 2 us slower (4.7 against 2.7).
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from orders_tui.domain.codec import DecodeError, decode
from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.domain.order import Order
from orders_tui.domain.retry import Backoff, RetryQueue
from orders_tui.domain.rules import OK, FailureRules, Outcome
from orders_tui.domain.stats import PipelineStats
from orders_tui.errors import KafkaRefused, UserError
from orders_tui.kafka.config import DEFAULT_GROUP, KafkaSettings, make_client
from orders_tui.kafka.dlq import ErrorType, FailureHeaders, header_text
from orders_tui.kafka.events import (
    EngineStatus,
    EventQueue,
    Notice,
    OrderSeen,
    RetryFinished,
    RetryScheduled,
    RowBudget,
)
from orders_tui.kafka.producer import make_producer

CONSUME_BATCH = 1000
CONSUMER_DEFAULTS: dict[str, object] = {
    "auto.offset.reset": "earliest",
    "enable.auto.offset.store": False,  # we store an offset once its order is done
    "enable.auto.commit": True,  # ... and auto-commit sends what was stored
    "auto.commit.interval.ms": 1000,
    # How long librdkafka waits to fetch again when its local queue is full. Its default,
    # 1 s, starves a fast consumer (about 110k orders/s here); 0 makes the fetcher spin
    # on a core whenever the consumer is behind (1 CPU second per 200k orders, taken from
    # the broker and the pipeline on a 2-core machine).
    "fetch.queue.backoff.ms": 5,
}
POLL_TIMEOUT = 0.1  # seconds: how quickly a stop request or a due retry is noticed
RETRY_ROWS_PER_SECOND = 200  # orders whose retries a front end follows, at most
CONFIRM_EVERY = 0.1  # seconds between DLQ flushes that confirm what was dead-lettered
DLQ_PRODUCER: dict[str, object] = {
    # Retried until the broker takes it; the source offset stays uncommitted until then.
    "message.timeout.ms": 0,
    "delivery.report.only.error": True,
    # The flush sends what is left; meanwhile bigger batches cost the broker less.
    "linger.ms": 50,
}
SHUTDOWN_FLUSH_SECONDS = 1.5  # the dashboard quits within 2 s


@dataclass(frozen=True, slots=True)
class Finished:
    """What happened to one order, for an outcome log (`--outcomes`)."""

    partition: int
    offset: int
    order_id: str
    outcome: str  # processed | dead_lettered
    attempts: int
    price: float | None
    error_type: str = ""


@dataclass(slots=True)
class _Pending:
    """An order waiting for its next attempt."""

    msg: Message
    order: Order
    attempts: int
    tracker: PartitionOffsets
    reason: str = ""
    shown: bool = False  # its retries reach a front end (decided at its first failure)


class _DeadLetter(NamedTuple):
    """A DLQ record on its way: what confirming it needs to finish its order. It keeps
    no headers: ten objects a record held until the flush cost 1 us a record in garbage
    collection."""

    msg: Message
    order: Order | None
    tracker: PartitionOffsets
    error_type: ErrorType
    attempts: int


_new_letter = tuple.__new__


@dataclass
class EngineConfig:
    group: str = DEFAULT_GROUP
    rules: FailureRules = field(default_factory=FailureRules)
    backoff: Backoff = field(default_factory=Backoff)


class Pipeline:
    """Owns one consumer and one DLQ producer; `run` is called on the thread that owns
    them. Other threads may call `pause`, `resume` and `stop` and read `stats`."""

    def __init__(
        self,
        settings: KafkaSettings,
        config: EngineConfig | None = None,
        events: EventQueue | None = None,
        on_finished: Callable[[list[Finished]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or EngineConfig()
        self.events = events
        self.on_finished = on_finished
        self.stats = PipelineStats()
        self.paused = False
        self._want_paused = False
        self._stop = threading.Event()
        self._trackers: dict[int, PartitionOffsets] = {}
        self._stored: dict[int, int] = {}
        self._retries: RetryQueue[_Pending] = RetryQueue()
        self._failure_headers = FailureHeaders(self.config.group, settings.topic)
        # Rows for a front end: only what it can show.
        self._rows = RowBudget()
        self._retry_rows = RowBudget(per_second=RETRY_ROWS_PER_SECOND)
        self._letters: list[_DeadLetter] = []  # written to the DLQ, not yet confirmed
        self._last_confirm = 0.0
        self._finished: list[Finished] = []
        self._rng = random.Random()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._last_activity = time.monotonic()
        self._fatal: UserError | None = None
        self._joined = False  # holds an assignment (possibly empty) from the group

    # ---- requests from other threads: they only set state ----

    def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        self._want_paused = True

    def resume(self) -> None:
        self._want_paused = False

    @property
    def pause_requested(self) -> bool:
        return self._want_paused

    # ---- the loop ----

    def run(self, idle_exit: float | None = None) -> PipelineStats:
        """Consume until `stop()`, or until nothing arrived and nothing was pending for
        `idle_exit` seconds. Commits what is done before returning."""
        settings = self.settings
        self._consumer = consumer = make_client(
            Consumer,
            settings.client_config(
                **{**CONSUMER_DEFAULTS, "group.id": self.config.group, "error_cb": self._on_error}
            ),
        )
        self._producer = make_producer(settings, **DLQ_PRODUCER, on_delivery=self._on_dlq_failed)
        consumer.subscribe(
            [settings.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.stats.started = time.time()
        self._last_activity = time.monotonic()
        # Everything allocated so far (modules, clients, caches) lives as long as the
        # process: moved out of the garbage collector's way, its full passes stop walking
        # it again and again under load (+15-30 % orders/s in the dashboard's engine).
        gc.freeze()
        try:
            while not self._stop.is_set():
                self._apply_pause()
                timeout = POLL_TIMEOUT
                next_due = self._retries.next_due()
                if next_due is not None:
                    timeout = max(0.0, min(timeout, next_due - time.monotonic()))
                messages = consumer.consume(CONSUME_BATCH, timeout)
                if messages:
                    self._handle_batch(messages)
                self._run_due_retries()
                self._producer.poll(0)
                if self._letters and time.monotonic() - self._last_confirm >= CONFIRM_EVERY:
                    self._confirm_dead_letters(POLL_TIMEOUT)
                self._store_done_offsets()
                if idle_exit is not None and self._idle_for() >= idle_exit:
                    break
        finally:
            self._shutdown()
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _idle_for(self) -> float:
        # Joining the group (after a crash it can wait out the dead member's session) is
        # not idleness: messages may be on their way.
        if not self._joined or self._retries or self._letters or self.paused:
            self._last_activity = time.monotonic()
        return time.monotonic() - self._last_activity

    def _handle_batch(self, messages: list[Message]) -> None:
        now = time.time()
        self._failure_headers.stamp()
        rules = self.config.rules
        check = rules.check
        trackers = self._trackers
        events = self.events
        stats = self.stats
        log_outcomes = self.on_finished is not None
        first_try_prices: list[float] = []
        consumed = 0
        show_from = self._rows_from(len(messages))
        for index, msg in enumerate(messages):
            if msg.error() is not None:
                self._on_message_error(msg.error())
                continue
            partition, offset = msg.partition(), msg.offset()
            tracker = trackers.get(partition)
            if tracker is None:  # revoked while the batch was in hand: the next owner has it
                continue
            consumed += 1
            try:
                order = decode(msg.value())
            except DecodeError as exc:
                tracker.track(offset)
                self._dead_letter(msg, None, tracker, str(exc), ErrorType.DESERIALIZATION, 1)
                continue
            verdict = check(order, 1)
            if verdict is OK:
                tracker.track_done(offset)
                first_try_prices.append(order.price)
                if log_outcomes:
                    self._finish(msg, order, "processed", 1)
                if index >= show_from:
                    events.put(
                        OrderSeen(partition, offset, order.orderId, order.product, order.price,
                                  "processed")
                    )  # fmt: skip
                continue
            tracker.track(offset)
            if verdict.outcome is Outcome.PERMANENT:
                self._dead_letter(msg, order, tracker, verdict.reason, ErrorType.PERMANENT, 1)
            else:
                self._schedule_retry(_Pending(msg, order, 1, tracker, verdict.reason))
        stats.consumed += consumed
        stats.add_processed_batch(first_try_prices, now)
        self._last_activity = time.monotonic()

    def _rows_from(self, count: int) -> int:
        """Of `count` orders, the index from which a front end gets rows (the newest)."""
        return count - (self._rows.take(count) if self.events is not None else 0)

    def _finish(self, msg: Message, order: Order | None, outcome: str, attempts: int,
                error_type: str = "") -> None:  # fmt: skip
        if self.on_finished is not None:  # only an outcome log needs these records
            self._finished.append(
                Finished(
                    msg.partition(),
                    msg.offset(),
                    order.orderId if order else header_text(msg.key()),
                    outcome,
                    attempts,
                    order.price if order else None,
                    error_type,
                )
            )

    def _schedule_retry(self, pending: _Pending) -> None:
        backoff = self.config.backoff
        delay = backoff.delay(pending.attempts, self._rng)
        self._retries.push(pending, time.monotonic() + delay)
        if self.events is None:
            return
        if pending.attempts == 1:
            pending.shown = self._retry_rows.take(1) == 1
        if pending.shown:
            msg, order = pending.msg, pending.order
            self.events.put(
                OrderSeen(msg.partition(), msg.offset(), order.orderId, order.product,
                          order.price, "retrying", pending.attempts)
            )  # fmt: skip
            self.events.put(
                RetryScheduled(msg.partition(), msg.offset(), order.orderId, pending.attempts,
                               self.config.rules.max_attempts, pending.reason, time.time() + delay)
            )  # fmt: skip

    def _run_due_retries(self) -> None:
        if self.paused or not self._retries:
            return
        rules = self.config.rules
        now = time.time()
        self._failure_headers.stamp()
        for pending in self._retries.pop_due(time.monotonic()):
            pending.attempts += 1
            self.stats.retry_attempts += 1
            msg, order = pending.msg, pending.order
            verdict = rules.check(order, pending.attempts)
            if verdict.outcome is Outcome.OK:
                pending.tracker.done(msg.offset())
                self.stats.add_processed(order.price, recovered=True, now=now)
                self._finish(msg, order, "processed", pending.attempts)
                self._retry_finished(pending, "recovered")
                if pending.shown:
                    self.events.put(
                        OrderSeen(msg.partition(), msg.offset(), order.orderId, order.product,
                                  order.price, "processed", pending.attempts)
                    )  # fmt: skip
            elif verdict.outcome is Outcome.TRANSIENT and pending.attempts < rules.max_attempts:
                pending.reason = verdict.reason
                self._schedule_retry(pending)
            else:
                error_type = (
                    ErrorType.RETRIES_EXHAUSTED
                    if verdict.outcome is Outcome.TRANSIENT
                    else ErrorType.PERMANENT
                )
                reason = verdict.reason
                if error_type is ErrorType.RETRIES_EXHAUSTED:
                    reason = f"retries exhausted after {pending.attempts} attempts: {reason}"
                self._retry_finished(pending, "exhausted")
                self._dead_letter(msg, order, pending.tracker, reason, error_type,
                                  pending.attempts)  # fmt: skip
            self._last_activity = time.monotonic()

    def _retry_finished(self, pending: _Pending, outcome: str) -> None:
        if pending.shown:
            msg = pending.msg
            self.events.put(
                RetryFinished(msg.partition(), msg.offset(), pending.order.orderId,
                              pending.attempts, outcome)
            )  # fmt: skip

    def _dead_letter(
        self,
        msg: Message,
        order: Order | None,
        tracker: PartitionOffsets,
        reason: str,
        error_type: ErrorType,
        attempts: int,
    ) -> None:
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (a hot path)
        self._letters.append(_new_letter(_DeadLetter, (msg, order, tracker, error_type, attempts)))
        self._produce_dlq(
            msg.value(), msg.key(), self._failure_headers(msg, reason, error_type, attempts)
        )

    def _produce_dlq(self, value: bytes | None, key: bytes | None, headers: list) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(self.settings.dlq_topic, value, key, headers=headers)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _on_dlq_failed(self, err: KafkaError, _: Message) -> None:
        """A DLQ record failed for good. The producer retries without a time limit, so
        this is a refusal (too large, not authorised) or a time limit set with -X. Stop
        with its source offset uncommitted: after a fix, a restart re-delivers it."""
        self._notice(f"DLQ write failed: {err.str()}", error=True)
        self._fatal = KafkaRefused(
            f"a DLQ record for {self.settings.dlq_topic!r} failed ({err.str()}); nothing "
            "after it was committed: fix the DLQ topic or its access, then start again"
        )
        self._stop.set()

    def _confirm_dead_letters(self, timeout: float) -> None:
        """Flush the DLQ producer; when its queue is empty, every record written so far
        was acknowledged and their source orders are done."""
        assert self._producer is not None
        self._last_confirm = time.monotonic()
        if self._producer.flush(timeout) or self._fatal is not None:
            return  # some still in flight: they are confirmed by a later flush
        letters, self._letters = self._letters, []
        counts: dict[ErrorType, int] = dict.fromkeys(ErrorType, 0)
        for msg, _, tracker, error_type, _ in letters:
            tracker.done(msg.offset())
            counts[error_type] += 1
        self.stats.add_dead_lettered({kind.value: n for kind, n in counts.items() if n})
        if self.on_finished is not None:
            for msg, order, _, error_type, attempts in letters:
                self._finish(msg, order, "dead_lettered", attempts, error_type.value)
        if self.events is not None:
            for msg, order, _, _, attempts in letters[self._rows_from(len(letters)) :]:
                self.events.put(
                    OrderSeen(msg.partition(), msg.offset(),
                              order.orderId if order else header_text(msg.key()),
                              order.product if order else "", order.price if order else None,
                              "dead_lettered", attempts)
                )  # fmt: skip

    def _store_done_offsets(self) -> None:
        if self._finished and self.on_finished is not None:
            # The outcome log is written before the offsets that cover it are stored.
            finished, self._finished = self._finished, []
            self.on_finished(finished)
        to_store = []
        stored = self._stored
        for partition, tracker in self._trackers.items():
            committable = tracker.committable
            if committable is not None and stored.get(partition) != committable:
                stored[partition] = committable
                to_store.append(TopicPartition(self.settings.topic, partition, committable))
        if to_store:
            try:
                self._consumer.store_offsets(offsets=to_store)
            except KafkaException as exc:
                # _STATE: the partition was revoked meanwhile; its new owner re-reads.
                if exc.args[0].code() != KafkaError._STATE:
                    raise

    # ---- rebalance callbacks: they run inside consume(), on this thread ----

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._trackers[tp.partition] = PartitionOffsets()
            self._stored.pop(tp.partition, None)
        consumer.assign(partitions)
        self._joined = True
        if self.paused:  # pause state does not survive a rebalance: apply it again
            consumer.pause(partitions)
        self._last_activity = time.monotonic()
        self._status(True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Finish what can be finished, commit it, and forget the rest: the next owner
        # re-reads from the committed offset.
        self._confirm_dead_letters(SHUTDOWN_FLUSH_SECONDS)
        self._store_done_offsets()
        self._commit()
        self._forget([tp.partition for tp in partitions])
        consumer.unassign()
        self._joined = False
        self._status(True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget([tp.partition for tp in partitions])
        consumer.unassign()
        self._joined = False
        self._status(False, "partitions lost")

    def _forget(self, partitions: list[int]) -> None:
        revoked = set(partitions)
        for p in revoked:
            self._trackers.pop(p, None)
            self._stored.pop(p, None)
        self._retries.discard(lambda pending: pending.msg.partition() in revoked)

    # ---- helpers ----

    def _apply_pause(self) -> None:
        want = self._want_paused
        if want == self.paused:
            return
        assignment = self._consumer.assignment()
        if want:
            self._consumer.pause(assignment)
        else:
            self._consumer.resume(assignment)
        self.paused = want
        self._status(True)

    def _commit(self) -> None:
        try:
            results = self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                self._notice(f"commit failed: {exc.args[0].str()}", error=True)
            return
        for tp in results or []:
            if tp.error is not None:
                self._notice(f"commit of partition {tp.partition} failed: {tp.error.str()}",
                             error=True)  # fmt: skip

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._status(False, error.str())
        elif error.fatal():
            self._notice(f"fatal: {error.str()}", error=True)
            self._fatal = KafkaRefused(f"Kafka error: {error.str()}")
            self._stop.set()

    def _on_message_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise UserError(f"topic {self.settings.topic!r} does not exist")
        self._notice(f"consumer error: {error.str()}", error=True)

    def _status(self, connected: bool, detail: str = "") -> None:
        if self.events is not None:
            self.events.put(EngineStatus(connected, detail))

    def _notice(self, text: str, error: bool = False) -> None:
        if self.events is not None:
            self.events.put(Notice(text, error))

    def _shutdown(self) -> None:
        consumer, producer = self._consumer, self._producer
        try:
            if producer is not None and self._fatal is None:
                self._confirm_dead_letters(SHUTDOWN_FLUSH_SECONDS)
            if consumer is not None and self._trackers:
                self._store_done_offsets()
                self._commit()
        finally:
            if consumer is not None:
                consumer.close()
