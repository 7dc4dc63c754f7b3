"""`orders-tui watch`: the dashboard over a fleet that consumes elsewhere.

The observer never joins the group and commits nothing: the Orders, Retries and DLQ
panes follow their topics as a reader does, the Aggregates pane sums the members'
status records (status.py), and lag comes from the group's committed offsets. `space`
writes a fleet command that every member obeys and acknowledges in its status.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, KafkaException, Message, Producer, TopicPartition

from orders_tui.domain.codec import DecodeError, WriterSchemaUnavailable
from orders_tui.domain.member_status import Fleet, StatusFormatError, decode_status
from orders_tui.domain.stats import PipelineStats, RateMeter
from orders_tui.kafka.config import KafkaSettings, plain_reader
from orders_tui.kafka.decoders import make_decoder
from orders_tui.kafka.dlq import header_text
from orders_tui.kafka.engine import EngineBase
from orders_tui.kafka.engine_config import EngineOptions
from orders_tui.kafka.events import (
    RETRY_ROWS_PER_SECOND,
    Notice,
    OrderSeen,
    OrderState,
    RetryScheduled,
    RowBudget,
)
from orders_tui.kafka.producer import make_producer
from orders_tui.kafka.retry_topics import NotARetryRecord, RetryState
from orders_tui.kafka.status import Command, ensure_fleet_topics

RETRY_TOPICS_CHECK_EVERY = 2.0  # seconds, until a worker has created them
# Rows of orders seen on the source: a pane full at a human pace; under load the
# observer, often on a worker's machine, keeps out of the workers' way.
ORDER_ROWS_PER_SECOND = 200


class Observer(EngineBase):
    def __init__(self, settings: KafkaSettings, options: EngineOptions | None = None) -> None:
        super().__init__(settings, options)
        self._fleet = Fleet(self.config.group)
        self._rate = RateMeter()
        self._decode = make_decoder(settings, self.config.schema_id)
        self._rows = RowBudget(per_second=ORDER_ROWS_PER_SECOND)
        self._retry_rows = RowBudget(per_second=RETRY_ROWS_PER_SECOND)
        self._command: Command | None = None  # the group's latest, seen or sent
        self._wanted: bool | None = None  # a pause (True) or resume asked for, not sent yet
        self._lock = threading.Lock()

    def _fleet_seen(self) -> Fleet:
        """A copy: the fleet thread goes on updating its own."""
        with self._lock:
            return Fleet(self._fleet.group, dict(self._fleet.members))

    def _stats(self) -> PipelineStats:
        now = time.time()
        with self._lock:
            stats = self._fleet.totals(now)
            stats.rate = self._rate.copy()  # the fleet thread goes on adding to its own
        return stats

    def _pause_requested(self) -> bool:
        if self._wanted is not None:
            return self._wanted
        return self._command is not None and self._command.paused

    def _pause_in_effect(self) -> bool:
        """Every live member paused, having obeyed the latest command."""
        command = self._command
        if command is None or not command.paused:
            return False
        with self._lock:
            live = self._fleet.live(time.time())
        return bool(live) and all(m.paused and m.control_seq >= command.seq for m in live)

    def _set_paused(self, paused: bool) -> None:
        self._wanted = paused  # sent by the fleet thread

    def _run_threads(self) -> None:
        self._spawn(self._follow_fleet, "orders-tui-fleet")
        self._spawn(lambda: self._tail([self.settings.topic], self._order_seen), "orders-tui-src")
        self._spawn(self._tail_retries, "orders-tui-retries")

    # ---- the panes' rows ----

    def _order_seen(self, msg: Message) -> OrderSeen | None:
        if self._rows.take(1) != 1:
            return None
        try:
            order = self._decode(msg.value())
        except (DecodeError, WriterSchemaUnavailable):  # a reader shows what it can
            return OrderSeen(
                msg.partition(),
                msg.offset(),
                header_text(msg.key() or b""),
                "",
                None,
                OrderState.PRODUCED,
            )
        return OrderSeen(
            msg.partition(),
            msg.offset(),
            order.orderId,
            order.product,
            order.price,
            OrderState.PRODUCED,
        )

    def _retry_seen(self, msg: Message) -> RetryScheduled | None:
        if self._retry_rows.take(1) != 1:
            return None
        try:
            state = RetryState.parse(msg.headers())
        except NotARetryRecord:
            return None
        if state.group is not None and state.group != self.config.group:
            return None  # another group's job, on a topic it should not share
        return RetryScheduled(
            state.original_partition,
            state.original_offset,
            header_text(msg.key() or b""),
            state.attempts,
            self.config.rules.max_attempts,
            state.reason,
            state.due_ms / 1000,
        )

    def _tail_retries(self) -> None:
        topics = self.config.retry_topics(self.settings.topic)
        reader = plain_reader(self.settings)
        try:
            while not self._stop.is_set():  # the first worker creates them
                known = reader.list_topics(timeout=5).topics
                if all(t in known and known[t].partitions for t in topics):
                    break
                self._stop.wait(RETRY_TOPICS_CHECK_EVERY)
        except KafkaException:
            pass  # the tail below says what went wrong
        finally:
            reader.close()
        if not self._stop.is_set():
            self._tail(topics, self._retry_seen)

    # ---- the fleet: status records in, commands out ----

    def _follow_fleet(self) -> None:
        config = self.config
        try:
            ensure_fleet_topics(self.settings, config.status_topic, config.control_topic)
        except Exception as exc:  # shown; the panes still follow their topics
            self.events.put(Notice(f"no fleet status: {exc}", error=True))
            return
        reader = plain_reader(self.settings)
        producer = make_producer(self.settings)
        group = config.group.encode()
        last_second = int(time.time())
        try:
            reader.assign(
                [
                    TopicPartition(config.status_topic, 0, OFFSET_BEGINNING),
                    TopicPartition(config.control_topic, 0, OFFSET_BEGINNING),
                ]
            )
            while not self._stop.is_set():
                if self._wanted is not None:
                    self._send(producer, self._wanted)
                for msg in reader.consume(500, 0.2):
                    if msg.error() is not None or not msg.value():
                        continue
                    if msg.topic() == config.status_topic:
                        try:
                            status = decode_status(msg.value())
                        except StatusFormatError:
                            continue  # a newer writer's record: that member is not shown
                        with self._lock:
                            self._fleet.update(status)
                    elif msg.key() == group:
                        try:
                            self._command = Command.decode(msg.value())
                        except ValueError:
                            continue
                now = time.time()
                if int(now) != last_second:  # the fleet's rate, a point a second
                    last_second = int(now)
                    with self._lock:
                        self._rate.add(round(self._fleet.orders_per_second(now)), now - 1)
                producer.poll(0)
        except KafkaException as exc:
            self.events.put(Notice(f"fleet status stopped: {exc.args[0].str()}", error=True))
        finally:
            reader.close()
            producer.flush(1.0)

    def _send(self, producer: Producer, paused: bool) -> None:
        seq = self._command.seq + 1 if self._command is not None else 0
        command = Command(seq, paused)
        producer.produce(self.config.control_topic, command.encode(), self.config.group.encode())
        if producer.flush(5) == 0:
            self._command, self._wanted = command, None
            self.events.put(
                Notice(f"{'pausing' if paused else 'resuming'} the fleet (command #{seq})")
            )
        else:
            self.events.put(
                Notice("the fleet command was not acknowledged; trying again", error=True)
            )
