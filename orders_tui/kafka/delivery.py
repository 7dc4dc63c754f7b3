"""How the pipeline's writes (retry and DLQ records) and its source offsets reach Kafka.

Two guarantees, one interface:

- `Transactional` (exactly-once, the default): retry and DLQ records are written in a
  Kafka transaction together with the consumed offsets, committed every COMMIT_EVERY
  seconds as Kafka Streams does under exactly_once_v2. A crash aborts what was not
  committed, so a `read_committed` reader sees each failing order's record once.
- `AtLeastOnce` (`--at-least-once`): an idempotent producer, flushed every COMMIT_EVERY
  seconds; when its queue is empty every record written so far was acknowledged, and the
  offsets of their source orders are stored for auto-commit. A crash may write a record
  twice.

Both producers may copy any record the consumer can fetch (`message.max.bytes`), and
report a refused record through one producer-wide callback (a callback per record made
each `produce()` 2 us slower).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from orders_tui.errors import KafkaRefused
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.producer import make_producer, produce_when_room

COMMIT_EVERY = 0.1  # seconds between checkpoints
# While a commit runs the loop goes on, until it holds this many writes or the commit
# has run this long: then it waits for the commit (what it does meanwhile is redone if
# the commit ends in an abort: 10,000 held writes made a failover's redo 2.1 %).
HELD_MAX = 5_000
IN_FLIGHT_MAX = 0.5  # seconds
# A record as large as librdkafka's consumer accepts (receive.message.max.bytes, 100 MB)
# can be copied: the producer's own limit (1 MB by default) would refuse it locally.
MAX_RECORD_BYTES = 100_000_000 + 1_000_000
WRITER_PRODUCER: dict[str, object] = {
    "delivery.report.only.error": True,
    # The checkpoint sends what is left; meanwhile bigger batches cost the broker less.
    "linger.ms": 50,
    "message.max.bytes": MAX_RECORD_BYTES,
}
# A crashed pipeline's open transaction holds back read_committed readers of the retry
# and DLQ topics until it times out, or until the restarted pipeline (same transactional
# id) aborts it at start.
TRANSACTION_TIMEOUT_MS = 30_000

# Answers that mean "not yet", not "failed": a commit that ran out of time, and a
# coordinator busy finishing a predecessor's transaction (after a restart) or moving.
WAITING = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError.CONCURRENT_TRANSACTIONS,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


class Delivery:
    """What the pipeline needs from either guarantee."""

    consumer_settings: dict[str, object]
    # The last settle only had to wait (WAITING): the call goes on, and the next
    # completes it.
    waiting = False

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    def write(self, topic: str, value: bytes | None, key: bytes | None, headers: list) -> None:
        """Queue a record; KafkaRefused when the client refuses it locally (too large),
        ProducerFailed when the producer itself is broken (fenced, say)."""
        try:
            produce_when_room(self.producer, topic, value, key, self.poll, headers=headers)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal() or not self.refuses(error):
                raise ProducerFailed(error.str()) from None
            raise KafkaRefused(refusal(topic, error)) from None

    def refuses(self, error: KafkaError) -> bool:
        """Whether a failed delivery means the cluster will not take that record (not
        that a transaction failed: that is handled where it is committed)."""
        return True

    def poll(self, timeout: float) -> None:
        """Serve delivery callbacks; ProducerFailed when the producer is broken for good
        (librdkafka raises a producer's fatal error from poll)."""
        try:
            self.producer.poll(timeout)
        except KafkaException as exc:
            raise ProducerFailed(exc.args[0].str()) from None

    @property
    def blocked(self) -> bool:
        """Whether nothing may be written until a checkpoint completes."""
        return False

    def begin(self, timeout: float) -> None:
        """Ready to write (transactions initialised); may raise KafkaException."""

    def settle(
        self,
        offsets: list[TopicPartition],
        consumer: Consumer,
        timeout: float,
        give_up: float,
        wait: bool = True,
    ) -> bool:
        """Make everything written so far durable, with the source offsets where the
        guarantee allows. True when it is; False when not yet (try again later).
        `timeout` is the client's; `give_up` bounds a call that ignores it."""
        raise NotImplementedError


class AtLeastOnce(Delivery):
    consumer_settings: dict[str, object] = {
        "enable.auto.offset.store": False,  # stored once their orders are done
        "enable.auto.commit": True,  # ... and auto-commit sends what was stored
        # As often as exactly-once commits: a crash redoes at most ~0.2 s of work. At
        # librdkafka's 1 s, 5 kills in a 100,000-order run redid 34.6 % of the orders.
        "auto.commit.interval.ms": 100,
    }

    def __init__(
        self,
        settings: KafkaSettings,
        on_refused: Callable[[KafkaError, Message], None],
        on_error: Callable[[KafkaError], None],
        new_producer: Callable[..., Producer] = make_producer,
        on_stats: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            new_producer(
                settings,
                **WRITER_PRODUCER,
                # Retried until the broker takes it; the source offset waits until then.
                **{"message.timeout.ms": 0},
                **_callbacks(on_refused, on_error, on_stats),
            )
        )

    def settle(
        self,
        offsets: list[TopicPartition],
        consumer: Consumer,
        timeout: float,
        give_up: float,
        wait: bool = True,
    ) -> bool:
        return self.producer.flush(timeout) == 0


class Transactional(Delivery):
    consumer_settings: dict[str, object] = {
        "enable.auto.commit": False,  # offsets go with the transaction
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
    }

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        on_refused: Callable[[KafkaError, Message], None],
        on_error: Callable[[KafkaError], None],
        interrupt: threading.Event,
        new_producer: Callable[..., Producer] = make_producer,
        on_stats: Callable[[str], None] | None = None,
    ) -> None:
        self.transactional_id = transactional_id
        super().__init__(
            new_producer(
                settings,
                **WRITER_PRODUCER,
                **{
                    "transactional.id": transactional_id,
                    "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                },
                **_callbacks(on_refused, on_error, on_stats),
            )
        )
        self._committing = False  # the offsets are in the transaction: only its commit is left
        self._running: _Call | None = None  # the commit's call, not finished yet
        self._commit: Callable[[], None] | None = None  # the commit begun, not completed
        # Writes made while a commit runs: they join the next transaction.
        self._held: list[tuple[str, bytes | None, bytes | None, list]] = []
        # A settle that failed: until one succeeds nothing more joins the transaction, so
        # that, should it end in an abort, only one checkpoint's work is done again (a
        # coordinator away for 5 s under 2,000 orders/s made 2,232 of a partition's).
        self._unsettled = False
        self.in_flight = False  # the last settle left its commit running (not a failure)
        self._stage = ""  # the call the commit is in, for a line when it is stuck
        self.last_error = ""
        self._interrupt = interrupt  # set: stop waiting for a stuck call at once

    @property
    def blocked(self) -> bool:
        running = self._running
        return (
            self._unsettled
            or len(self._held) >= HELD_MAX
            # A commit this slow is in trouble (a healthy one takes tens of ms): what the
            # loop did meanwhile would be done again if it ends in an abort.
            or (running is not None and time.monotonic() - running.started > IN_FLIGHT_MAX)
        )

    @property
    def committing(self) -> bool:
        """A commit was begun and has not completed: settle goes on with it."""
        return self._commit is not None

    def write(self, topic: str, value: bytes | None, key: bytes | None, headers: list) -> None:
        if self._commit is not None:
            self._held.append((topic, value, key, headers))
            return
        super().write(topic, value, key, headers)

    def refuses(self, error: KafkaError) -> bool:
        return error.code() not in TRANSACTION_STATE_ERRORS

    def begin(self, timeout: float) -> None:
        # Aborts what a crashed predecessor with the same transactional id left open.
        self.producer.init_transactions(timeout)
        self.producer.begin_transaction()

    def settle(
        self,
        offsets: list[TopicPartition],
        consumer: Consumer,
        timeout: float,
        give_up: float,
        wait: bool = True,
    ) -> bool:
        """Send `offsets` to the transaction and commit it, on a thread of its own (see
        _complete). With `wait` false the commit is left running when it has not
        finished (`in_flight`), and the loop goes on: what it writes meanwhile is held
        for the next transaction, whose offsets come after them."""
        producer = self.producer
        self.waiting = self.in_flight = False
        try:
            if self._commit is None:
                metadata = consumer.consumer_group_metadata() if offsets else None
                self._commit = functools.partial(self._send_and_commit, offsets, metadata, timeout)
            self._complete(give_up, self._commit, wait=wait)
            self._commit = None
            self._committing = self._unsettled = False
            producer.begin_transaction()
            held, self._held = self._held, []
            for record in held:
                super().write(*record)
            return True
        except _InFlight:
            self.in_flight = True
            return False
        except _Interrupted:
            self.last_error = "interrupted by a stop"
            self._unsettled = True
            return False
        except KafkaException as exc:
            self._commit = None  # the next settle calls again (only the commit, once sent)
            error: KafkaError = exc.args[0]
            if error.fatal():
                raise ProducerFailed(error.str()) from None
            if error.txn_requires_abort():
                if not self.abort(timeout):
                    raise ProducerFailed(f"{error.str()}; the abort failed too") from None
                raise TransactionAborted(error.str()) from None
            self.last_error = error.str()
            self.waiting = error.code() in WAITING
            self._unsettled = True
            return False

    def _send_and_commit(
        self, offsets: list[TopicPartition], metadata: object, timeout: float
    ) -> None:
        """The commit's call (its own thread). A commit that timed out (the broker is
        away) must be completed by calling it again, the offsets not sent twice."""
        if not self._committing:
            if offsets:
                self._stage = "send_offsets_to_transaction"
                self.producer.send_offsets_to_transaction(offsets, metadata, timeout)
            self._committing = True
        self._stage = "commit_transaction"
        self.producer.commit_transaction(timeout)

    def abort(self, timeout: float) -> bool:
        """Abort the open transaction and open the next one. False when that failed (the
        broker is away, or a call of the transaction still runs): the transaction may
        still be open, and writes made after a rewind must not join it, so the caller
        replaces the producer (whose start aborts it for good)."""
        if self._running is not None:
            return False
        self._committing = self._unsettled = False
        self._commit, self._held = None, []  # redone after the rewind
        try:
            self.producer.abort_transaction(timeout)
            self.producer.begin_transaction()
        except KafkaException:
            return False
        return True

    def _complete(self, give_up: float, call: Callable[[], None], wait: bool = True) -> None:
        """Run a transactional call on a thread of its own, or go on waiting for the one
        a stop interrupted (librdkafka refuses a second call while the first runs, and
        the transaction would stay open). Gives up after `give_up` seconds: librdkafka's
        send_offsets_to_transaction can ignore its timeout and block for good when the
        group coordinator went away (librdkafka issues 5456 and 5511; seen here after a
        broker restart); the producer is then replaced (ProducerFailed) and the new one,
        with the same transactional id, fences the old. `_Interrupted` as soon as the
        interrupt is set: a stop must not wait here. Meanwhile the producer's callbacks
        are served, so an outage is still reported. Without `wait`, `_InFlight` when the
        call has not finished yet (CallStuck once it is `give_up` seconds old)."""
        running = self._running
        if running is None or running.call != call:
            running = self._running = _Call(call, ())

        def between() -> None:
            if self._interrupt.is_set():
                raise _Interrupted
            with contextlib.suppress(KafkaException):  # a fatal state: the call fails with it
                self.producer.poll(0)

        try:
            if wait:
                running.wait(give_up, between)
            elif not running.check(give_up):
                raise _InFlight
        except (_InFlight, _Interrupted):
            raise  # the call goes on; the next settle asks it again (not a second call)
        except CallStuck as exc:
            stuck = f"{self._stage} did not return within {give_up:.1f} s" if self._stage else exc
            raise ProducerFailed(str(stuck)) from None
        except BaseException:
            self._running = None  # its own failure, seen
            raise
        # Forgotten only once its end was seen here: one that ended just after a look
        # that found it running was made again (a second commit_transaction).
        self._running = None


def _callbacks(
    on_refused: Callable[[KafkaError, Message], None],
    on_error: Callable[[KafkaError], None],
    on_stats: Callable[[str], None] | None,
) -> dict[str, object]:
    """A writer's callbacks; with `on_stats`, its statistics every second (they tell when
    the broker is back while the pipeline waits on the producer alone)."""
    callbacks: dict[str, object] = {"on_delivery": on_refused, "error_cb": on_error}
    if on_stats is not None:
        callbacks |= {"stats_cb": on_stats, "statistics.interval.ms": 1000}
    return callbacks


def call_within(give_up: float, call: Callable[..., None], *args: object) -> None:
    """Run a transactional call on a thread of its own and wait at most `give_up`
    seconds for it (librdkafka issues 5456 and 5511: it may ignore its own timeout after
    a broker restart). CallStuck when it has not returned; its error when it failed."""
    _Call(call, args).wait(give_up)


class CallStuck(Exception):
    """A transactional call that did not return in time; it goes on running."""


class _Call:
    """A transactional call running on a thread of its own."""

    def __init__(self, call: Callable[..., None], args: tuple) -> None:
        self.call = call
        self.started = time.monotonic()
        self.finished = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=args, name="orders-tui-txn-call", daemon=True
        )
        self.thread.start()

    def _run(self, *args: object) -> None:
        try:
            self.call(*args)
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        self.finished = True

    def wait(self, give_up: float, between: Callable[[], None] | None = None) -> None:
        """Wait up to `give_up` seconds, calling `between` every 50 ms (it may raise to
        stop waiting); CallStuck when the call has not returned, its error when it failed."""
        deadline = time.monotonic() + give_up
        while not self.finished and time.monotonic() < deadline:
            self.thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
            if between is not None and not self.finished:
                between()
        self.check(give_up)

    def check(self, give_up: float) -> bool:
        """Whether the call has finished (its error raised when it failed); CallStuck
        when it has not and started `give_up` seconds ago or more."""
        if not self.finished:
            if time.monotonic() - self.started >= give_up:
                name = getattr(self.call, "__name__", None) or self.call.func.__name__
                raise CallStuck(f"{name} did not return within {give_up:.1f} s")
            return False
        if self.error is not None:
            raise self.error
        return True


class _InFlight(Exception):
    """The call goes on running: asked again at the next settle."""


class _Interrupted(Exception):
    """A stop interrupted the wait for a transactional call, which goes on running."""


class TransactionAborted(Exception):
    """The open transaction was aborted: the pipeline rewinds to its committed offsets."""


class ProducerFailed(Exception):
    """The transactional producer is in a fatal state (fenced, say, after a broker restart
    lost a commit's answer): the pipeline starts a new one and rewinds."""


# Delivery errors that say nothing about the record itself: an aborted or failed
# transaction purges or fails what it held, and the pipeline redoes that work.
TRANSACTION_STATE_ERRORS = frozenset(
    {
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._FENCED,
        KafkaError._STATE,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_TXN_STATE,
    }
)


def refusal(topic: str, error: KafkaError) -> str:
    """The one line for a record the cluster or the client will not take."""
    return (
        f"a record for {topic!r} was refused ({error.str()}); nothing after its source "
        "order was committed: fix the topic or its access (a topic's max.message.bytes, "
        "an ACL), then start again"
    )
