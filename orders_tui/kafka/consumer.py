"""The pipeline: poll -> decode -> rules -> retry topic / DLQ -> offsets, on one thread.

Nothing waits in memory. A transient failure is copied to a retry topic (see
`retry_topics`) and its source offset is then done like any other; the pipeline consumes
the retry topics in the same group and pauses a retry partition until its head record is
due. So a commit never waits on a retry, and a stop, a crash or a rebalance redoes only
what was in flight since the last checkpoint (every COMMIT_EVERY seconds).

How writes and offsets reach Kafka is `delivery`'s business: in one transaction with the
offsets (exactly-once, the default), or flushed then stored for auto-commit
(`--at-least-once`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from orders_tui.domain.codec import DecodeError, WriterSchemaUnavailable
from orders_tui.domain.failure_budget import FailureBudget
from orders_tui.domain.member_status import RUNNING, STOPPED, MemberStatus
from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.domain.order import Order
from orders_tui.domain.rules import OK, Outcome, Verdict
from orders_tui.domain.stats import PipelineStats
from orders_tui.errors import KafkaRefused, UserError
from orders_tui.kafka.access import is_authorization_failure, not_authorized_text
from orders_tui.kafka.clients import KafkaClients
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.consumer_set import ConsumerSet, level_instance_id
from orders_tui.kafka.decoders import make_decoder
from orders_tui.kafka.delivery import (
    COMMIT_EVERY,
    AtLeastOnce,
    Delivery,
    ProducerFailed,
    TransactionAborted,
    Transactional,
    refusal,
    refuses_the_record,
)
from orders_tui.kafka.dlq import ErrorType, FailureHeaders, Headers, header_text
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.events import (
    RETRY_ROWS_PER_SECOND,
    EngineStatus,
    EventQueue,
    Notice,
    OrderSeen,
    OrderState,
    RegistryStatus,
    RetryEnd,
    RetryFinished,
    RetryScheduled,
    RowBudget,
)
from orders_tui.kafka.fleet_member import FleetMember
from orders_tui.kafka.group_view import GroupView
from orders_tui.kafka.member_watch import MISSING_AFTER, MemberWatch
from orders_tui.kafka.membership import MemberSlot
from orders_tui.kafka.retry_topics import (
    NotARetryRecord,
    RetryState,
)
from orders_tui.kafka.status import (
    STATUS_EVERY,
    Command,
    new_status,
)

CONSUME_BATCH = 1000
# For a while after trouble (an outage, lost partitions, an abort, a failed commit) the
# cluster is still settling and another abort is likely, while the backlog is consumed
# at full speed: transactions of 0.1 s then held ~3,000 orders, all done again when one
# was aborted (5,000 of 30,000 after a leader was killed). Meanwhile each small batch is
# its own checkpoint.
CAREFUL_SECONDS = 30.0
CAREFUL_BATCH = 200
CLOSE_WAIT = 10.0  # seconds a replaced consumer is given to close before its successor joins
RELEASE_WAIT = 3.0  # seconds a replaced consumer is given to give its partitions up
# KIP-848: joining again while a killed predecessor's session holds our instance id.
INSTANCE_HELD_RETRY = 5.0
INSTANCE_HELD_FOR = 120.0  # longer than any session the broker allows by default (60 s)
SESSION_TIMEOUT_MS = 10_000
# Settings of the classic group protocol, which KIP-848's consumer protocol refuses.
CLASSIC_PROTOCOL_ONLY = {"partition.assignment.strategy", "session.timeout.ms",
                         "heartbeat.interval.ms"}  # fmt: skip
CONSUMER_DEFAULTS: dict[str, object] = {
    "auto.offset.reset": "earliest",
    # How long librdkafka waits to fetch again when its local queue is full. Its default,
    # 1 s, starves a fast consumer (about 110k orders/s here); 0 makes the fetcher spin
    # on a core whenever the consumer is behind (1 CPU second per 200k orders, taken from
    # the broker and the pipeline on a 2-core machine).
    "fetch.queue.backoff.ms": 5,
    # Incremental rebalances: a partition that stays put keeps being consumed.
    "partition.assignment.strategy": "cooperative-sticky",
    # With static membership a stopped member's partitions wait this long for it to come
    # back before they move (the broker's minimum is 6 s; librdkafka's default 45 s).
    "session.timeout.ms": SESSION_TIMEOUT_MS,
    "statistics.interval.ms": 1000,  # tells when the broker is back after an outage
    # librdkafka notices a deleted topic only at a metadata refresh (every 5 min by
    # default): it then says the topic is gone and the pipeline stops saying so.
    "topic.metadata.refresh.interval.ms": 10_000,
}
POLL_TIMEOUT = 0.1  # seconds: how quickly a stop request or a due retry is noticed
FOLLOWED_MAX = 10_000
# A transactional call that has not returned after this long is given up on (see delivery).
STUCK_AFTER = 5.0
SHUTDOWN_SECONDS = 4.0  # a stop finishes within this, broker or not (`q`: see Engine)
# A record waiting for the schema registry is read again after this long.
REGISTRY_RETRY_SECONDS = 1.0
REPORT_EVERY = 5.0  # seconds between two reports of the same kind (outage, commit failure)
# Holding no partition this long while the group has records waiting is said, and said
# again this often: a member alive and idle with work waiting must not be silent.
IDLE_WITH_WORK_AFTER = SESSION_TIMEOUT_MS / 1000
IDLE_WITH_WORK_EVERY = 30.0
SLOW_COMMIT_GRACE = 5.0  # a transaction's commit still not done after this is a failure
DRAIN_CHECK_EVERY = 1.0
# --idle-exit: how long to wait for partitions held by members that may be dead (their
# session must expire before the partitions move) before saying what is not drained.
DRAIN_WAIT = SESSION_TIMEOUT_MS / 1000 + 5.0
SHARED_RETRIES_CHECK_EVERY = 10.0  # seconds between looks at the old shared retry topics


@dataclass(frozen=True, slots=True)
class Finished:
    """What happened to one order, for an outcome log (`--outcomes`). The coordinates
    are the source record's, also for an order finished from a retry topic."""

    partition: int
    offset: int
    order_id: str
    outcome: OrderState  # processed | dead_lettered
    attempts: int
    price: float | None
    error_type: str = ""
    product: str | None = None  # None when the value did not decode


class _Letter(NamedTuple):
    """A retry or DLQ record on its way: what finishing its order needs once it is
    durable. No headers: held until the checkpoint, they cost garbage-collector time."""

    tracker: PartitionOffsets
    offset: int  # in the topic it was consumed from
    error_type: ErrorType | None  # None: a retry record
    attempts: int
    order: Order | None
    key: bytes | None
    partition: int  # the source record's coordinates
    source_offset: int


_new_letter = tuple.__new__


class _Failed(NamedTuple):
    """A record whose attempt failed, and where it came from."""

    tracker: PartitionOffsets
    offset: int  # in the topic it was consumed from
    value: bytes | None
    key: bytes | None
    own_headers: Headers
    topic: str  # the source record's coordinates
    partition: int
    source_offset: int
    timestamp: int
    first_failure_ms: int


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


def _fenced_instance(error: KafkaError) -> bool:
    """A fatal consumer error saying another member took our group.instance.id: as the
    broker's code, or wrapped as librdkafka's _FATAL when it comes with a message."""
    return error.code() == KafkaError.FENCED_INSTANCE_ID or (
        error.code() == KafkaError._FATAL and "fenced" in error.str()
        and "group.instance.id" in error.str()
    )  # fmt: skip


def _instance_still_held(error: KafkaError) -> bool:
    """KIP-848's protocol: a static member killed without leaving keeps its
    group.instance.id until its session ends (45 s by default), and refuses our restart
    meanwhile, as a fatal error ("The instance ID is still used by another member")."""
    return error.code() == KafkaError.UNRELEASED_INSTANCE_ID or (
        error.code() == KafkaError._FATAL and "instance ID is still used" in error.str()
    )


def _protocol_unsupported(error: KafkaError) -> bool:
    """-X group.protocol=consumer on a broker without KIP-848's protocol (before Kafka
    4.0, or with it switched off): "API version not supported: ConsumerGroupHeartbeat"."""
    return "ConsumerGroupHeartbeat" in error.str() and "not supported" in error.str()


def _per_partition(counts: dict[tuple[str, int], int], what: str = "") -> str:
    """`orders[0] 1,234 back, ...`: a count for each partition that has one."""
    return ", ".join(f"{t}[{p}] {n:,}{what}" for (t, p), n in sorted(counts.items()) if n > 0)


def _give_up(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """A replaced consumer's rebalance callback: it gives its partitions up, nothing more."""
    with contextlib.suppress(KafkaException):
        consumer.incremental_unassign(partitions)


def _rewound(back: dict[tuple[str, int], int]) -> str:
    """How far each partition goes back: what is redone."""
    return _per_partition(back, " back") or "nothing to redo"


class Pipeline:
    """Owns one consumer and one producer; `run` is called on the thread that owns them.
    Other threads may call `pause`, `resume` and `stop` and read `stats`."""

    def __init__(
        self,
        settings: KafkaSettings,
        config: EngineConfig | None = None,
        events: EventQueue | None = None,
        on_finished: Callable[[list[Finished]], None] | None = None,
        on_report: Callable[[str], None] | None = None,
        clients: KafkaClients | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients or KafkaClients()
        self.config = config or EngineConfig()
        self._decode = make_decoder(settings, self.config.schema_id)
        self._decode_retry = self._decode.sharing_schemas()  # `seen` counts source records
        self._registry_down_since: float | None = None
        self.events = events
        self.on_finished = on_finished
        self.on_report = on_report
        self.shutdown_seconds = SHUTDOWN_SECONDS
        self.stats = PipelineStats()
        self.drain: DrainResult | None = None
        self.paused = False
        self._want_paused = False
        self._stop = threading.Event()
        # Cuts short a transactional call that hangs; cleared for the last checkpoint,
        # which has its own bound.
        self._interrupt = threading.Event()
        self.retry_topics = self.config.retry_topics(settings.topic)
        self.draining: list[str] = []  # old shared retry topics with this group's retries
        self._foreign_topics: set[str] = set()  # where another group's retries were seen
        self._drain_checked = 0.0
        self._trackers: dict[str, dict[int, PartitionOffsets]] = {t: {} for t in self.topics}
        self._stored: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._waiting: dict[tuple[str, int], tuple[float, int]] = {}  # due (epoch s), head
        self._failure_headers = FailureHeaders(self.config.group, settings.topic)
        # Rows for a front end: only what it can show.
        self._rows = RowBudget()
        self._retry_rows = RowBudget(per_second=RETRY_ROWS_PER_SECOND)
        self._followed: dict[tuple[int, int], None] = {}
        self._letters: list[_Letter] = []  # written, not yet durable
        self._in_commit: list[TopicPartition] = []  # offsets of the transaction committing
        self._letters_logged = 0  # of those, already in the outcome log
        self._last_checkpoint = 0.0
        self._unsettled_since: float | None = None  # the first of checkpoints not settled
        self._finished: list[Finished] = []
        self._outcome_log_failed = False
        self._rng = random.Random()
        self._consumer: ConsumerSet | None = None
        self._delivery: Delivery | None = None
        self._slot: MemberSlot | None = None
        self._last_activity = time.monotonic()
        self._fatal: UserError | None = None
        self._joined = False  # holds an assignment (possibly empty) from the group
        self._cooperative = True
        self._down_since: float | None = None
        self._reported_down = False
        self._last_report: dict[str, float] = {}
        self._idle_since: float | None = None
        self._next_drain_check = 0.0
        self._group_view = GroupView(self.settings, self.config.group)
        self._producer_failures = FailureBudget(allowed=10)
        self._consumer_fencings = FailureBudget(allowed=10)
        self._member_watch = MemberWatch(self._group_view.describe)
        self._fenced = ""  # set by the error callback: the consumer must be replaced
        self._careful_until = 0.0  # monotonic time until which transactions stay small
        self._generation: object | None = None  # the current consumers' (see _current)
        # KIP-848: since when our instance id has been refused as still held, and when
        # the current consumer joined (a rejoin waits INSTANCE_HELD_RETRY after it).
        self._held_since: float | None = None
        self._held_said = False
        self._joined_at = 0.0
        self._producer_broken = ""  # set mid-batch: the producer must be replaced
        self._fleet = FleetMember(
            self.settings,
            self.config.status_topic,
            self.config.control_topic,
            self.config.group,
            obey=self._obey,
            report=lambda text: self._report("fleet", text, error=True),
        )
        self._control_seq = -1  # the last fleet command obeyed
        self._last_status = 0.0
        self._holding_nothing_since: float | None = None
        self._idle_with_work_said = 0.0

    @property
    def topics(self) -> list[str]:
        """Every topic the pipeline consumes: the source, its retry topics, and the old
        shared retry topics while they hold retries of this group."""
        return [self.settings.topic, *self.retry_topics, *self.draining]

    # ---- requests from other threads: they only set state ----

    def stop(self) -> None:
        self._stop.set()
        self._interrupt.set()

    def pause(self) -> None:
        self._want_paused = True

    def resume(self) -> None:
        self._want_paused = False

    @property
    def pause_requested(self) -> bool:
        return self._want_paused

    # ---- the loop ----

    def run(self, idle_exit: float | None = None) -> PipelineStats:
        """Consume until `stop()`, or with `idle_exit` until nothing arrived for that long
        and the group has committed everything (`drain` says how it ended). Commits what
        is done before returning."""
        settings, config = self.settings, self.config
        for line in self.clients.create_retry_topics(self.settings, self.retry_topics):
            self._report(line, line, error=True)
        self._slot = MemberSlot.take(config.group, config.instance_id or None)
        try:
            self._delivery = self._make_delivery()
            self._consumer = self._make_consumer()
        except BaseException:
            self._slot.release()
            raise
        # Incremental (un)assignment with cooperative-sticky or KIP-848's protocol, unless
        # -X chose an eager strategy.
        properties = settings.properties
        self._cooperative = properties.get("group.protocol") == "consumer" or "cooperative" in str(
            properties.get("partition.assignment.strategy", "cooperative-sticky")
        )
        self.stats.started = time.time()
        self._last_activity = time.monotonic()
        try:
            if self.clients.fleet:
                self._fleet.join(self._stop)
            self._begin()
            if not self._stop.is_set():
                self.draining = self._shared_retries_waiting()
                self._subscribe()
                # Everything allocated so far (modules, clients, caches) lives as long as
                # the process: moved out of the garbage collector's way, its full passes
                # stop walking it again and again under load (+15-30 % orders/s).
                gc.freeze()
                self._loop(idle_exit)
        finally:
            self._shutdown()
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _make_consumer(self) -> ConsumerSet:
        defaults = CONSUMER_DEFAULTS
        if self.settings.properties.get("group.protocol") == "consumer":
            # KIP-848: the broker assigns and times sessions; librdkafka refuses a client
            # that sets either ("not supported for group.protocol=consumer").
            defaults = {k: v for k, v in defaults.items() if k not in CLASSIC_PROTOCOL_ONLY}
        self._generation = object()
        config = self.settings.client_config(
            **{
                **defaults,
                **self._delivery.consumer_settings,
                "group.id": self.config.group,
                "group.instance.id": self._slot.instance_id,
                "error_cb": self._current(self._on_error),
                "stats_cb": self._current(self._on_stats),
                "on_commit": self._current(self._on_commit),
            }
        )
        return self.clients.consumers(config, self._levels())

    def _current(
        self,
        callback: Callable[..., None],
        replaced: Callable[..., None] | None = None,
    ) -> Callable[..., None]:
        """`callback` for the consumers being made; once they are replaced, `replaced`
        instead (or nothing): a replaced consumer closes on a thread of its own, and its
        callbacks (a fencing, a revoke, lost partitions) ran there against the new
        consumer's state: it forgot partitions the new one held, and their orders waited
        for good (1,040 missing after a broker restart)."""
        generation = self._generation

        def call(*args: object) -> None:
            if self._generation is generation:
                callback(*args)
            elif replaced is not None:
                replaced(*args)

        return call

    def _levels(self) -> list[list[str]]:
        """The topics of each consumer: the source; then retry topic n with the old shared
        retry topic n it may drain (see consumer_set)."""
        shared = self.config.shared_retry_topics(self.settings.topic)
        retries = [[retry, *shared[n : n + 1]] for n, retry in enumerate(self.retry_topics)]
        return [[self.settings.topic], *retries]

    def _subscribe(self) -> None:
        self._joined_at = time.monotonic()
        self._consumer.subscribe(
            self.topics,
            on_assign=self._current(self._on_assign, _give_up),
            on_revoke=self._current(self._on_revoke, _give_up),
            on_lost=self._current(self._on_lost, _give_up),
        )
        self._member_watch.expect(self._member_ids(), time.monotonic())

    def _member_ids(self) -> set[str]:
        """The group.instance.id of each consumer that subscribed (a level with a topic
        to read)."""
        reading = set(self.topics)
        levels = [n for n, topics in enumerate(self._levels()) if reading.intersection(topics)]
        return {level_instance_id(self._slot.instance_id, n) for n in levels}

    def _make_delivery(self) -> Delivery:
        new_producer = self.clients.producer
        if not self.config.exactly_once:
            return AtLeastOnce(self.settings, self._on_refused, self._on_producer_error,
                               new_producer, on_stats=self._on_stats)  # fmt: skip
        transactional_id = f"orders-tui-{self.config.group}-{self._slot.instance_id}"
        return Transactional(self.settings, transactional_id, self._on_refused,
                             self._on_producer_error, self._interrupt, new_producer,
                             on_stats=self._on_stats)  # fmt: skip

    def _begin(self) -> None:
        """Initialise transactions, waiting for the broker as long as it takes."""
        while not self._stop.is_set():
            try:
                self._delivery.begin(timeout=2.0)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if is_authorization_failure(error):
                    raise KafkaRefused(
                        not_authorized_text(self.settings, error, "Write",
                                            self._delivery.transactional_id)
                        + "; or run with --at-least-once"
                    ) from None  # fmt: skip
                if error.fatal() or not error.retriable():
                    raise KafkaRefused(
                        f"cannot start a transaction ({error.str()}): the cluster must allow "
                        "transactions (or run with --at-least-once)"
                    ) from None
                self._report("begin", f"waiting for Kafka to start a transaction: "
                             f"{error.str()}", error=True)  # fmt: skip
                with contextlib.suppress(ProducerFailed):  # fatal: the next begin says so
                    self._delivery.poll(0)  # its error callback tells of an outage

    def _loop(self, idle_exit: float | None) -> None:
        consumer = self._consumer
        while not self._stop.is_set():
            if self._delivery.blocked:  # a commit must complete before anything is written
                if not self._checkpoint(POLL_TIMEOUT * 5):
                    # Waits instead of spinning when the checkpoint cannot even try (the
                    # broker is away), and serves the producer's callbacks meanwhile:
                    # its statistics tell when the broker is back.
                    self._poll_producer(POLL_TIMEOUT)
                if self._producer_broken:
                    self._replace_broken_producer()
                if self._fenced:  # its replacement aborts what the commit waits for
                    self._replace_consumer()
                    consumer = self._consumer
                continue
            self._apply_pause()
            timeout = POLL_TIMEOUT
            if self._waiting and not self.paused:
                next_due = min(due for due, _ in self._waiting.values())
                timeout = max(0.0, min(timeout, next_due - time.time()))
            careful = time.monotonic() < self._careful_until
            messages = consumer.consume(CAREFUL_BATCH if careful else CONSUME_BATCH, timeout)
            if self._fenced and (
                self._held_since is None
                or time.monotonic() - self._joined_at >= INSTANCE_HELD_RETRY
            ):
                self._replace_consumer()
                consumer = self._consumer
                continue
            if messages:
                self._handle_batch(messages)
            self._wake_due_retries()
            self._poll_producer(0)
            if self._producer_broken:
                self._replace_broken_producer()
                continue
            if (careful and messages) or time.monotonic() - self._last_checkpoint >= COMMIT_EVERY:
                self._checkpoint(POLL_TIMEOUT)
            if time.monotonic() - self._last_status >= STATUS_EVERY:
                self._publish_status(RUNNING)
            if self.draining:
                self._stop_draining_when_done()
            self._say_if_idle_with_work()
            if self._rejoined_missing_members():
                consumer = self._consumer
            if idle_exit is not None and self._idle_for() >= idle_exit:
                if self._drained_enough():
                    break
            else:
                self._idle_since = None

    def _poll_producer(self, timeout: float) -> None:
        try:
            self._delivery.poll(timeout)
        except ProducerFailed as exc:
            self._producer_broken = self._producer_broken or str(exc)

    def _idle_for(self) -> float:
        # Joining the group (a member that died may hold partitions until its session
        # ends) is not idleness: messages may be on their way. Nor is a retry waiting.
        if not self._joined or self._waiting or self._letters or self.paused:
            self._last_activity = time.monotonic()
        return time.monotonic() - self._last_activity

    def _handle_batch(self, messages: list[Message]) -> None:
        now = time.time()
        self._failure_headers.stamp()
        check = self.config.rules.check
        source = self.settings.topic
        trackers = self._trackers[source]
        events = self.events
        stats = self.stats
        log_outcomes = self.on_finished is not None
        first_try_prices: list[float] = []
        retried: list[Message] = []
        consumed = 0
        # Source partitions waiting at a record (for the schema registry): what follows
        # it in the batch is read again after it.
        blocked = {p for t, p in self._waiting if t == source} if self._waiting else set()
        show_from = self._rows_from(len(messages))
        for index, msg in enumerate(messages):
            if msg.error() is not None:
                self._on_message_error(msg.error())
                continue
            if msg.topic() != source:
                retried.append(msg)
                continue
            partition, offset = msg.partition(), msg.offset()
            tracker = trackers.get(partition)
            if tracker is None:  # revoked while the batch was in hand: the next owner has it
                continue
            if blocked and partition in blocked:
                continue
            try:
                order = self._decode(msg.value())
            except DecodeError as exc:
                consumed += 1
                self._dead_letter(self._failed(msg, tracker), None, str(exc),
                                  ErrorType.DESERIALIZATION, 1)  # fmt: skip
                continue
            except WriterSchemaUnavailable as exc:
                self._wait_for_registry(msg, exc)
                blocked.add(partition)
                continue
            consumed += 1
            verdict = check(order, 1)
            if verdict is OK:
                tracker.track_done(offset)
                first_try_prices.append(order.price)
                if log_outcomes:
                    self._finish(partition, offset, order, msg.key(), OrderState.PROCESSED, 1)
                if index >= show_from:
                    events.put(
                        OrderSeen(partition, offset, order.orderId, order.product, order.price,
                                  OrderState.PROCESSED)
                    )  # fmt: skip
                continue
            self._after_failure(self._failed(msg, tracker), order, 1, verdict)
        stats.consumed += consumed
        stats.add_processed_batch(first_try_prices, now)
        if retried:
            self._handle_retries(retried)
        self._last_activity = time.monotonic()
        if self._registry_down_since is not None and (
            self._decode.source.last_answer > self._registry_down_since
        ):
            self._registry_answered()

    def _skip_foreign_retry(self, topic: str, group: str, tracker: PartitionOffsets,
                            offset: int) -> None:  # fmt: skip
        """Another group's retry is its job, not ours: done here without a look, counted,
        and said once per topic (a misconfiguration: two groups given one prefix)."""
        tracker.track_done(offset)
        self.stats.foreign_retries_skipped += 1
        if topic not in self._foreign_topics:
            self._foreign_topics.add(topic)
            self._report(f"foreign {topic}", f"skipping retry records of group {group!r} on "
                         f"{topic}: a retry topic belongs to one group; give each group its "
                         "own --retry-topic-prefix", error=True)  # fmt: skip

    def _failed(self, msg: Message, tracker: PartitionOffsets) -> _Failed:
        return _Failed(tracker, msg.offset(), msg.value(), msg.key(), msg.headers() or [],
                       self.settings.topic, msg.partition(), msg.offset(), msg.timestamp()[1],
                       time.time_ns() // 1_000_000)  # fmt: skip

    def _handle_retries(self, messages: list[Message]) -> None:
        """Records of the retry topics: an attempt for each that is due; a partition whose
        head is not due yet is paused until it is, from that record on."""
        now_ms = time.time_ns() // 1_000_000
        rules = self.config.rules
        consumer = self._consumer
        for msg in messages:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            key = (topic, partition)
            tracker = self._trackers.get(topic, {}).get(partition)
            if tracker is None or key in self._waiting:
                continue  # revoked, or behind a head that is not due (it is read again)
            try:
                state = RetryState.parse(msg.headers())
            except NotARetryRecord as exc:
                failed = self._failed(msg, tracker)._replace(topic=topic)
                self._dead_letter(failed, None, str(exc), ErrorType.DESERIALIZATION, 1)
                continue
            if state.group is not None and state.group != self.config.group:
                self._skip_foreign_retry(topic, state.group, tracker, offset)
                continue
            if state.due_ms > now_ms:
                tp = TopicPartition(topic, partition, offset)
                consumer.pause([tp])
                consumer.seek(tp)
                self._waiting[key] = (state.due_ms / 1000, offset)
                continue
            try:
                order = self._decode_retry(msg.value())
            except WriterSchemaUnavailable as exc:  # not an attempt: it waits for the registry
                self._wait_for_registry(msg, exc)
                continue
            except DecodeError as exc:
                order = exc
            self.stats.retry_attempts += 1
            failed = _Failed(tracker, offset, msg.value(), msg.key(), state.source_headers,
                             state.original_topic, state.original_partition,
                             state.original_offset, state.original_timestamp,
                             state.first_failure_ms)  # fmt: skip
            attempt = state.attempts + 1
            if isinstance(order, DecodeError):
                self._dead_letter(failed, None, str(order), ErrorType.DESERIALIZATION, attempt)
                continue
            verdict = rules.check(order, attempt)
            if verdict.outcome is Outcome.OK:
                tracker.track_done(offset)
                self.stats.add_processed(order.price, recovered=True, now=time.time())
                self._finish(failed.partition, failed.source_offset, order, msg.key(),
                             OrderState.PROCESSED, attempt)  # fmt: skip
                if self._unfollow(failed):
                    self._show(failed, order, OrderState.PROCESSED, attempt)
                    self.events.put(RetryFinished(failed.partition, failed.source_offset,
                                                  order.orderId, attempt,
                                                  RetryEnd.RECOVERED))  # fmt: skip
            else:
                self._after_failure(failed, order, attempt, verdict)

    def _wait_for_registry(self, msg: Message, exc: WriterSchemaUnavailable) -> None:
        """The record's writer schema cannot be fetched now: it is not undecodable, so it
        waits, and its partition with it, from this record on (read again when due)."""
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        tp = TopicPartition(topic, partition, offset)
        self._consumer.pause([tp])
        self._consumer.seek(tp)
        self._waiting[(topic, partition)] = (time.time() + REGISTRY_RETRY_SECONDS, offset)
        if self._registry_down_since is None:
            self._registry_down_since = time.monotonic()
            self.stats.registry_outages += 1
            self._registry_status(False)
        self._report("registry", f"{self._decode.source.name} does not answer ({exc}): "
                     "records that need a schema from it wait, and are read again every "
                     f"{REGISTRY_RETRY_SECONDS:g} s", error=True)  # fmt: skip

    def _registry_answered(self) -> None:
        down_for = time.monotonic() - self._registry_down_since
        self._registry_down_since = None
        self._last_report.pop("registry", None)
        self._report("registry", f"{self._decode.source.name} answers again after "
                     f"{down_for:.1f} s")  # fmt: skip
        self._registry_status(True)

    def _registry_status(self, reachable: bool) -> None:
        if self.events is not None:
            self.events.put(RegistryStatus(reachable))

    def _after_failure(self, failed: _Failed, order: Order, attempt: int,
                       verdict: Verdict) -> None:  # fmt: skip
        """Attempt `attempt` of `order` failed: to the next retry topic, or to the DLQ."""
        rules = self.config.rules
        if verdict.outcome is Outcome.TRANSIENT and attempt < rules.max_attempts:
            self._retry(failed, order, attempt, verdict.reason)
            return
        if verdict.outcome is Outcome.TRANSIENT:
            reason = f"retries exhausted after {attempt} attempts: {verdict.reason}"
            error_type = ErrorType.RETRIES_EXHAUSTED
        else:
            reason, error_type = verdict.reason, ErrorType.PERMANENT
        if self._unfollow(failed):
            self.events.put(RetryFinished(failed.partition, failed.source_offset, order.orderId,
                                          attempt, RetryEnd.EXHAUSTED))  # fmt: skip
        self._dead_letter(failed, order, reason, error_type, attempt)

    def _retry(self, failed: _Failed, order: Order, attempts: int, reason: str) -> None:
        delay = self.config.backoff.delay(attempts, self._rng)
        due = time.time() + delay
        state = RetryState(attempts, int(due * 1000), failed.first_failure_ms, reason,
                           failed.topic, failed.partition, failed.source_offset,
                           failed.timestamp, failed.own_headers, self.config.group)  # fmt: skip
        self._write(self.retry_topics[attempts - 1], failed, state.headers(), None, order,
                    attempts)  # fmt: skip
        if self.events is not None and self._follow(failed):
            self._show(failed, order, OrderState.RETRYING, attempts)
            self.events.put(
                RetryScheduled(failed.partition, failed.source_offset, order.orderId, attempts,
                               self.config.rules.max_attempts, reason, due)
            )  # fmt: skip

    def _dead_letter(self, failed: _Failed, order: Order | None, reason: str,
                     error_type: ErrorType, attempts: int) -> None:  # fmt: skip
        # The pipeline's own topic is encoded once in FailureHeaders; any other (a record
        # not written as a retry, found on a retry topic) is named by itself.
        topic = None if failed.topic == self.settings.topic else failed.topic.encode()
        headers = self._failure_headers(failed.own_headers, failed.partition,
                                        failed.source_offset, failed.timestamp, reason,
                                        error_type, attempts, topic)  # fmt: skip
        self._write(self.settings.dlq_topic, failed, headers, error_type, order, attempts)

    def _write(
        self,
        topic: str,
        failed: _Failed,
        headers: Headers,
        error_type: ErrorType | None,
        order: Order | None,
        attempts: int,
    ) -> None:
        tracker = failed.tracker
        if self._delivery.exactly_once:
            tracker.track_done(failed.offset)  # durable with the offsets, in one transaction
        else:
            tracker.track(failed.offset)  # done once the record is acknowledged
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (a hot path)
        self._letters.append(_new_letter(_Letter, (tracker, failed.offset, error_type, attempts,
                                                   order, failed.key, failed.partition,
                                                   failed.source_offset)))  # fmt: skip
        if self._fatal is not None or self._producer_broken:
            return  # stopping, or redone once the producer is replaced
        try:
            self._delivery.write(topic, failed.value, failed.key, headers)
        except KafkaRefused as exc:
            self._refuse(exc)
        except ProducerFailed as exc:
            self._producer_broken = str(exc)  # replaced by the loop, after this batch

    # ---- rows for a front end ----

    def _rows_from(self, count: int) -> int:
        """Of `count` orders, the index from which a front end gets rows (the newest)."""
        return count - (self._rows.take(count) if self.events is not None else 0)

    def _follow(self, failed: _Failed) -> bool:
        """Whether a front end follows this order's retries (decided at its first
        failure seen here, within RETRY_ROWS_PER_SECOND)."""
        key = (failed.partition, failed.source_offset)
        if key in self._followed:
            return True
        if self._retry_rows.take(1) != 1:
            return False
        if len(self._followed) >= FOLLOWED_MAX:
            del self._followed[next(iter(self._followed))]
        self._followed[key] = None
        return True

    def _unfollow(self, failed: _Failed) -> bool:
        if self.events is None:
            return False
        return self._followed.pop((failed.partition, failed.source_offset), 0) is None

    def _show(self, failed: _Failed, order: Order, outcome: OrderState, attempt: int) -> None:
        self.events.put(
            OrderSeen(failed.partition, failed.source_offset, order.orderId, order.product,
                      order.price, outcome, attempt)
        )  # fmt: skip

    def _finish(self, partition: int, offset: int, order: Order | None, key: bytes | None,
                outcome: OrderState, attempts: int, error_type: str = "") -> None:  # fmt: skip
        if self.on_finished is not None:  # only an outcome log needs these records
            self._finished.append(
                Finished(partition, offset, order.orderId if order else header_text(key),
                         outcome, attempts, order.price if order else None, error_type,
                         order.product if order else None)
            )  # fmt: skip

    # ---- checkpoints: making writes durable and committing offsets ----

    def _checkpoint(self, timeout: float, give_up: float = STUCK_AFTER) -> bool:
        """Make what was written durable and commit (or store) the offsets of what is
        done. The outcome log is written before the offsets that cover it. True when
        everything so far is settled. `give_up` bounds a transactional call that ignores
        its timeout."""
        self._last_checkpoint = time.monotonic()
        if self._fatal is not None or self._consumer is None or self._producer_broken:
            return False
        if self._outcome_log_failed:
            return False
        delivery = self._delivery
        if delivery.exactly_once and self._down_since is not None:
            return False  # a coordinator request now could block for good (see delivery)
        if not delivery.exactly_once:
            letters = self._letters
            if letters:
                if not delivery.settle([], self._consumer, timeout, give_up) or self._fatal:
                    return False  # some still in flight: a later checkpoint confirms them
                self._letters = []
                for letter in letters:
                    letter.tracker.done(letter.offset)
                self._log_letters(letters)
                self._count_and_show(letters)
            self._write_outcomes()
            self._store(self._changed_offsets())
            return True
        letters = self._letters
        if delivery.blocked:
            offsets = self._in_commit  # already sent with the commit being completed
        else:
            offsets = self._changed_offsets()
            if not offsets and not letters:
                return True
            self._in_commit = offsets
        self._log_letters(letters[self._letters_logged :])
        self._letters_logged = len(letters)
        self._write_outcomes()
        try:
            settled = delivery.settle(offsets, self._consumer, timeout, give_up)
        except TransactionAborted as exc:
            self._rewind(f"the transaction was aborted ({exc})")
            return False
        except ProducerFailed as exc:
            if not self._stop.is_set():  # stopping: what is not committed comes again
                self._replace_producer(str(exc))
            return False
        except KafkaRefused as exc:
            self._refuse(exc)
            return False
        if not settled:
            self._be_careful()
            now = time.monotonic()
            if self._unsettled_since is None:
                self._unsettled_since = now
            # A commit that only has to wait (a loaded machine, a coordinator finishing
            # a predecessor's abort after a restart) is completed by a later checkpoint:
            # a failure once it lasts.
            slow_only = delivery.waiting and now - self._unsettled_since < SLOW_COMMIT_GRACE
            if not self._interrupt.is_set() and not slow_only:  # a stop completes it
                self._commit_failed(
                    f"the transaction's commit did not complete ({delivery.last_error})"
                )
            return False
        self._unsettled_since = None
        for tp in offsets:
            self._stored[tp.topic, tp.partition] = tp.offset
            self._committed[tp.topic, tp.partition] = tp.offset
        self._letters, self._letters_logged = [], 0
        self._count_and_show(letters)
        return True

    def _log_letters(self, letters: list[_Letter]) -> None:
        if self.on_finished is None:
            return
        for letter in letters:
            if letter.error_type is not None:
                self._finish(letter.partition, letter.source_offset, letter.order, letter.key,
                             OrderState.DEAD_LETTERED, letter.attempts,
                             letter.error_type.value)  # fmt: skip

    def _write_outcomes(self) -> None:
        if self._finished:
            try:
                self.on_finished(self._finished)
            except BaseException:
                # A closed pipe, a full disk: nothing is committed from now on, so the
                # orders not logged come again in the next run.
                self._outcome_log_failed = True
                raise
            self._finished = []

    def _count_and_show(self, letters: list[_Letter]) -> None:
        """Dead letters are counted and shown once durable."""
        dead = [letter for letter in letters if letter.error_type is not None]
        if not dead:
            return
        counts: dict[str, int] = {}
        for letter in dead:
            counts[letter.error_type.value] = counts.get(letter.error_type.value, 0) + 1
        self.stats.add_dead_lettered(counts)
        if self.events is None:
            return
        for letter in dead[self._rows_from(len(dead)) :]:
            order = letter.order
            self.events.put(
                OrderSeen(letter.partition, letter.source_offset,
                          order.orderId if order else header_text(letter.key),
                          order.product if order else "", order.price if order else None,
                          OrderState.DEAD_LETTERED, letter.attempts)
            )  # fmt: skip

    def _commit_offsets(self) -> list[TopicPartition]:
        """For each partition held: where the group may resume. Before the oldest order
        not done yet; at a waiting retry head; else the consumer's position (which, unlike
        the last offset + 1, steps over a transaction's commit marker)."""
        tps = [TopicPartition(t, p) for t, parts in self._trackers.items() for p in parts]
        if not tps:
            return []
        offsets = []
        for tp in self._consumer.position(tps):
            key = (tp.topic, tp.partition)
            tracker = self._trackers[tp.topic][tp.partition]
            if key in self._waiting:
                offset = self._waiting[key][1]
            elif tracker.has_pending or tp.offset < 0:
                offset = tracker.committable
            else:
                offset = tp.offset
            if offset is not None and offset >= 0:
                offsets.append(TopicPartition(tp.topic, tp.partition, offset))
        return offsets

    def _changed_offsets(self) -> list[TopicPartition]:
        stored = self._stored
        return [tp for tp in self._commit_offsets()
                if stored.get((tp.topic, tp.partition)) != tp.offset]  # fmt: skip

    def _store(self, offsets: list[TopicPartition]) -> None:
        if not offsets:
            return
        for tp in offsets:
            self._stored[tp.topic, tp.partition] = tp.offset
        try:
            self._consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            # _STATE: the partition was revoked meanwhile; its new owner re-reads.
            if exc.args[0].code() != KafkaError._STATE:
                raise

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Auto-commit's and our own commits' results (at-least-once)."""
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            self._commit_failed(error.str())
            if _fenced_instance(error):
                self._fenced = error.str()  # no fatal error follows: the consumer just stops
            return
        for tp in partitions:
            if tp.error is not None:
                self._commit_failed(f"{tp.topic}[{tp.partition}]: {tp.error.str()}")
                if _fenced_instance(tp.error):
                    self._fenced = tp.error.str()
            elif tp.offset >= 0:
                self._committed[tp.topic, tp.partition] = tp.offset

    def _be_careful(self) -> None:
        self._careful_until = time.monotonic() + CAREFUL_SECONDS

    def _commit_failed(self, why: str) -> None:
        self._be_careful()
        self.stats.commit_failures += 1
        self._report("commit", f"commit failed: {why}; it is tried again", error=True)

    def _replace_consumer(self) -> None:
        """Our static member was fenced by a member with the same instance id. This
        pipeline holds the id's lock, so that member was our own earlier incarnation:
        seen after a broker restart, when a rejoin raced a commit. A new consumer with
        the same id takes the partitions back; what was not committed is done again."""
        why, self._fenced = self._fenced, ""
        if self._held_since is not None:
            self._rejoin_held_instance(why)
            return
        if not self._consumer_fencings.spend(time.monotonic()):
            instance = self._slot.instance_id
            self._refuse(KafkaRefused(f"another consumer keeps using group.instance.id "
                                      f"{instance!r} ({why}): give each pipeline its own "
                                      "--instance-id"))  # fmt: skip
            return
        self._report("recovery", f"the consumer was fenced ({why}); joining again", error=True)
        self._new_consumer()

    def _rejoin_held_instance(self, why: str) -> None:
        """Joins again every INSTANCE_HELD_RETRY seconds while our killed predecessor's
        session holds the instance id, for as long as a session can last."""
        now = time.monotonic()
        if now - self._held_since > INSTANCE_HELD_FOR:
            self._refuse(KafkaRefused(
                f"group.instance.id {self._slot.instance_id!r} stays taken ({why}): another "
                "running pipeline uses it? give each its own --instance-id"
            ))  # fmt: skip
            return
        if not self._held_said:
            self._held_said = True
            self._report("held", f"group.instance.id {self._slot.instance_id!r} is still held "
                         "by a member that stopped without leaving (killed?) until its session "
                         "ends (45 s by default with group.protocol=consumer); joining again "
                         f"every {INSTANCE_HELD_RETRY:.0f} s", error=True)  # fmt: skip
        self._new_consumer()

    def _new_consumer(self) -> None:
        self._be_careful()
        old = self._consumer
        self._generation = None  # from now on its callbacks are ignored
        if old.release(RELEASE_WAIT):
            # Closing one that still holds partitions could freeze the process (see
            # ConsumerSet.release): it is left behind, to be fenced by its successor.
            text = f"a replaced consumer kept its partitions for {RELEASE_WAIT:.0f} s: left behind"
            self._report("release", text, error=True)
        # Closed on a thread of its own (it may wait for the broker), but waited for a
        # while: one still rejoining with our instance ids fences the new one at once
        # (a cluster test's pipeline was fenced after every failover until it gave up).
        closing = threading.Thread(target=old.close, daemon=True)
        closing.start()
        closing.join(CLOSE_WAIT)
        if closing.is_alive():
            self._report("close-wait", f"the replaced consumer has not closed after "
                         f"{CLOSE_WAIT:.0f} s; its successor joins anyway", error=True)  # fmt: skip
        if self._delivery.exactly_once and not self._delivery.abort(POLL_TIMEOUT * 10):
            self._producer_broken = "the consumer was fenced and the abort failed"
        self._trackers = {t: {} for t in self.topics}
        self._stored, self._waiting = {}, {}
        self._letters, self._letters_logged, self._finished = [], 0, []
        self._joined = False
        self.paused = False  # the new consumer starts unpaused; _apply_pause re-applies
        self._consumer = self._make_consumer()
        self._subscribe()

    def _replace_broken_producer(self) -> None:
        why, self._producer_broken = self._producer_broken, ""
        if self._stop.is_set():
            return  # stopping: what is not committed comes again
        if not self._delivery.exactly_once:
            self._refuse(KafkaRefused(f"the producer failed for good: {why}"))
            return
        self._replace_producer(why)

    def _replace_producer(self, why: str) -> None:
        """A new transactional producer (same id: it fences the old one), then redo the
        work since the last commit. Stops when it keeps failing."""
        if not self._producer_failures.spend(time.monotonic()):
            self._refuse(KafkaRefused(
                f"the transactional producer keeps failing ({why}); if it was fenced, "
                f"another pipeline uses instance id {self._slot.instance_id!r}: give each "
                "its own --instance-id"
            ))  # fmt: skip
            return
        self._report("recovery", f"the transactional producer failed ({why}); starting a new one",
                     error=True)  # fmt: skip
        self._delivery = self._make_delivery()
        self._begin()
        if not self._stop.is_set():
            self._rewind("after a new producer")

    def _rewind(self, why: str) -> None:
        """After an aborted transaction or a new producer: back to the group's committed
        offsets, as if the work since then had not happened (it is done again; processed
        orders count twice). They are asked of the broker, not remembered: a commit whose
        answer was lost (the broker restarted) may have happened, and the new producer's
        start completed it."""
        self._be_careful()
        consumer = self._consumer
        held = [TopicPartition(t, p) for t, parts in self._trackers.items() for p in parts]
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(held)}
        committed: list[TopicPartition] | None = None
        while held and committed is None:
            if self._stop.is_set():
                return  # the next run resumes from the group's commit
            try:
                committed = consumer.committed(held, timeout=POLL_TIMEOUT * 10)
            except KafkaException as exc:
                error = exc.args[0]
                if error.fatal() or error.code() == KafkaError._FATAL:
                    # The consumer failed for good (fenced, say) and would answer this
                    # forever, silently holding the loop (seen at the end of the cluster
                    # test). Nothing of these partitions is committed from now on; the
                    # consumer's replacement, or the next run, starts from the group's
                    # commits.
                    self._trackers = {t: {} for t in self.topics}
                    self._on_fatal(error)
                    return
                self._report("rewind-wait", "waiting for the group coordinator to say where "
                             f"to consume again from ({error.str()})", error=True)  # fmt: skip
        back = {(tp.topic, tp.partition): positions.get((tp.topic, tp.partition), -1) - tp.offset
                for tp in committed or [] if tp.offset >= 0}  # fmt: skip
        self._report("rewind", f"{why}: consuming again from the last commit "
                     f"({_rewound(back)})", error=True)  # fmt: skip
        for tp in committed or []:
            key = (tp.topic, tp.partition)
            self._trackers[tp.topic][tp.partition] = PartitionOffsets()
            self._stored.pop(key, None)
            if tp.offset >= 0:
                self._committed[key] = tp.offset
            if self._waiting.pop(key, None) is not None and not self.paused:
                consumer.resume([tp])
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, start))
        self._letters, self._letters_logged, self._finished = [], 0, []

    # ---- retries waiting to be due ----

    def _wake_due_retries(self) -> None:
        if not self._waiting or self.paused:
            return
        now = time.time()
        for key, (due, _) in list(self._waiting.items()):
            if due <= now:
                del self._waiting[key]
                self._consumer.resume([TopicPartition(*key)])

    # ---- rebalance callbacks: they run inside consume(), on this thread ----

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._held_since, self._held_said = None, False  # our instance id is ours again
        for tp in partitions:
            self._trackers.setdefault(tp.topic, {})[tp.partition] = PartitionOffsets()
            self._stored.pop((tp.topic, tp.partition), None)
        if self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        self._joined = True
        if self.paused and partitions:  # pause state does not survive a rebalance
            consumer.pause(partitions)
        elif partitions:
            # A retry partition paused until its head was due, then lost: it comes back
            # still paused in librdkafka, while the pipeline forgot why (its retries
            # waited for good, silently). Whatever this member holds anew, it reads.
            consumer.resume(partitions)
        self._last_activity = time.monotonic()
        self._status(True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Settle and commit what is done, then forget the rest: the next owner resumes
        # from the committed offsets.
        revoke_budget = SHUTDOWN_SECONDS / 2
        if self._checkpoint(revoke_budget, revoke_budget) and not self._delivery.exactly_once:
            self._commit_sync()
        self._forget(partitions)
        self._release(consumer, partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._delivery.exactly_once:
            # The transaction holds writes for partitions that are gone: abort it, and redo
            # the partitions still held from their committed offsets.
            self._forget(partitions)
            if self._delivery.abort(POLL_TIMEOUT * 10):
                self._rewind("partitions were lost")
            else:  # replaced by the loop, which rewinds then
                self._producer_broken = "partitions were lost and the abort failed"
        else:
            self._forget(partitions)
            # Their next owner (this member again, after an outage, say) starts at the
            # group's commit: what was done since comes again.
            named = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
            self._report("rewind", f"partitions lost ({named}): their records since the last "
                         "commit (0.1 s at most) are consumed again", error=True)  # fmt: skip
        self._release(consumer, partitions)
        self._status(False, "partitions lost")

    def _release(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()
        self._joined = any(self._trackers.values())
        self._status(True)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for topic, partition in gone:
            self._trackers.get(topic, {}).pop(partition, None)
            self._stored.pop((topic, partition), None)
            self._waiting.pop((topic, partition), None)

    # ---- helpers ----

    def _apply_pause(self) -> None:
        want = self._want_paused
        if want == self.paused:
            return
        assignment = self._consumer.assignment()
        if want:
            self._consumer.pause(assignment)
        else:
            waiting = self._waiting
            self._consumer.resume(
                [tp for tp in assignment if (tp.topic, tp.partition) not in waiting]
            )
        self.paused = want
        self._status(True)

    def _commit_sync(self) -> bool:
        """At-least-once: commit the stored offsets now (the broker is known to answer:
        a rebalance, or idle and healthy)."""
        try:
            results = self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return True
            self._on_commit(exc.args[0], [])  # counted, reported, a fencing noticed
            return False
        self._on_commit(None, results or [])
        return all(tp.error is None for tp in results or [])

    def _commit_now(self, deadline: float) -> bool:
        """At-least-once, while stopping (partitions paused): commit the stored offsets
        and wait for the answer until `deadline`; a synchronous commit has no limit."""
        before = self.stats.commit_failures
        wanted = dict(self._stored)
        try:
            self._consumer.commit(asynchronous=True)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return True
            self._on_commit(exc.args[0], [])  # counted, reported, a fencing noticed
            return False
        while time.monotonic() < deadline:
            self._consumer.consume(CONSUME_BATCH, POLL_TIMEOUT)  # serves the callback
            if self.stats.commit_failures > before:
                return False
            if all(self._committed.get(k, -1) >= v for k, v in wanted.items()):
                return True
        return False

    def _on_refused(self, error: KafkaError, msg: Message) -> None:
        """A retry or DLQ record failed for good (too large for the topic, not authorised,
        a time limit set with -X): stop, with its source offset not committed."""
        if not refuses_the_record(error, self._delivery.exactly_once):
            return  # the transaction's failure is handled where it is committed
        self._refuse(KafkaRefused(refusal(msg.topic() if msg else "?", error)))

    def _refuse(self, exc: KafkaRefused) -> None:
        if self._fatal is None:
            self._fatal = exc
            self._notice(str(exc), error=True)
        self._stop.set()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self._be_careful()
                self.stats.connection_losses += 1
                self._reported_down = self._report(
                    "connection",
                    f"lost the connection to Kafka at {self.settings.bootstrap_servers} "
                    f"({error.str()}); retrying",
                    error=True,
                )
            self._status(False, error.str())
        elif error.code() == KafkaError._TRANSPORT:
            self._status(False, error.str())
        elif error.fatal():
            self._on_fatal(error)

    def _on_producer_error(self, error: KafkaError) -> None:
        """The producer's view of the connection (its own failures surface where it is
        called): heard while the consumer is not polled, a commit hanging, say."""
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._on_error(error)

    def _on_stats(self, stats_json: str) -> None:
        if self._down_since is None:
            return
        stats = json.loads(stats_json)
        now = time.monotonic()
        # When the statistics were taken: librdkafka's clock is CLOCK_MONOTONIC, as
        # Python's; a callback served late must not date an old answer after the loss.
        taken = stats.get("ts", now * 1e6) / 1e6
        if not now - 60 < taken <= now:
            taken = now
        since_loss = taken - self._down_since
        # The broker is back when a real connection (a bootstrap broker, node -1, may be
        # the first; learned ones can stay away until the next metadata refresh) came up
        # after the loss (`stateage`: microseconds in that state), or heard from its
        # broker since (`rxidle`: microseconds since it last received): one merely still
        # UP may be a socket to a dead broker that nobody has written to yet ("restored
        # after 3.4 s" while the only broker was killed).
        if any(b.get("source") != "logical" and b.get("state") == "UP"
               and (b.get("stateage", 0) / 1e6 < since_loss
                    or 0 <= b.get("rxidle", -1) / 1e6 < since_loss)
               for b in stats.get("brokers", {}).values()):  # fmt: skip
            down_for = now - self._down_since
            self._down_since = None
            self._be_careful()
            self.stats.seconds_disconnected += down_for
            if self._reported_down:  # "back" follows every "lost" that was said
                self._reported_down = False
                self._last_report.pop("connection", None)
                self._report("connection", f"connection to Kafka restored after {down_for:.1f} s")
            self._status(True)

    def _on_fatal(self, error: KafkaError) -> None:
        """The consumer failed for good: replaced by the loop (outside the callback) when
        its instance id was taken by our own predecessor; else the run ends."""
        if _fenced_instance(error):
            self._fenced = self._fenced or error.str()
        elif _instance_still_held(error):
            if self._held_since is None:
                self._held_since = time.monotonic()
            self._fenced = self._fenced or error.str()
        elif _protocol_unsupported(error):
            self._refuse(KafkaRefused(
                f"this Kafka does not offer KIP-848's consumer group protocol ({error.str()}): "
                "it needs Kafka 4.0 or later with it enabled; drop -X group.protocol=consumer"
            ))  # fmt: skip
        else:
            self._refuse(KafkaRefused(f"Kafka error: {error.str()}"))

    def _on_message_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        # A fatal error reaches consume() as a message too: after an outage, a static
        # member fenced by its own successor got only this, and stayed alive consuming
        # nothing (5.5 minutes, 90,491 orders waiting) when it was only reported.
        if error.fatal() or error.code() == KafkaError._FATAL:
            self._on_fatal(error)
            return
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise KafkaRefused(f"a topic the pipeline reads is gone (deleted?): {error.str()}; "
                               "create it again, or point --topic at another")  # fmt: skip
        if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            self._refuse(KafkaRefused(
                not_authorized_text(self.settings, error, "Read", self.config.group)
            ))  # fmt: skip
            return
        if is_authorization_failure(error):
            self._refuse(KafkaRefused(
                not_authorized_text(self.settings, error, "Read", ", ".join(self.topics))
            ))  # fmt: skip
            return
        self._report("consumer", f"consumer error: {error.str()}", error=True)

    def _report(self, kind: str, text: str, error: bool = False) -> bool:
        """A line for whoever watches (stderr headless, a notice in the dashboard), at
        most one of a kind every REPORT_EVERY seconds, except a rewind: each is said, as
        it tells what is done again. True when it was said."""
        now = time.monotonic()
        if kind != "rewind" and now - self._last_report.get(kind, -REPORT_EVERY) < REPORT_EVERY:
            return False
        self._last_report[kind] = now
        if self.on_report is not None:
            self.on_report(text)
        self._notice(text, error)
        return True

    def _status(self, connected: bool, detail: str = "") -> None:
        if self.events is not None:
            self.events.put(EngineStatus(connected, detail))

    def _notice(self, text: str, error: bool = False) -> None:
        if self.events is not None:
            self.events.put(Notice(text, error))

    # ---- the fleet: a status record every second, commands obeyed ----

    def _obey(self, command: Command) -> None:
        """A fleet command (on the control thread: it only sets requests)."""
        if command.paused:
            self.pause()
        else:
            self.resume()
        self._control_seq = command.seq
        # A kind of its own per command: each is said, however close the last one was.
        self._report(f"control {command.seq}", f"{'paused' if command.paused else 'resumed'} "
                     f"by a fleet command from {command.by} (#{command.seq})")  # fmt: skip

    def _publish_status(self, state: str) -> None:
        self._last_status = time.monotonic()
        if self._decode.seen:
            self.stats.schemas_seen = self._decode.seen_labels()
        if self._fleet.joined:
            # The consumer may not say where it is (its broker away): the next second tries.
            with contextlib.suppress(KafkaException):
                self._fleet.publish(self._member_status(state))

    def _member_status(self, state: str) -> MemberStatus:
        stats = self.stats
        source = self.settings.topic
        lag = pending = 0
        held = [TopicPartition(t, p) for t, parts in self._trackers.items() for p in parts]
        if held and self._consumer is not None and state == RUNNING:
            for tp in self._consumer.position(held):
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset < 0 or high < 0:
                    continue  # nothing fetched yet
                behind = max(0, high - tp.offset)
                if tp.topic == source:
                    lag += behind
                else:
                    pending += behind
        return new_status(
            self.config.group, self._slot.instance_id if self._slot else "",
            state=state, paused=self.paused, control_seq=self._control_seq,
            partitions=sorted(self._trackers.get(source, {})),
            retry_partitions=sum(len(self._trackers.get(t, {})) for t in self.retry_topics),
            lag=lag, retries_pending=pending,
            orders_per_second=stats.rate.rate(time.time()),
            consumed=stats.consumed, processed=stats.processed,
            retry_attempts=stats.retry_attempts, recovered=stats.recovered,
            dead_lettered=dict(stats.dead_lettered_by_type), total_price=stats.total_price,
            min_price=stats.min_price if stats.processed else None,
            max_price=stats.max_price if stats.processed else None,
        )  # fmt: skip

    # ---- --idle-exit: drained or not ----

    def _drained_enough(self) -> bool:
        """Idle: stop once the group has committed the end of every partition; wait up
        to DRAIN_WAIT for partitions other members hold, then say what is left."""
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if now < self._next_drain_check:
            return False
        self._next_drain_check = now + DRAIN_CHECK_EVERY
        if not self._checkpoint(POLL_TIMEOUT * 5):
            return False
        if not self._delivery.exactly_once and not self._commit_sync():
            return False
        try:
            lag = self._group_lag()
        except KafkaException:
            return False  # the broker did not answer: ask again
        if not lag:
            self.drain = DrainResult(True)
            return True
        if now - self._idle_since < DRAIN_WAIT:
            return False
        owners = self._owners()
        held = {key: owners[key] for key in lag if key in owners}
        others_hold_all = bool(held) and set(held) == set(lag)
        self.drain = DrainResult(others_hold_all, lag, held)
        return True

    def _group_lag(
        self, topics: list[str] | None = None, committed_only: bool = False
    ) -> dict[tuple[str, int], int]:
        """Records not committed by the group, per partition of every topic it reads (or
        of `topics`; see GroupView.lag)."""
        topics = self.topics if topics is None else topics
        return self._group_view.lag(topics, self._consumer.committed, committed_only)

    def _say_if_idle_with_work(self) -> None:
        """Holding no partition for longer than a session while the group has records
        waiting: said every IDLE_WITH_WORK_EVERY seconds, with what waits."""
        now = time.monotonic()
        if any(self._trackers.values()) or self.paused or self._down_since is not None:
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
            lag = self._group_lag()
        except KafkaException:
            return  # the outage has its own line
        if lag:
            waiting = sum(lag.values())
            self._report("idle", f"holding no partition for {held_nothing_for:.0f} s while "
                         f"{waiting:,} records wait in group {self.config.group!r} "
                         f"({_per_partition(lag)}): other members hold them, "
                         "or the group is not balancing (orders-tui watch shows who holds "
                         "what)", error=True)  # fmt: skip

    def _rejoined_missing_members(self) -> bool:
        """A consumer of ours out of the group for long while Kafka answers is said, and
        the consumers are replaced (see member_watch). True when they were."""
        if self._down_since is not None or self._held_since is not None or self._fenced:
            self._member_watch.pause()
            return False
        missing = ", ".join(self._member_watch.missing(time.monotonic()))
        if not missing:
            return False
        group = self.config.group
        if not self._consumer_fencings.spend(time.monotonic()):
            why = f"{missing} keep failing to join group {group!r}: see the broker's log"
            self._refuse(KafkaRefused(why))
            return False
        text = (
            f"{missing} not in group {group!r} for {MISSING_AFTER:.0f} s while Kafka answers: "
            "joining again with new consumers; what was not committed is consumed again"
        )
        self._report("rejoin", text, error=True)
        self._new_consumer()
        return True

    def _shared_retries_waiting(self) -> list[str]:
        """The old shared retry topics (`<topic>-retry-N`) that hold records this group
        has not consumed: read until drained, so an upgrade strands no retry."""
        shared = self.clients.shared_retry_topics(self.settings, self.config)
        if not shared:
            return []
        waiting = sorted({topic for topic, _ in self._group_lag(shared, committed_only=True)})
        if waiting:
            self._report("draining", f"draining this group's retries from the old shared "
                         f"retry topics ({', '.join(waiting)}); new retries go to "
                         f"{self.retry_topics[0]} and on")  # fmt: skip
        return waiting

    def _stop_draining_when_done(self) -> None:
        if time.monotonic() - self._drain_checked < SHARED_RETRIES_CHECK_EVERY:
            return
        self._drain_checked = time.monotonic()
        try:
            left = self._group_lag(self.draining, committed_only=True)
        except KafkaException:
            return  # asked again at the next check
        if not left:
            drained, self.draining = self.draining, []
            self._report("drained", f"the old shared retry topics are drained "
                         f"({', '.join(drained)}): no longer read")  # fmt: skip
            self._subscribe()

    def _owners(self) -> dict[tuple[str, int], str]:
        """Which other member holds each partition, as `instance@host`."""
        return self._group_view.owners(self._slot.instance_id if self._slot else "")

    # ---- stopping within SHUTDOWN_SECONDS, broker or not ----

    def _shutdown(self) -> None:
        consumer = self._consumer
        deadline = time.monotonic() + self.shutdown_seconds
        self._interrupt.clear()
        try:
            if consumer is not None and self._fatal is None and any(self._trackers.values()):
                consumer.pause(consumer.assignment())  # nothing new while finishing
                remaining = deadline - time.monotonic()
                settled = self._checkpoint(remaining * 0.4, remaining * 0.5)
                if settled and not self._delivery.exactly_once:
                    settled = self._commit_now(deadline - remaining * 0.3)
                if not settled:
                    self._report_uncommitted()
                    if self._delivery.exactly_once and self._down_since is None:
                        # Left open, it would hold back every read_committed reader of
                        # the retry and DLQ topics (other members too) until it times out.
                        self._delivery.abort(max(0.1, deadline - time.monotonic()) * 0.5)
            elif self._fatal is not None and self._delivery and self._delivery.exactly_once:
                self._delivery.abort(POLL_TIMEOUT * 5)
        finally:
            self.stats.schemas_seen = self._decode.seen_labels()
            if self._fleet.joined:
                self._publish_status(STOPPED)
            self._fleet.leave(max(0.0, min(0.5, deadline - time.monotonic())))
            if consumer is not None:
                # What could be committed was: the rebalance callbacks close() runs (on
                # the closer's thread) only give partitions up. Run in full, a level's
                # revoke committed every level, those already closed too (a traceback).
                self._generation = None
                # close() waits for the broker (45 s when it is gone): give it what is left.
                closer = threading.Thread(target=consumer.close, daemon=True)
                closer.start()
                closer.join(max(0.2, deadline - time.monotonic()))
            if self._slot is not None:
                self._slot.release()

    def _report_uncommitted(self) -> None:
        committed = self._committed
        behind = {}
        for tp in self._commit_offsets():
            key = (tp.topic, tp.partition)
            if key not in committed:
                behind[key] = "since this run started"
            elif tp.offset > committed[key]:
                behind[key] = f"{tp.offset - committed[key]:,}"
        if not behind and not self._letters:
            return
        parts = ", ".join(f"{t}[{p}] {n}" for (t, p), n in sorted(behind.items()))
        text = (
            f"could not commit before stopping: the records after the last commit "
            f"({parts or 'retry and DLQ writes in flight'}) will be consumed again"
        )
        self._last_report.pop("uncommitted", None)
        self._report("uncommitted", text, error=True)
