"""The pipeline's own logic with stand-in clients (no broker, milliseconds): which record
goes where with which headers, and which source offset may be committed when. That Kafka
keeps what is written and committed is tested on the real broker (test_pipeline.py,
test_crash_safety.py); here the clients only record what they were asked.

Expected values follow the README's rules and record formats, written out here."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable

import fastavro
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from orders_tui.domain.codec import Decoder, WriterSchema, WriterSchemaUnavailable
from orders_tui.errors import KafkaRefused
from orders_tui.kafka.clients import KafkaClients
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.group_view import GroupView
from orders_tui.kafka.pipeline import Pipeline

SCHEMA = fastavro.parse_schema(json.load(open("schemas/order.avsc")))  # noqa: SIM115
SOURCE, DLQ = "orders", "orders-dlq"
RETRY_1 = "orders-unit-retry-1"


def avro(order_id: str, product: str, price: float) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, {"orderId": order_id, "product": product,
                                             "price": price})  # fmt: skip
    return out.getvalue()


class Record:
    """What confluent-kafka's Message answers."""

    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes,
                 headers: list | None = None) -> None:  # fmt: skip
        self._fields = (topic, partition, offset, key, value, headers)

    def topic(self) -> str:
        return self._fields[0]

    def partition(self) -> int:
        return self._fields[1]

    def offset(self) -> int:
        return self._fields[2]

    def key(self) -> bytes:
        return self._fields[3]

    def value(self) -> bytes:
        return self._fields[4]

    def headers(self) -> list | None:
        return self._fields[5]

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


class StandInConsumer:
    """Hands out `batches` one per poll, then runs `then` (a test's step) once per poll
    until it returns False."""

    def __init__(self, config: dict, batches: list[list[Record]], then: Callable,
                 stop: Callable[[], None], producer: StandInProducer) -> None:  # fmt: skip
        self.config = config
        self.producer = producer  # the pipeline's, for a step to act on
        self.batches = list(batches)
        self.then, self.stop = then, stop
        self.pipeline = None  # set by the test's run()
        self.assigned: list[TopicPartition] = []
        self.positions: dict[tuple[str, int], int] = {}
        self.stored: dict[tuple[str, int], int] = {}
        self.paused: set[tuple[str, int]] = set()
        self.refuse_commits = False
        self._polls_left = 50
        self._on_assign = None

    def subscribe(self, topics, on_assign, on_revoke, on_lost) -> None:
        self.topics, self._on_assign = topics, on_assign
        self.on_assign, self.on_revoke, self.on_lost = (
            on_assign,
            on_revoke,
            on_lost,
        )  # a step may call them

    def consume(self, count: int, timeout: float) -> list[Record]:
        if self._on_assign is not None:  # the group's first answer: every partition, p0
            assign, self._on_assign = self._on_assign, None
            assign(self, [TopicPartition(t, 0) for t in self.topics])
        if self.batches:  # a paused partition's records wait, as a real consumer's do
            batch = [r for r in self.batches[0] if (r.topic(), r.partition()) not in self.paused]
            self.batches[0] = [r for r in self.batches[0] if r not in batch]
            if not self.batches[0]:
                self.batches.pop(0)
            for r in batch:
                self.positions[r.topic(), r.partition()] = r.offset() + 1
            if batch:
                return batch
        if not self.then(self):
            self.stop()
        time.sleep(0.01)
        return []

    def incremental_assign(self, tps) -> None:
        self.assigned += tps

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def position(self, tps) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition,
                               self.positions.get((tp.topic, tp.partition), -1001))
                for tp in tps]  # fmt: skip

    def committed(self, tps, timeout: float | None = None) -> list[TopicPartition]:
        stored = self.stored
        return [TopicPartition(t.topic, t.partition, stored.get((t.topic, t.partition), -1001))
                for t in tps]  # fmt: skip

    def store_offsets(self, offsets) -> None:
        for tp in offsets:
            self.stored[tp.topic, tp.partition] = tp.offset

    def commit(self, asynchronous: bool = True) -> list[TopicPartition]:
        done = [TopicPartition(t, p, o) for (t, p), o in self.stored.items()]
        if self.refuse_commits:
            self.config["on_commit"](KafkaError(KafkaError.REBALANCE_IN_PROGRESS), done)
            return []
        self.config["on_commit"](None, done)
        return done

    def polls_left(self) -> int:
        self._polls_left -= 1
        return self._polls_left

    def pause(self, tps) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in tps}

    def resume(self, tps) -> None:
        for tp in tps:
            assert tp in self.assigned, f"resumed {tp.topic}[{tp.partition}], not assigned"
        self.paused -= {(tp.topic, tp.partition) for tp in tps}

    def seek(self, tp) -> None:
        self.positions[tp.topic, tp.partition] = tp.offset

    def incremental_unassign(self, tps) -> None:
        gone = {(tp.topic, tp.partition) for tp in tps}
        self.assigned = [tp for tp in self.assigned if (tp.topic, tp.partition) not in gone]

    def release(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        pass


class StandInProducer:
    """Keeps what it was given; acknowledges it only once `acknowledging` is set."""

    def __init__(self) -> None:
        self.acknowledging = False
        self.in_flight: list[tuple[str, bytes, bytes, list]] = []
        self.acknowledged: list[tuple[str, bytes, bytes, list]] = []

    def produce(self, topic, value, key, headers=None) -> None:
        self.in_flight.append((topic, value, key, headers))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        if self.acknowledging:
            self.acknowledged += self.in_flight
            self.in_flight = []
        return len(self.in_flight)


class StandIns(KafkaClients):
    fleet = False

    def __init__(self, batches: list[list[Record]], then) -> None:
        self.batches, self.then = batches, then
        self.producer_made = StandInProducer()

    def consumer(self, config: dict) -> StandInConsumer:
        self.consumer_made = StandInConsumer(config, self.batches, self.then,
                                             self.pipeline.stop, self.producer_made)  # fmt: skip
        self.consumer_made.pipeline = self.pipeline
        return self.consumer_made

    def consumers(self, config: dict, levels: list[list[str]]) -> StandInConsumer:
        return self.consumer(config)  # one stand-in plays the consumer of every level

    def producer(self, settings, **overrides) -> StandInProducer:
        return self.producer_made

    def create_retry_topics(self, settings, names) -> list[str]:
        return []

    def shared_retry_topics(self, settings, config) -> list[str]:
        return []


def run(batches: list[list[Record]], then, paused: bool = False,
        said: list[str] | None = None, schemas=None) -> StandIns:  # fmt: skip
    clients = StandIns(batches, then)
    pipeline = Pipeline(KafkaSettings("stand-in:9092", SOURCE, DLQ),
                        EngineConfig(group="unit", exactly_once=False, instance_id="unit"),
                        clients=clients,
                        on_report=said.append if said is not None else None)  # fmt: skip
    if schemas is not None:  # a registry stand-in, where --schema-registry would put one
        pipeline.decoder = Decoder((), schemas)
    clients.pipeline = pipeline
    if paused:
        pipeline.pause()  # before it has partitions: applied to them once assigned
    pipeline.run()
    return clients


def headers_of(record: tuple) -> dict[str, str]:
    return {name: value.decode() for name, value in record[3]}


ORDERS = [
    (b"k-ok", avro("k-ok", "Lamp", 100.0)),  # processed
    (b"k-transient", avro("k-transient", "Mug", 20.0)),  # its first attempt fails
    (b"k-permanent", avro("k-permanent", "Sofa", 1500.0)),  # above 1000: DLQ at once
    (b"k-garbage", b"\x00\x01 not avro"),  # undecodable: DLQ byte for byte
]


def test_each_order_goes_where_the_rules_say_with_the_documented_headers():
    batch = [Record(SOURCE, 0, n, key, value, [("trace", b"t-%d" % n)])
             for n, (key, value) in enumerate(ORDERS)]  # fmt: skip
    seen = {"polls": 0}

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        seen["polls"] += 1
        return seen["polls"] < 30

    clients = run([batch], then)
    written = clients.producer_made.acknowledged
    assert [(topic, key) for topic, _, key, _ in written] == [
        (RETRY_1, b"k-transient"), (DLQ, b"k-permanent"), (DLQ, b"k-garbage"),
    ]  # fmt: skip
    retry, permanent, garbage = written
    assert retry[1] == ORDERS[1][1] and garbage[1] == ORDERS[3][1]  # byte for byte
    assert retry[3][0] == ("trace", b"t-1")  # the source's headers first
    assert headers_of(retry)["retry_attempts"] == "1"
    assert headers_of(retry)["original_offset"] == "1"
    assert int(headers_of(retry)["retry_due"]) > int(headers_of(retry)["retry_first_failure"])
    for record, offset, error_type in ((permanent, 2, "permanent"),
                                       (garbage, 3, "deserialization")):  # fmt: skip
        headers = headers_of(record)
        assert headers["trace"] == f"t-{offset}"
        assert headers["error_type"] == error_type
        assert (headers["original_topic"], headers["original_partition"],
                headers["original_offset"]) == (SOURCE, "0", str(offset))  # fmt: skip
        assert headers["attempts"] == "1" and headers["consumer_group"] == "unit"
    assert "1500.00" in headers_of(permanent)["error_reason"]
    assert clients.consumer_made.stored[SOURCE, 0] == 4  # every order done


def test_no_source_offset_passes_a_record_the_broker_has_not_acknowledged():
    batch = [Record(SOURCE, 0, n, key, value) for n, (key, value) in enumerate(ORDERS)]
    stored_while_waiting: list[int | None] = []

    def then(consumer: StandInConsumer) -> bool:
        stored_while_waiting.append(consumer.stored.get((SOURCE, 0)))
        if len(stored_while_waiting) == 40:  # 0.4 s: four checkpoints without an answer
            consumer.producer.acknowledging = True
        return len(stored_while_waiting) < 70

    clients = run([batch], then)
    waiting = stored_while_waiting[:40]
    # Offset 0 was processed; offset 1's retry record was not acknowledged: at most 1.
    assert all(s is None or s <= 1 for s in waiting)
    assert clients.consumer_made.stored[SOURCE, 0] == 4


def test_a_retry_not_due_pauses_its_partition_until_it_is():
    due_ms = int((time.time() + 0.5) * 1000)
    headers = [("error_reason", b"down"), ("retry_attempts", b"1"),
               ("retry_due", b"%d" % due_ms), ("retry_first_failure", b"%d" % (due_ms - 500)),
               ("original_topic", SOURCE.encode()), ("original_partition", b"0"),
               ("original_offset", b"7"), ("original_timestamp", b"1700000000000")]  # fmt: skip
    value = avro("k-retry", "Mug", 500.0)  # recovers: 500 is outside the failure bands
    record = Record(RETRY_1, 0, 0, b"k-retry", value, headers)
    polls: list[tuple[float, bool]] = []  # (when, paused)

    def then(consumer: StandInConsumer) -> bool:
        paused = (RETRY_1, 0) in consumer.paused
        if paused and not polls:
            consumer.batches.append([record])  # read again once resumed, from the seek
        polls.append((time.time(), paused))
        consumer.producer.acknowledging = True
        return time.time() < due_ms / 1000 + 0.3

    clients = run([[record]], then)
    assert polls[0][1]  # paused at once
    resumed_at = next(when for when, paused in polls if not paused)
    assert due_ms / 1000 <= resumed_at < due_ms / 1000 + 0.1  # resumed when due
    assert clients.consumer_made.stored[RETRY_1, 0] == 1  # then processed: done
    assert clients.producer_made.acknowledged == []  # nothing retried or dead-lettered


def test_a_retry_partition_paused_then_lost_is_read_once_held_again():
    """librdkafka keeps a partition's pause across losing and regaining it: a retry
    partition paused until its head was due, lost in a failover and assigned again, was
    never read again (the pipeline had forgotten why it paused it)."""
    due_ms = int((time.time() + 60) * 1000)  # not due during the test
    headers = [("error_reason", b"down"), ("retry_attempts", b"1"),
               ("retry_due", b"%d" % due_ms), ("retry_first_failure", b"%d" % due_ms),
               ("original_topic", SOURCE.encode()), ("original_partition", b"0"),
               ("original_offset", b"7"), ("original_timestamp", b"1700000000000")]  # fmt: skip
    record = Record(RETRY_1, 0, 0, b"k-retry", avro("k-retry", "Mug", 500.0), headers)
    seen: dict[str, object] = {}

    def then(consumer: StandInConsumer) -> bool:
        if "lost" not in seen and (RETRY_1, 0) in consumer.paused:
            tp = TopicPartition(RETRY_1, 0)
            consumer.on_lost(consumer, [tp])
            consumer.on_assign(consumer, [tp])  # the same member gets it back
            seen["lost"] = True
            seen["paused after"] = (RETRY_1, 0) in consumer.paused
        return "lost" not in seen

    run([[record]], then)
    assert seen == {"lost": True, "paused after": False}


def test_a_pause_asked_before_the_partitions_came_holds_them_once_assigned():
    batch = [Record(SOURCE, 0, n, key, value) for n, (key, value) in enumerate(ORDERS[:1])]
    seen: dict[str, object] = {}

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        polls = seen.setdefault("polls", 0) + 1
        seen["polls"] = polls
        if polls == 20:  # 0.2 s paused: nothing consumed
            seen["paused"] = set(consumer.paused)
            seen["stored_while_paused"] = dict(consumer.stored)
            consumer.pipeline.resume()
        return polls < 40

    clients = run([batch], then, paused=True)
    assert seen["paused"] == {(t, 0) for t in (SOURCE, RETRY_1, "orders-unit-retry-2",
                                               "orders-unit-retry-3")}  # fmt: skip
    assert seen["stored_while_paused"] == {}
    assert clients.consumer_made.stored[SOURCE, 0] == 1  # resumed: consumed and done


def test_a_failed_commit_is_counted_and_said_and_the_stop_says_what_comes_again():
    batch = [Record(SOURCE, 0, 0, *ORDERS[0])]
    said: list[str] = []

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        consumer.refuse_commits = True
        return len(said) < 1 and consumer.polls_left() > 0

    clients = run([batch], then, said=said)
    assert clients.pipeline.stats.commit_failures >= 1
    assert "commit failed: Broker: Group rebalance in progress; it is tried again" in said
    assert any("could not commit before stopping" in line and "orders[0] since this run "
               "started" in line for line in said), said  # fmt: skip


def test_lost_partitions_are_forgotten_never_committed_by_their_old_owner():
    """`on_lost` (the session ended behind our back): another member owns them already;
    what was done here is not stored, so nothing overwrites the new owner's commits."""
    batch = [Record(SOURCE, 0, n, key, value) for n, (key, value) in enumerate(ORDERS)]
    seen: dict[str, object] = {}

    def then(consumer: StandInConsumer) -> bool:
        polls = seen.setdefault("polls", 0) + 1
        seen["polls"] = polls
        if polls == 1:  # the retry and DLQ records are not acknowledged yet
            consumer.on_lost(consumer, [TopicPartition(SOURCE, 0)])
            seen["stored_at_loss"] = dict(consumer.stored)
        if polls == 5:
            consumer.producer.acknowledging = True
        return polls < 30

    clients = run([batch], then)
    assert (SOURCE, 0) not in seen["stored_at_loss"]
    assert (SOURCE, 0) not in clients.consumer_made.stored  # not even once acknowledged


def test_a_revoked_partition_is_flushed_and_committed_before_it_goes():
    """A rebalance takes partition 0 while its retry and DLQ records are unacknowledged:
    the revoke flushes them, stores the offset past every order, and commits it
    synchronously before letting the partition go, so its next owner redoes nothing."""
    batch = [Record(SOURCE, 0, n, key, value) for n, (key, value) in enumerate(ORDERS)]
    seen: dict[str, object] = {}

    def then(consumer: StandInConsumer) -> bool:
        polls = seen.setdefault("polls", 0) + 1
        seen["polls"] = polls
        if polls == 1:
            assert consumer.producer.acknowledged == []  # written, not yet acknowledged
            consumer.producer.acknowledging = True  # the broker answers a flush now
            commits: list[tuple[bool, dict]] = []
            commit = consumer.commit

            def watched(asynchronous: bool = True) -> list[TopicPartition]:
                commits.append((asynchronous, dict(consumer.stored)))
                return commit(asynchronous)

            consumer.commit = watched
            consumer.on_revoke(consumer, [TopicPartition(SOURCE, 0)])
            seen["commits"] = list(commits)  # those of the revoke alone
            seen["acknowledged"] = len(consumer.producer.acknowledged)
            seen["assigned"] = [(tp.topic, tp.partition) for tp in consumer.assigned]
        return polls < 5

    run([batch], then)
    assert seen["acknowledged"] == 3  # the retry and two DLQ records
    assert seen["commits"] == [(False, {(SOURCE, 0): 4})]  # synchronous, past all four
    assert (SOURCE, 0) not in seen["assigned"]


def test_a_revoked_retry_partition_waits_for_its_next_owner():
    """A retry not due yet, its partition revoked: the head is left for the next owner
    (stored at the head, not past it) and never resumed here."""
    due_ms = int((time.time() + 0.3) * 1000)
    headers = [("error_reason", b"down"), ("retry_attempts", b"1"),
               ("retry_due", b"%d" % due_ms), ("retry_first_failure", b"%d" % (due_ms - 300)),
               ("original_topic", SOURCE.encode()), ("original_partition", b"0"),
               ("original_offset", b"7"), ("original_timestamp", b"1700000000000")]  # fmt: skip
    record = Record(RETRY_1, 0, 4, b"k-retry", avro("k-retry", "Mug", 500.0), headers)
    polls: list[int] = []

    def then(consumer: StandInConsumer) -> bool:
        polls.append(1)
        consumer.producer.acknowledging = True
        if len(polls) == 1:
            consumer.on_revoke(consumer, [TopicPartition(RETRY_1, 0)])
        return time.time() < due_ms / 1000 + 0.3  # past due: a resume would have come

    clients = run([[record]], then)  # the stand-in refuses a resume of what it lost
    assert clients.consumer_made.stored.get((RETRY_1, 0), 4) == 4  # the head, not past it
    assert clients.producer_made.acknowledged == []  # not processed here


class Registry:
    """A schema registry stand-in: down until told otherwise."""

    name = "the stand-in registry"

    def __init__(self) -> None:
        self.down, self.asked, self.last_answer = True, 0, 0.0

    def writer_schema(self, schema_id: int) -> WriterSchema | None:
        self.asked += 1
        if self.down:
            raise WriterSchemaUnavailable("connection refused")
        self.last_answer = time.monotonic()
        with open("schemas/order.avsc") as schema:
            return WriterSchema(json.load(schema), "orders-value", 1)


def test_a_record_whose_schema_cannot_be_fetched_waits_and_is_never_dead_lettered():
    framed = b"\x00\x00\x00\x00\x05" + avro("k-framed", "Lamp", 300.0)  # schema id 5
    batch = [Record(SOURCE, 0, 0, *ORDERS[0]), Record(SOURCE, 0, 1, b"k-framed", framed),
             Record(SOURCE, 0, 2, b"k-after", avro("k-after", "Mug", 400.0))]  # fmt: skip
    registry, said, seen = Registry(), [], {}

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        polls = seen["polls"] = seen.get("polls", 0) + 1
        paused = (SOURCE, 0) in consumer.paused
        if polls == 1:
            seen["paused"], seen["position"] = paused, consumer.positions[SOURCE, 0]
        if seen.get("was paused") and not paused:  # resumed: read again from the seek
            consumer.batches.append(batch[consumer.positions[SOURCE, 0] :])
        seen["was paused"] = paused
        if polls == 250:  # 2.5 s: asked again each second, still down
            seen["stored while down"] = consumer.stored.get((SOURCE, 0))
            seen["asked while down"] = registry.asked
            registry.down = False
        return polls < 450

    clients = run([batch], then, said=said, schemas=registry)
    assert seen["paused"] and seen["position"] == 1  # waits at the record
    assert seen["stored while down"] == 1  # the record before it is done; not past it
    assert seen["asked while down"] in (2, 3)  # read again each second
    assert clients.consumer_made.stored[SOURCE, 0] == 3  # then all done
    assert clients.producer_made.acknowledged == []  # nothing dead-lettered
    assert any("the stand-in registry does not answer (connection refused)" in s for s in said)
    assert any("the stand-in registry answers again after" in s for s in said)
    assert clients.pipeline.stats.registry_outages == 1


def test_a_fatal_client_error_stops_the_run_with_its_message_and_stores_nothing_more():
    """librdkafka's fatal error (the client cannot go on): the run ends with a one-line
    error naming it, and what was consumed after it is not committed."""
    first = [Record(SOURCE, 0, 0, *ORDERS[0])]
    after = [Record(SOURCE, 0, 1, b"k-after", avro("k-after", "Mug", 400.0))]
    seen: dict[str, object] = {}

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        polls = seen["polls"] = seen.get("polls", 0) + 1
        if polls == 20:  # the first order committed; then the client fails for good
            seen["stored before"], seen["consumer"] = dict(consumer.stored), consumer
            consumer.config["error_cb"](KafkaError(KafkaError._FATAL, "boom: fenced", fatal=True))
            consumer.batches.append(after)
        return polls < 200

    with pytest.raises(KafkaRefused, match="Kafka error: boom: fenced") as stopped:
        run([first], then)
    assert seen["stored before"] == seen["consumer"].stored == {(SOURCE, 0): 1}
    assert stopped.value.exit_code == 1
    assert seen["polls"] < 200  # it stopped at once, not at the test's end


LEFT = {(SOURCE, 2): 4411, (RETRY_1, 0): 3}  # what the group has not committed


@pytest.mark.parametrize(
    ("owners", "drained", "line"),
    [
        ({}, False, "not drained: orders[2] lag 4,411, orders-unit-retry-1[0] lag 3"),
        (dict.fromkeys(LEFT, "host-1@/127.0.0.1"), True,
         "left to other live members: orders[2] (host-1@/127.0.0.1), "
         "orders-unit-retry-1[0] (host-1@/127.0.0.1)"),
    ],
)  # fmt: skip
def test_idle_exit_waits_for_what_is_left_then_names_it_and_who_holds_it(
    monkeypatch, owners, drained, line
):
    """--idle-exit with partitions the group has not committed to their end: it waits
    (a dead member's partitions move once its session ends), then says what is left;
    all of it held by live members is a drained exit, naming them."""
    monkeypatch.setattr("orders_tui.kafka.pipeline.drain.DRAIN_WAIT", 0.5)
    clients = StandIns([[Record(SOURCE, 0, 0, *ORDERS[0])]], lambda consumer: True)
    pipeline = Pipeline(KafkaSettings("stand-in:9092", SOURCE, DLQ),
                        EngineConfig(group="unit", exactly_once=False, instance_id="unit"),
                        clients=clients)  # fmt: skip
    clients.pipeline = pipeline
    monkeypatch.setattr(GroupView, "lag", lambda self, *args, **kwargs: LEFT)
    monkeypatch.setattr(GroupView, "owners", lambda self, instance_id: owners)
    started = time.monotonic()
    pipeline.run(idle_exit=0.1)
    assert time.monotonic() - started >= 0.6  # idle 0.1 s, then the wait
    assert (pipeline.drain.drained, pipeline.drain.describe()) == (drained, line)


def test_consume_exits_3_when_not_drained_and_says_what_is_left(monkeypatch, capsys):
    from orders_tui.cli.main import main
    from orders_tui.kafka.pipeline import DrainResult

    def not_drained(self, idle_exit=None):
        self.drain = DrainResult(False, {(SOURCE, 2): 4411})
        return self.stats

    monkeypatch.setattr(Pipeline, "run", not_drained)
    monkeypatch.setattr("orders_tui.kafka.topics.ensure_topics", lambda *args, **kwargs: None)
    monkeypatch.setattr("signal.signal", lambda *args: None)  # pytest keeps its own
    assert main(["consume", "--headless", "--idle-exit", "1", "-b", "stand-in:9092"]) == 3
    assert "orders-tui: not drained: orders[2] lag 4,411" in capsys.readouterr().err


class SlowCommitProducer(StandInProducer):
    """A transactional producer whose commits time out until `answers_at` (monotonic
    seconds), as librdkafka's do when the broker is slower than the call's timeout."""

    def __init__(self, answers_at: float, code: int = KafkaError._TIMED_OUT) -> None:
        super().__init__()
        self.answers_at, self.code = answers_at, code
        self.commits = 0

    def init_transactions(self, timeout: float) -> None:
        pass

    def begin_transaction(self) -> None:
        pass

    def send_offsets_to_transaction(self, offsets, metadata, timeout: float) -> None:
        pass

    def abort_transaction(self, timeout: float) -> None:
        self.in_flight = []

    def commit_transaction(self, timeout: float) -> None:
        if time.monotonic() < self.answers_at:
            raise KafkaException(KafkaError(self.code))
        self.commits += 1
        self.acknowledged += self.in_flight
        self.in_flight = []


@pytest.mark.parametrize("code", [KafkaError._TIMED_OUT, KafkaError.CONCURRENT_TRANSACTIONS],
                         ids=["timed-out", "concurrent-transactions"])  # fmt: skip
@pytest.mark.parametrize(("slow_for", "said"), [(0.6, False), (60.0, True)])
def test_a_slow_transaction_commit_is_a_failure_only_once_it_lasts(monkeypatch, slow_for, said,
                                                                   code):  # fmt: skip
    """Exactly-once: a commit that runs past a checkpoint's timeout, or meets a
    coordinator still finishing a predecessor's transaction after a restart
    (CONCURRENT_TRANSACTIONS), is completed by a later checkpoint; only one still pending
    after SLOW_COMMIT_GRACE is counted and said (a loaded machine printed 'commit failed'
    for a commit that then went through)."""
    monkeypatch.setattr("orders_tui.kafka.pipeline.exactly_once.SLOW_COMMIT_GRACE", 1.0)
    batch = [Record(SOURCE, 0, n, key, value) for n, (key, value) in enumerate(ORDERS)]
    lines: list[str] = []
    started = time.monotonic()
    clients = StandIns([batch], lambda consumer: True)
    clients.producer_made = SlowCommitProducer(answers_at=started + slow_for, code=code)
    pipeline = Pipeline(KafkaSettings("stand-in:9092", SOURCE, DLQ),
                        EngineConfig(group="unit", exactly_once=True, instance_id="unit"),
                        clients=clients, on_report=lines.append)  # fmt: skip
    clients.pipeline = pipeline
    monkeypatch.setattr(StandInConsumer, "consumer_group_metadata", lambda self: object(),
                        raising=False)  # fmt: skip
    threading.Timer(2.0, pipeline.stop).start()  # a commit pending keeps the loop from polling
    pipeline.run()
    failures = [line for line in lines if line.startswith("commit failed")]
    assert (pipeline.stats.commit_failures > 0, bool(failures)) == (said, said), lines
    if not said:
        assert clients.producer_made.commits > 0  # it went through in the end
        assert [t for t, *_ in clients.producer_made.acknowledged] == [RETRY_1, DLQ, DLQ]


def _stats(state_for_seconds: float, heard_seconds_ago: float = -1) -> str:
    """librdkafka's statistics: one broker UP for that long (`stateage`, microseconds),
    which last received that long ago (`rxidle`; -1: never)."""
    rxidle = int(heard_seconds_ago * 1e6) if heard_seconds_ago >= 0 else -1
    broker = {"source": "learned", "state": "UP", "stateage": int(state_for_seconds * 1e6),
              "rxidle": rxidle}  # fmt: skip
    return json.dumps({"brokers": {"127.0.0.1:9092/1": broker}})


def _exactly_once_pipeline(said: list[str] | None = None) -> Pipeline:
    return Pipeline(KafkaSettings("stand-in:9092", SOURCE, DLQ),
                    EngineConfig(group="unit", exactly_once=True, instance_id="unit"),
                    clients=StandIns([], lambda consumer: False),
                    on_report=None if said is None else said.append)  # fmt: skip


def test_one_outage_is_one_loss_even_when_the_producer_hears_of_it_first():
    """The producer's error callback says all brokers are down while the consumer's
    statistics still show its old connection up: that is not a restore (a broker
    stopped once was counted as two losses, with a 'restored' line between). A
    connection up since the loss is."""
    said: list[str] = []
    pipeline = _exactly_once_pipeline(said)
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN)
    pipeline.connection.on_producer_error(down)
    pipeline.connection.on_stats(_stats(600.0, heard_seconds_ago=1.0))  # up 10 min, quiet since
    pipeline.connection.on_error(down)  # ... which it now notices is gone
    assert pipeline.stats.connection_losses == 1
    assert not any("restored" in line for line in said), said
    time.sleep(0.3)
    pipeline.connection.on_stats(_stats(0.1))  # reconnected after the loss
    assert pipeline.stats.connection_losses == 1
    assert len(said) == 2, said
    assert said[0].startswith("lost the connection to Kafka at stand-in:9092")
    assert said[1].startswith("connection to Kafka restored after")


def test_an_old_connection_that_hears_nothing_after_the_loss_is_no_restore():
    """The only broker killed: a socket to it can stay UP in the statistics, with nothing
    received since. Taken for a restore after a grace of 3 s, it made 'connection to
    Kafka restored after 3.4 s' while the broker was still dead."""
    said: list[str] = []
    pipeline = _exactly_once_pipeline(said)
    pipeline.connection.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    time.sleep(0.5)
    pipeline.connection.on_stats(_stats(600.5, heard_seconds_ago=0.6))  # last heard before the loss
    pipeline.connection.on_stats(_stats(600.5, heard_seconds_ago=-1))
    assert pipeline.state.down_since is not None
    assert not any("restored" in line for line in said), said


def test_an_outage_only_the_producer_saw_ends_when_the_old_connection_hears_its_broker():
    """The producer said all brokers were down; the consumer's connection, older than
    that, goes on receiving: the broker is there, so commits (held while Kafka is away)
    do not wait for good."""
    pipeline = _exactly_once_pipeline()
    pipeline.connection.on_producer_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    time.sleep(0.3)
    pipeline.connection.on_stats(_stats(600.3, heard_seconds_ago=0.1))
    assert pipeline.state.down_since is None and pipeline.stats.connection_losses == 1


class FatalRecord(Record):
    """What consume() hands out when the client has failed for good: a message whose
    error is librdkafka's _FATAL, with the cause in its text."""

    def __init__(self, text: str) -> None:
        super().__init__(SOURCE, 0, -1001, None, None)
        self.text = text

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._FATAL, self.text, fatal=True)


FENCED = "Fatal error: Broker: Static consumer fenced by other consumer with same group.instance.id"


def test_a_fenced_static_member_told_by_a_message_gets_a_new_consumer_and_goes_on():
    """After an outage a static member fenced by its own successor heard it only from
    consume(), which was reported and nothing more: alive, holding nothing, 90,491 orders
    waiting for 5.5 minutes. The consumer is replaced, as when the error callback says it."""
    after = [Record(SOURCE, 0, 1, b"k-after", avro("k-after", "Mug", 400.0))]
    seen: dict[str, object] = {"consumers": []}
    said: list[str] = []

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        if consumer not in seen["consumers"]:
            seen["consumers"].append(consumer)
            if len(seen["consumers"]) == 1:
                consumer.pipeline.clients.batches[:] = [after]  # what the next one gets
        seen["polls"] = seen.get("polls", 0) + 1
        return seen["polls"] < 60

    clients = run([[Record(SOURCE, 0, 0, *ORDERS[0]), FatalRecord(FENCED)]], then, said=said)
    assert len(seen["consumers"]) == 2  # replaced, not left consuming nothing
    assert any("the consumer was fenced" in line and "Static consumer fenced" in line
               for line in said)  # fmt: skip
    assert clients.consumer_made.stored == {(SOURCE, 0): 2}  # the order after it was done


def test_a_replaced_consumers_callbacks_no_longer_touch_the_pipeline():
    """A replaced consumer closes on a thread of its own, and as it closes it calls back:
    its partitions lost, its fencing. Taken as the new consumer's, they made the pipeline
    forget partitions the new one held (1,040 orders never finished after a broker
    restart) and replace it again."""
    after = [Record(SOURCE, 0, 1, b"k-after", avro("k-after", "Mug", 400.0))]
    seen: dict[str, object] = {"consumers": []}

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        if consumer not in seen["consumers"]:
            seen["consumers"].append(consumer)
            if len(seen["consumers"]) == 1:
                consumer.pipeline.clients.batches[:] = [after]
            else:  # the first one, closing: what its callbacks would say meanwhile
                old = seen["consumers"][0]
                old.on_lost(old, [TopicPartition(SOURCE, 0)])
                old.config["error_cb"](KafkaError(KafkaError._FATAL, FENCED, fatal=True))
        seen["polls"] = seen.get("polls", 0) + 1
        return seen["polls"] < 60

    clients = run([[Record(SOURCE, 0, 0, *ORDERS[0]), FatalRecord(FENCED)]], then)
    assert len(seen["consumers"]) == 2  # replaced once, not again for the old one's fencing
    assert clients.consumer_made.stored == {(SOURCE, 0): 2}  # the order after it was done


def test_any_other_fatal_error_told_by_a_message_ends_the_run_with_one_line():
    seen: dict[str, int] = {}

    def then(consumer: StandInConsumer) -> bool:
        seen["polls"] = seen.get("polls", 0) + 1
        return seen["polls"] < 200

    with pytest.raises(KafkaRefused, match="Kafka error: Fatal error: out of sequence") as ended:
        run([[FatalRecord("Fatal error: out of sequence")]], then)
    assert ended.value.exit_code == 1
    assert seen.get("polls", 0) < 200  # at once


def test_a_broker_without_the_consumer_group_protocol_ends_the_run_saying_what_to_drop():
    """-X group.protocol=consumer on a broker without KIP-848 (the message librdkafka
    gave against Kafka 4.1 with group.coordinator.rebalance.protocols=classic)."""
    text = ("Fatal error: Broker: API version not supported: ConsumerGroupHeartbeat fatal "
            "error: Broker: API version not supported")  # fmt: skip
    with pytest.raises(KafkaRefused, match=r"drop -X group\.protocol=consumer") as ended:
        run([[FatalRecord(text)]], lambda consumer: True)
    assert "Kafka 4.0 or later" in str(ended.value) and ended.value.exit_code == 1


def test_a_member_that_holds_nothing_while_work_waits_says_so_again_and_again(monkeypatch):
    """Alive, holding no partition after a rebalance, and the group's records waiting:
    never silent (a fenced member sat so for 5.5 minutes)."""
    from orders_tui.kafka.pipeline import drain, reports

    monkeypatch.setattr(drain, "IDLE_WITH_WORK_AFTER", 0.2)
    monkeypatch.setattr(drain, "IDLE_WITH_WORK_EVERY", 0.4)
    monkeypatch.setattr(reports, "REPORT_EVERY", 0.1)
    monkeypatch.setattr(GroupView, "lag", lambda self, *a, **k: {(SOURCE, 2): 4411})
    said: list[str] = []
    seen = {"polls": 0}

    def then(consumer: StandInConsumer) -> bool:
        consumer.producer.acknowledging = True
        seen["polls"] += 1
        if seen["polls"] == 1:  # a rebalance takes every partition away
            consumer.on_revoke(consumer, list(consumer.assigned))
        return seen["polls"] < 150  # about 1.5 s

    run([[Record(SOURCE, 0, 0, *ORDERS[0])]], then, said=said)
    idle = [line for line in said if line.startswith("holding no partition")]
    assert len(idle) >= 2
    assert "4,411 records wait in group 'unit' (orders[2] 4,411)" in idle[0]


def test_a_fresh_brokers_missing_transaction_coordinator_is_said_as_expected_once():
    """A fresh broker answers the first transactional producer `Not coordinator` while it
    makes its transaction state topic: a wait, said as such, not the broker's words."""
    said: list[str] = []
    pipeline = _exactly_once_pipeline(said)
    answers = [KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, None]

    class FreshBrokerDelivery:
        def begin(self, timeout: float) -> None:
            code = answers.pop(0)
            if code is not None:
                raise KafkaException(KafkaError(code, "Failed to initialize Producer ID: Broker: "
                                                "Not coordinator", retriable=True))  # fmt: skip

        def poll(self, timeout: float) -> None:
            pass

    pipeline.state.delivery = FreshBrokerDelivery()
    pipeline.run_clients.begin()
    assert answers == []  # it waited through both, then started
    assert said == ["waiting for the transaction coordinator (a new broker takes a few seconds)"]
