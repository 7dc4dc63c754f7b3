"""Everything the dashboard runs, on threads of its own: connecting, the pipeline, a
producer for `p` / `P` and replays, a DLQ tail, and a lag monitor.

A front end sends typed commands (`send`: they only queue requests or set flags), reads
an immutable `view()` and drains `events` at its own pace; it never touches a
librdkafka client.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from orders_tui.domain.codec import WireFormat
from orders_tui.domain.member_status import Fleet
from orders_tui.domain.pacing import Pace
from orders_tui.domain.replay_targets import ReplayTargets, ReplayVerdict
from orders_tui.domain.stats import PipelineStats
from orders_tui.errors import BrokerUnreachable, UserError
from orders_tui.kafka.commands import (
    EngineCommand,
    Produce,
    Replay,
    SetPaused,
    SetStreaming,
    Stop,
)
from orders_tui.kafka.config import KafkaSettings, make_client, plain_reader
from orders_tui.kafka.dlq import DlqEntry, replay_headers
from orders_tui.kafka.engine_api import EngineView
from orders_tui.kafka.engine_config import EngineOptions
from orders_tui.kafka.events import ROWS_SHOWN, EngineStatus, EventQueue, Notice, OrderSeen
from orders_tui.kafka.pipeline import Pipeline
from orders_tui.kafka.producer import OrderProducer, make_producer
from orders_tui.kafka.redrive import replay_targets
from orders_tui.kafka.topics import ensure_topics, watermarks

RECONNECT_EVERY = 2.0
# `q` closes the dashboard within 2 s: the engine process gets 1.8 s, its pipeline this.
PIPELINE_SHUTDOWN_SECONDS = 1.5
LAG_EVERY = 2.0
POLL = 0.1
DLQ_BATCH = 500
DLQ_EVERY = 0.25  # seconds between DLQ reads
DLQ_BUSY_EVERY = 1.0  # ... while each read brings a full batch
DLQ_BUFFER_KB = 1024
DLQ_FETCH_BYTES = 256 * 1024  # ~700 DLQ records: more than a pane's 500


@dataclass(frozen=True, slots=True)
class DlqEntrySeen:
    """A record read from the DLQ topic (the DLQ pane's rows)."""

    entry: DlqEntry


def coalesce(events: list) -> list:
    """Every event, except that only the newest ROWS_SHOWN orders and DLQ entries are
    kept: under load a tick brings thousands, and a pane would trim the older ones."""
    orders = [e for e in events if isinstance(e, OrderSeen)][-ROWS_SHOWN:]
    entries = [e for e in events if isinstance(e, DlqEntrySeen)][-ROWS_SHOWN:]
    others = [e for e in events if not isinstance(e, OrderSeen | DlqEntrySeen)]
    return others + orders + entries


def broker_answered(error: KafkaError) -> bool:
    """Whether `error` came from a broker (librdkafka's own, local errors have negative
    codes: no connection, a timeout, ...)."""
    return error.code() >= 0


def replay_refusal(entry: DlqEntry, max_replays: int, targets: ReplayTargets) -> str:
    """Why `entry` may not be replayed, or "" when it may (the replay policy of
    `dlq replay`, less the existence of the topic, which sending finds out)."""
    original = entry.original[0]
    verdict = targets.verdict(original, entry.replay_count, max_replays)
    if verdict is ReplayVerdict.AT_MAX_REPLAYS:
        return (
            f"refused: {entry.topic}[{entry.partition}]@{entry.offset} was replayed "
            f"{entry.replay_count} times already (--max-replays {max_replays})"
        )
    if verdict is ReplayVerdict.NO_TARGET:
        return "cannot replay: the entry has no original_topic header"
    if verdict is ReplayVerdict.NOT_ALLOWED:
        return f"cannot replay: {targets.refusal(original)} (dlq replay takes those flags)"
    return ""


class EngineBase:
    """What every engine behind the dashboard runs besides consuming: connecting, a
    producer for `p` / `P` and replays, a DLQ tail and a lag monitor. `Engine` adds the
    pipeline; `Observer` (observer.py) a view of a fleet that consumes elsewhere."""

    def __init__(self, settings: KafkaSettings, options: EngineOptions | None = None) -> None:
        options = options or EngineOptions()
        self.settings = settings
        self.options = options
        self.config = options.config
        self.events = EventQueue()
        self._lag: dict[int, int] = {}
        self._connected = False
        self._streaming = False
        self._stream_waiting = False
        self._produced = 0
        self._commands: queue.Queue[Produce | SetStreaming | Replay] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- requests from the front end ----

    def start(self) -> None:
        self._spawn(self._connect_then_run, "orders-tui-connect")

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every thread; a pipeline commits what is done."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def send(self, command: EngineCommand) -> None:
        """A front end's request: queued, or a flag set, never waited on."""
        match command:
            case Produce():
                self._commands.put(command)
            case SetStreaming(on) if on != self._streaming:
                self._streaming = on
                self._commands.put(command)
            case SetPaused(paused):
                self._set_paused(paused)
            case Replay(entry):
                self._queue_replay(entry)
            case Stop():
                self.stop()

    def view(self) -> EngineView:
        return EngineView(
            stats=self._stats(),
            lag=dict(self._lag),
            connected=self._connected,
            streaming=self._streaming,
            stream_waiting=self._stream_waiting,
            produced=self._produced,
            paused=self._pause_requested(),
            pipeline_paused=self._pause_in_effect(),
            fleet=self._fleet_seen(),
        )

    # ---- what each kind of engine answers its own way ----

    def _stats(self) -> PipelineStats:
        raise NotImplementedError

    def _set_paused(self, paused: bool) -> None:
        raise NotImplementedError

    def _pause_requested(self) -> bool:
        raise NotImplementedError

    def _pause_in_effect(self) -> bool:
        raise NotImplementedError

    def _fleet_seen(self) -> Fleet | None:
        return None  # a local engine shows its own figures

    def _queue_replay(self, entry: DlqEntry) -> None:
        """A replay of `entry` to its original topic, queued; refused (with a notice)
        when it was replayed `max_replays` times already or has no original topic."""
        refusal = replay_refusal(entry, self.options.max_replays, replay_targets(self.settings))
        if refusal:
            self.events.put(Notice(refusal, error=True))
            return
        self._commands.put(Replay(entry))

    # ---- threads ----

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _connect_then_run(self) -> None:
        settings = self.settings
        while not self._stop.is_set():
            try:
                ensure_topics(
                    settings,
                    [settings.topic, settings.dlq_topic],
                    self.options.partitions,
                    timeout=3.0,
                    on_mismatch=lambda line: self.events.put(Notice(line, error=True)),
                )
                break
            except BrokerUnreachable as exc:
                self._set_connected(False, str(exc))
            except UserError as exc:
                self._set_connected(False, str(exc))
            self._stop.wait(RECONNECT_EVERY)
        if self._stop.is_set():
            return
        self._set_connected(True)
        self._spawn(self._run_producer, "orders-tui-producer")
        self._spawn(self._tail_dlq, "orders-tui-dlq")
        self._run_threads()
        self._monitor_lag()

    def _run_threads(self) -> None:
        """The threads of this kind of engine, started once Kafka answers."""

    def _run_producer(self) -> None:
        """Batches (`p`) and the stream (`P`), never waiting on the broker: orders are
        handed to the client, `produced` counts what it delivered, failures become a
        notice. While Kafka is unreachable the stream waits (`stream_waiting`) instead
        of queueing orders that could only time out; once it is back the stream resumes
        at its rate from then, without a burst for the time it missed."""
        producer: OrderProducer | None = None  # made on first use: Faker loads slowly
        replayer = make_producer(self.settings)
        streaming = False
        pace = Pace(self.options.rate, time.monotonic())
        failures_shown = 0
        while not self._stop.is_set():
            wait = POLL if not streaming else min(POLL, pace.wait(time.monotonic()))
            try:
                command = self._commands.get(timeout=wait)
            except queue.Empty:
                command = None
            if isinstance(command, Produce | SetStreaming) and producer is None:
                try:
                    producer = self._order_producer()
                except UserError as exc:  # the registry refused the schema, or is away
                    self.events.put(Notice(str(exc), error=True))
                    continue
            match command:
                case Produce(count):
                    producer.send(count)
                case SetStreaming(on):
                    streaming = on
                    pace = Pace(self.options.rate, time.monotonic())
                    self.events.put(Notice("streaming orders" if on else "stream stopped"))
                case Replay(entry):
                    self._replay(replayer, entry)
            if streaming and not self._connected:
                if not self._stream_waiting:
                    self._stream_waiting = True
                    self.events.put(Notice("stream waiting: Kafka is unreachable", error=True))
            elif streaming:
                if self._stream_waiting:
                    self._stream_waiting = False
                    pace = Pace(self.options.rate, time.monotonic())
                    self.events.put(Notice("Kafka is back: streaming orders again"))
                owed = pace.owed(time.monotonic())
                if owed:
                    pace.sent_now(len(producer.send(owed)))
            else:
                self._stream_waiting = False
            if producer is not None:
                producer.poll(0)
                self._produced = producer.delivered
                if producer.failed > failures_shown:
                    self.events.put(
                        Notice(
                            f"{producer.failed - failures_shown} orders not delivered: "
                            f"{producer.first_error}",
                            error=True,
                        )
                    )
                    failures_shown = producer.failed
            replayer.poll(0)
        if producer is not None:
            producer.flush(1.0)
        replayer.flush(1.0)

    def _order_producer(self) -> OrderProducer:
        """Schemaless Avro; with a schema registry, Confluent framing with the id the
        Order schema has there (registered when new). Paced: it serves the stream."""
        if self.settings.registry is None:
            return OrderProducer(
                self.settings, WireFormat.SCHEMALESS, seed=self.options.seed, paced=True
            )
        from orders_tui.kafka.registry import Registry

        registered = Registry(self.settings.registry).register_order_schema(self.settings.topic)
        return OrderProducer(
            self.settings,
            WireFormat.CONFLUENT,
            seed=self.options.seed,
            schema_id=registered.schema_id,
            paced=True,
        )

    def _replay(self, replayer: Producer, entry: DlqEntry) -> None:
        topic, original_partition, _ = entry.original
        outcome: list[KafkaError | None] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            outcome.append(err)

        # All topics' metadata: a request naming the topic could create it on a broker
        # that auto-creates topics.
        try:
            known = replayer.list_topics(timeout=10).topics.get(topic)
        except KafkaException:
            known = None  # then by key; the send says whether Kafka is there
        partitions = len(known.partitions) if known is not None else 0
        placed = replay_targets(self.settings).partition(topic, original_partition, partitions)
        replayer.produce(
            topic,
            entry.value,
            entry.key,
            headers=replay_headers(entry),
            on_delivery=on_delivery,
            **({} if placed is None else {"partition": placed}),
        )
        replayer.flush(10)
        if outcome and outcome[0] is None:
            self.events.put(
                Notice(
                    f"replayed {entry.topic}[{entry.partition}]@{entry.offset} to {topic} "
                    f"(replay {entry.replay_count + 1} of {self.options.max_replays})"
                )
            )
        else:
            why = outcome[0].str() if outcome else "no acknowledgement within 10 s"
            self.events.put(Notice(f"replay failed: {why}", error=True))

    def _tail_dlq(self) -> None:
        """Follow the DLQ topic's newest entries (commits nothing)."""
        self._tail([self.settings.dlq_topic], lambda msg: DlqEntrySeen(DlqEntry.from_message(msg)))

    def _tail(self, topics: list[str], to_event: Callable[[Message], object | None]) -> None:
        """Follow the newest records of `topics` as a reader (no group, no commits), an
        event each for the front end.

        A pane holds ROWS_SHOWN rows, so each partition is read from its last ROWS_SHOWN
        records, those of earlier runs included; when the topics grow faster than that,
        the reader skips ahead instead of decoding what the pane would drop.
        """
        # The pane shows 500 rows: small fetches (librdkafka's defaults are 1 MB a
        # partition and a 64 MB buffer) are plenty, and under load every record fetched
        # beyond what the pane shows is parsed for nothing.
        consumer = plain_reader(
            self.settings,
            **{
                "queued.max.messages.kbytes": DLQ_BUFFER_KB,
                "max.partition.fetch.bytes": DLQ_FETCH_BYTES,
                "fetch.max.bytes": DLQ_FETCH_BYTES * 4,
            },
        )
        try:
            tps = []
            for topic in topics:
                found = consumer.list_topics(topic, timeout=10).topics[topic]
                tps += [TopicPartition(topic, p) for p in sorted(found.partitions)]
            starts = []
            for tp in tps:
                low, high = watermarks(consumer, tp)
                starts.append(TopicPartition(tp.topic, tp.partition, max(low, high - ROWS_SHOWN)))
            consumer.assign(starts)
            while not self._stop.is_set():
                batch = [m for m in consumer.consume(DLQ_BATCH, POLL) if m.error() is None]
                for msg in batch[-ROWS_SHOWN:]:
                    event = to_event(msg)
                    if event is not None:
                        self.events.put(event)
                # Let records gather: a few large batches cost far less than many small
                # ones, and the pane refreshes at a human pace anyway.
                if len(batch) < DLQ_BATCH:
                    self._stop.wait(DLQ_EVERY)
                    continue
                # The topic grows faster than a pane can show: read once a second, and
                # fetch nothing in between (a fetcher left running kept fetching what
                # the next skip drops, which cost the pipeline 15-20 % of its rate).
                consumer.pause(starts)
                self._stop.wait(DLQ_BUSY_EVERY)
                self._skip_ahead(consumer, tps)
                consumer.resume(starts)
        except KafkaException as exc:
            self.events.put(
                Notice(f"reading {', '.join(topics)} stopped: {exc.args[0].str()}", error=True)
            )
        finally:
            consumer.close()

    @staticmethod
    def _skip_ahead(consumer: Consumer, tps: list[TopicPartition]) -> None:
        """Move each partition to its newest ROWS_SHOWN records, if it is further behind."""
        for tp in tps:
            try:
                low, high = consumer.get_watermark_offsets(tp, timeout=POLL * 10)
            except KafkaException:
                continue  # the broker did not answer in time: read on from where it is
            newest = max(low, high - ROWS_SHOWN)
            if consumer.position([tp])[0].offset < newest:  # also when nothing was read yet
                consumer.seek(TopicPartition(tp.topic, tp.partition, newest))

    def _monitor_lag(self) -> None:
        """Consumer lag per partition (end offset minus the group's committed offset), and
        the connection state, every 2 s.

        A consumer that never subscribes reads the group's committed offsets without
        joining it. (AdminClient.list_consumer_group_offsets crashed librdkafka 2.16 here:
        a segfault in rd_kafka_cgrp_op on a retried OffsetFetch.)
        """
        topic = self.settings.topic
        reader = make_client(
            Consumer,
            self.settings.client_config(
                **{"group.id": self.config.group, "enable.auto.commit": False}
            ),
        )
        try:
            while not self._stop.is_set():
                try:
                    metadata = reader.list_topics(topic, timeout=2)
                    tps = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
                    committed = {tp.partition: tp.offset for tp in reader.committed(tps, timeout=2)}
                    lag = {}
                    for tp in tps:
                        _, high = reader.get_watermark_offsets(tp, timeout=2)
                        lag[tp.partition] = max(0, high - max(0, committed.get(tp.partition, 0)))
                    self._lag = lag
                    self._set_connected(True)
                except KafkaException as exc:
                    error = exc.args[0]
                    # The broker answered with an error (say "not coordinator" while a
                    # fresh broker loads its groups): still connected; lag comes next time.
                    self._set_connected(broker_answered(error), error.str())
                self._stop.wait(LAG_EVERY)
        finally:
            reader.close()

    def _set_connected(self, connected: bool, detail: str = "") -> None:
        if connected != self._connected or not connected:
            self._connected = connected
            self.events.put(EngineStatus(connected, detail))


class Engine(EngineBase):
    """The dashboard's own pipeline: it consumes as a member of the group."""

    def __init__(self, settings: KafkaSettings, options: EngineOptions | None = None) -> None:
        super().__init__(settings, options)
        self.pipeline = Pipeline(settings, self.config, self.events)
        self.pipeline.shutdown_seconds = PIPELINE_SHUTDOWN_SECONDS

    def _stats(self) -> PipelineStats:
        return self.pipeline.stats.snapshot()  # the pipeline's thread goes on counting

    def stop(self, timeout: float = 2.0) -> None:
        self.pipeline.stop()
        super().stop(timeout)

    def _set_paused(self, paused: bool) -> None:
        if paused:
            self.pipeline.pause()
        else:
            self.pipeline.resume()

    def _pause_requested(self) -> bool:
        return self.pipeline.pause_requested  # the header shows it at once

    def _pause_in_effect(self) -> bool:
        return self.pipeline.paused  # the pipeline's thread has paused its partitions

    def _run_threads(self) -> None:
        self._spawn(self._run_pipeline, "orders-tui-pipeline")

    def _run_pipeline(self) -> None:
        try:
            self.pipeline.run()
        except Exception as exc:  # shown in the UI; the rest of the app keeps working
            self.events.put(Notice(f"pipeline stopped: {exc}", error=True))
