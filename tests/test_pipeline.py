"""The consumer pipeline against the real broker: what Kafka holds afterwards."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from orders_tui.domain.codec import WireFormat, decode
from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.domain.retry import Backoff
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.dlq import FAILURE_HEADERS, DlqEntry
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.pipeline import Finished, Pipeline
from orders_tui.kafka.producer import OrderProducer
from orders_tui.kafka.topics import ensure_topics
from tests.expectations import ATTEMPTS, dead_lettered, failing_attempts, transient
from tests.kafka_helpers import group_state, read_all, stacks, uncommitted

pytestmark = pytest.mark.kafka

FAST_RETRIES = Backoff(base=0.05, cap=0.2)


def run_pipeline(settings, group, backoff=FAST_RETRIES, idle_exit=1.5):
    finished: list[Finished] = []
    pipeline = Pipeline(
        settings, EngineConfig(group=group, backoff=backoff), on_finished=finished.extend
    )
    stats = pipeline.run(idle_exit=idle_exit)
    return stats, finished


def produce_orders(settings, count: int, seed: int) -> list[Order]:
    orders: list[Order] = []
    result = OrderProducer(settings, seed=seed, on_order=orders.append).produce(count)
    assert result.delivered == count
    return orders


def test_500_orders_end_processed_or_dead_lettered_as_the_rules_predict(settings, group):
    orders = produce_orders(settings, 500, seed=42)
    stats, finished = run_pipeline(settings, group)

    processed = {f.order_id for f in finished if f.outcome == "processed"}
    dead = {f.order_id for f in finished if f.outcome == "dead_lettered"}
    assert processed.isdisjoint(dead)
    assert processed | dead == {o.orderId for o in orders}
    assert dead == {o.orderId for o in orders if dead_lettered(o)}

    # Aggregates equal sums computed independently from the produced orders.
    ok = [o.price for o in orders if o.orderId in processed]
    assert stats.processed == len(ok)
    assert math.isclose(stats.total_price, sum(ok), rel_tol=1e-12)
    assert (stats.min_price, stats.max_price) == (min(ok), max(ok))
    recovered = [o for o in orders if o.orderId in processed and transient(o)]
    assert stats.recovered == len(recovered)
    assert stats.dead_lettered == len(dead)
    by_type = stats.dead_lettered_by_type
    assert by_type["permanent"] == sum(o.price > 1000 for o in orders)
    assert by_type["permanent"] + by_type["retries_exhausted"] == len(dead)
    # k failing attempts mean k retries, but never more than the 3 allowed.
    expected_retries = sum(min(failing_attempts(o.orderId), 3) for o in orders if transient(o))
    assert stats.retry_attempts == expected_retries

    # Every DLQ record carries the source record's key and value byte for byte.
    bootstrap = settings.bootstrap_servers
    dlq = [DlqEntry.from_message(m) for m in read_all(bootstrap, settings.dlq_topic, len(dead))]
    assert {e.key.decode() for e in dlq} == dead
    sources = {(m.partition(), m.offset()): m for m in read_all(bootstrap, settings.topic, 500)}
    for entry in dlq:
        headers = dict(entry.decoded_headers())
        assert set(FAILURE_HEADERS) <= set(headers)
        topic, partition, offset = entry.original
        assert topic == settings.topic
        assert headers["consumer_group"] == group
        source = sources[partition, offset]
        assert (entry.key, entry.value) == (source.key(), source.value())
        assert headers["original_timestamp"] == str(source.timestamp()[1])
        assert int(headers["timestamp"]) >= source.timestamp()[1]
        order = decode(entry.value)
        if headers["error_type"] == "permanent":
            assert headers["attempts"] == "1"
            assert f"{order.price:.2f}" in headers["error_reason"]
        else:
            assert headers["error_type"] == "retries_exhausted"
            assert headers["attempts"] == str(ATTEMPTS)

    # A second run in the same group finds nothing new: the offsets were committed.
    again, finished_again = run_pipeline(settings, group, idle_exit=1.0)
    assert again.consumed == 0
    assert finished_again == []


def _schema_bytes(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def test_poison_pills_go_to_the_dlq_byte_for_byte(settings, group):
    good = [Order(f"good-{i}", "Lamp", 100.0 + i) for i in range(6)]
    pills = {
        "random": os.urandom(64),
        "empty": b"",
        "truncated": encode(Order("trunc", "Lamp", 10.0))[:-5],
        "other-schema": _schema_bytes(
            {"type": "record", "name": "Pay", "fields": [{"name": "amount", "type": "long"}]},
            {"amount": 123456789},
        ),
        "text": b"hello, not avro \x1b[31m[bold]",
    }
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for i, (name, value) in enumerate(pills.items()):
        producer.produce(settings.topic, encode(good[i]), good[i].orderId, partition=0)
        producer.produce(settings.topic, value, f"pill-{name}", partition=0,
                         headers=[("source", b"fuzzer")])  # fmt: skip
    producer.produce(settings.topic, encode(good[5]), good[5].orderId, partition=0)
    assert producer.flush(10) == 0

    stats, finished = run_pipeline(settings, group)
    assert {f.order_id for f in finished if f.outcome == "processed"} == {o.orderId for o in good}
    assert stats.dead_lettered_by_type == {"deserialization": len(pills)}

    dlq = read_all(settings.bootstrap_servers, settings.dlq_topic, len(pills))
    by_key = {m.key().decode(): DlqEntry.from_message(m) for m in dlq}
    assert set(by_key) == {f"pill-{n}" for n in pills}
    for name, value in pills.items():
        entry = by_key[f"pill-{name}"]
        assert (entry.value or b"") == value
        assert entry.error_type == "deserialization"
        assert entry.reason  # a sentence saying what was wrong
        assert entry.headers[0] == ("source", b"fuzzer")  # the source's headers are kept


def _consume_cli(settings, group, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "orders_tui", "consume", "--headless",
        "-b", settings.bootstrap_servers, "--topic", settings.topic,
        "--dlq-topic", settings.dlq_topic, "--group", group, "--retry-backoff", "0.05",
        # A killed member holds its partitions until its session times out (45 s by
        # default); the broker's minimum keeps the test short.
        "-X", "session.timeout.ms=6000", *extra,
    ]  # fmt: skip


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def _records(path: Path) -> list[dict]:
    """The outcome log's whole records. The consumer may be writing its last line, and a
    killed run leaves its last line cut short (those orders come again), so a fragment
    is skipped."""
    records = []
    for line in path.read_text().split("\n")[:-1]:  # the text after the last newline is partial
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def test_sigkill_mid_run_loses_no_order(settings, group, tmp_path):
    orders = produce_orders(settings, 30_000, seed=9)
    outcomes = tmp_path / "outcomes.jsonl"
    for kill_after in (2_000, 12_000, 24_000):
        proc = subprocess.Popen(_consume_cli(settings, group, "--outcomes", str(outcomes)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while _lines(outcomes) < kill_after and proc.poll() is None:
            assert time.monotonic() < deadline, "the consumer made no progress"
            time.sleep(0.02)
        # Killed while it ran (not ended by itself), and it had said nothing alarming.
        assert proc.poll() is None, f"the consumer ended by itself: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        assert "Traceback" not in proc.stderr.read().decode()
    final = subprocess.run(
        _consume_cli(settings, group, "--outcomes", str(outcomes), "--idle-exit", "2", "--json"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    records = _records(outcomes)
    processed = {r["order_id"] for r in records if r["outcome"] == "processed"}
    dlq_keys = {m.key().decode() for m in read_all(settings.bootstrap_servers, settings.dlq_topic)}
    everything = {o.orderId for o in orders}
    assert everything <= processed | dlq_keys  # duplicates allowed, loss never
    assert len(records) >= len(everything)


def test_retries_do_not_stall_the_stream(settings, group):
    orders = produce_orders(settings, 20_000, seed=5)
    backoff = Backoff(base=1.0)
    # Retry n waits 1 s * 2**(n-1), jittered down by a quarter on average.
    summed_backoff = sum(
        2 ** (n - 1) * 0.75
        for o in orders
        if transient(o)
        for n in range(1, min(failing_attempts(o.orderId), 3) + 1)
    )
    started = time.monotonic()
    stats, _ = run_pipeline(settings, group, backoff=backoff, idle_exit=1.0)
    elapsed = time.monotonic() - started
    assert stats.processed + stats.dead_lettered == 20_000
    assert summed_backoff > 500
    # The longest chain alone is 1 + 2 + 4 s; everything else overlaps with it.
    assert elapsed < 0.05 * summed_backoff, (elapsed, summed_backoff)


def test_sigterm_stops_the_engine_within_5_seconds_and_commits(settings, group, tmp_path):
    produce_orders(settings, 200, seed=1)
    outcomes = tmp_path / "outcomes.jsonl"
    proc = subprocess.Popen(_consume_cli(settings, group, "--json", "--outcomes", str(outcomes)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while _lines(outcomes) < 200:  # the backlog is done
        assert time.monotonic() < deadline and proc.poll() is None, "no progress"
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 0, err
    assert json.loads(out)["consumed"] == 200
    again, _ = run_pipeline(settings, group, idle_exit=1.0)
    assert again.consumed == 0


def test_a_dlq_that_refuses_records_stops_the_engine_and_loses_nothing(settings, group):
    """A DLQ topic whose records limit is below a DLQ record's size: the broker refuses
    it for good. The engine stops with one line saying what to do; the source offset
    stays uncommitted, so once the topic is fixed a re-run dead-letters the order."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})

    def set_dlq_limit(limit: int) -> None:
        entry = ConfigEntry(
            "max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET
        )
        resource = ConfigResource(
            ConfigResource.Type.TOPIC, settings.dlq_topic, incremental_configs=[entry]
        )
        for future in admin.incremental_alter_configs([resource]).values():
            future.result()

    set_dlq_limit(100)
    orders = produce_orders(settings, 200, seed=5)
    expected_dead = {o.orderId for o in orders if dead_lettered(o)}

    first = subprocess.run(
        [*_consume_cli(settings, group, "--idle-exit", "2")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 1
    error_lines = [line for line in first.stderr.splitlines() if line.strip()]
    assert error_lines[-1].startswith(
        f"orders-tui: a record for {settings.dlq_topic!r} was refused"
    )
    assert "Traceback" not in first.stderr
    assert read_all(settings.bootstrap_servers, settings.dlq_topic) == []

    set_dlq_limit(1_048_588)
    second = subprocess.run(
        [*_consume_cli(settings, group, "--idle-exit", "2")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    dead = {m.key().decode() for m in read_all(settings.bootstrap_servers, settings.dlq_topic)}
    assert dead == expected_dead


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_a_broker_restart_mid_run_loses_no_order(tmp_path, own_broker, guarantee):
    """The broker stops while retries are pending and starts again: writes wait for it,
    and every order ends processed or dead-lettered, including orders produced after the
    restart; exactly-once also writes no DLQ record twice. A broker of its own, so the
    session's broker is left alone."""
    broker = own_broker
    proc = None
    try:
        settings = KafkaSettings(broker.bootstrap, "orders", "orders-dlq")
        ensure_topics(settings, [settings.topic, settings.dlq_topic])
        orders = produce_orders(settings, 2_000, seed=21)
        outcomes = tmp_path / "outcomes.jsonl"
        stderr_path = tmp_path / "stderr.txt"
        # Retries 1 s apart: some come due, and some exhaust into the DLQ, while the
        # broker is down.
        proc = subprocess.Popen(
            [*_consume_cli(settings, "restart-group", "--outcomes", str(outcomes)),
             "--retry-backoff", "1", *(["--at-least-once"] if guarantee == "at-least-once"
                                       else [])],
            stdout=subprocess.DEVNULL, stderr=stderr_path.open("w"),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while _lines(outcomes) < 1_500:
            assert time.monotonic() < deadline and proc.poll() is None, "no progress"
            time.sleep(0.05)
        broker.stop()
        time.sleep(2)
        broker.start()
        orders += produce_orders(settings, 1_000, seed=22)

        everything = {o.orderId for o in orders}
        read = [settings.topic, *(f"{settings.topic}-restart-group-retry-{n}" for n in (1, 2, 3))]
        deadline = time.monotonic() + 120
        while True:
            records = _records(outcomes)
            if {r["order_id"] for r in records} >= everything:
                break
            assert time.monotonic() < deadline and proc.poll() is None, (
                f"{len(everything - {r['order_id'] for r in records})} orders missing; "
                f"{group_state(settings.bootstrap_servers, 'restart-group', read)}; "
                f"stderr: {stderr_path.read_text()}; stacks: {stacks(proc.pid)}"
            )
            time.sleep(0.2)
        # The outcome log runs ahead of the commit that covers it: stopped now, a slow
        # commit (a coordinator still recovering) is left to the next run, as it says.
        # Stopped once the group has committed everything, nothing may be left.
        while left := uncommitted(settings.bootstrap_servers, "restart-group", read):
            assert time.monotonic() < deadline and proc.poll() is None, (
                f"not committed: {left}; stderr: {stderr_path.read_text()}"
            )
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        said = stderr_path.read_text()
        assert "lost the connection to Kafka" in said
        assert "connection to Kafka restored after" in said
        assert "Traceback" not in said
        dead = {r["order_id"] for r in records if r["outcome"] == "dead_lettered"}
        assert dead == {o.orderId for o in orders if dead_lettered(o)}
        dlq_keys = [
            m.key().decode() for m in read_all(settings.bootstrap_servers, settings.dlq_topic)
        ]
        assert set(dlq_keys) == dead  # every dead-lettered order's record is on the DLQ
        if guarantee == "exactly-once":
            assert len(dlq_keys) == len(dead)  # each once, for a read_committed reader
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()


def test_retry_topics_are_created_with_the_source_topics_partition_count(bootstrap, group):
    settings = KafkaSettings(bootstrap, f"orders-five-{group}", f"orders-dlq-five-{group}")
    ensure_topics(settings, [settings.topic, settings.dlq_topic], partitions=5)
    run_pipeline(settings, group, idle_exit=0.5)
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    retry = [f"{settings.topic}-{group}-retry-{n}" for n in (1, 2, 3)]  # the group's own
    assert [len(topics[t].partitions) for t in retry] == [5, 5, 5]


def test_a_record_on_a_retry_topic_not_written_as_a_retry_goes_to_the_dlq_as_it_is(settings, group):
    retry_1 = f"{settings.topic}-{group}-retry-1"
    ensure_topics(settings, [retry_1])
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(retry_1, b"\x00not a retry", b"stray", partition=0,
                     headers=[("source", b"someone else")])  # fmt: skip
    assert producer.flush(10) == 0
    run_pipeline(settings, group, idle_exit=0.5)
    (record,) = read_all(settings.bootstrap_servers, settings.dlq_topic)
    entry = DlqEntry.from_message(record)
    assert (entry.key, entry.value) == (b"stray", b"\x00not a retry")
    assert entry.headers[0] == ("source", b"someone else")
    assert entry.error_type == "deserialization"
    assert "retry headers" in entry.reason
    assert entry.original == (retry_1, 0, 0)


def _container_bytes(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [record])
    return buf.getvalue()


def test_records_of_other_schemas_are_dead_lettered_naming_the_schema_never_misread(
    settings, group, tmp_path
):
    """`produce --format confluent --schema-id 7` and `consume --schema-id 7` agree; a
    frame of another id, or a container of another record type, is not guessed at."""
    produced = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-n", "20", "--seed", "3",
         "--format", "confluent", "--schema-id", "7", "--json",
         "-b", settings.bootstrap_servers, "--topic", settings.topic,
         "--dlq-topic", settings.dlq_topic],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(produced.stdout)["delivered"] == 20, produced.stderr
    swapped = {"type": "record", "name": "Order", "fields": [
        {"name": "product", "type": "string"}, {"name": "orderId", "type": "string"},
        {"name": "price", "type": "double"}]}  # fmt: skip
    refund = {"type": "record", "name": "Refund", "namespace": "billing", "fields": [
        {"name": "orderId", "type": "string"}, {"name": "product", "type": "string"},
        {"name": "price", "type": "long"}, {"name": "reason", "type": "string"}]}  # fmt: skip
    evolved = {"type": "record", "name": "Order", "fields": [
        {"name": "price", "type": "float"}, {"name": "orderId", "type": "string"},
        {"name": "product", "type": "string"},
        {"name": "currency", "type": "string", "default": "EUR"}]}  # fmt: skip
    others = {
        "id-999": b"\x00\x00\x00\x03\xe7"
        + _schema_bytes(swapped, {"orderId": "o-1", "product": "Lamp", "price": 200.0}),
        "id-1": encode(Order("o-2", "Lamp", 200.0), WireFormat.CONFLUENT, schema_id=1),
        "refund": _container_bytes(
            refund, {"orderId": "o-3", "product": "Lamp", "price": 200, "reason": "late"}
        ),
        "evolved": _container_bytes(
            evolved, {"orderId": "o-4", "product": "Lamp", "price": 200.0, "currency": "USD"}
        ),
    }
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for key, value in others.items():
        producer.produce(settings.topic, value, key)
    assert producer.flush(10) == 0

    outcomes = tmp_path / "outcomes.jsonl"
    run = subprocess.run(
        [*_consume_cli(settings, group, "--schema-id", "7", "--idle-exit", "1.5",
                       "--outcomes", str(outcomes))],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = _records(outcomes)
    processed = {r["order_id"] for r in records if r["outcome"] == "processed"}
    # The evolved Order was read by field name: orderId is o-4, not the product.
    assert "o-4" in processed and "Lamp" not in processed
    dlq = read_all(settings.bootstrap_servers, settings.dlq_topic)
    by_key = {m.key().decode(): DlqEntry.from_message(m) for m in dlq if m.key() in
              {k.encode() for k in others}}  # fmt: skip
    assert sorted(by_key) == ["id-1", "id-999", "refund"]
    for key, entry in by_key.items():
        assert entry.value == others[key]
        assert entry.error_type == "deserialization"
    assert "schema id 999" in by_key["id-999"].reason
    assert "schema id 1," in by_key["id-1"].reason
    assert "billing.Refund" in by_key["refund"].reason
    # The 20 orders written under id 7 all decoded: none is a deserialization letter.
    assert sum(1 for m in dlq if DlqEntry.from_message(m).error_type == "deserialization") == 3
    assert len(records) == 20 + 4


def test_an_outcome_log_that_fails_stops_commits_so_no_outcome_is_lost(settings, group):
    """--outcomes to a pipe that closes or a disk that fills: the orders whose lines
    were not written are not committed, and the next run logs them."""
    produce_orders(settings, 2000, seed=11)
    written: list[Finished] = []
    calls = 0

    def fails_on_the_third_write(finished: list[Finished]) -> None:
        nonlocal calls
        calls += 1
        if calls >= 3:
            raise OSError(28, "No space left on device")
        written.extend(finished)

    pipeline = Pipeline(settings, EngineConfig(group=group, backoff=FAST_RETRIES),
                        on_finished=fails_on_the_third_write)  # fmt: skip
    with pytest.raises(OSError, match="No space left"):
        pipeline.run(idle_exit=1.5)
    assert 0 < len(written) < 2000
    _, second = run_pipeline(settings, group)
    logged = [(f.partition, f.offset) for f in written + second]
    source = read_all(settings.bootstrap_servers, settings.topic, 2000)
    assert set(logged) == {(m.partition(), m.offset()) for m in source}
    # What was logged was committed with it: nothing is logged twice.
    assert len(logged) == len(set(logged)) == 2000


def test_the_consume_summary_and_an_outcome_log_on_stdout(settings, group):
    """`--outcomes -`: a JSON line per order on stdout, the summary text on stderr, its
    figures those of the produced orders."""
    orders = produce_orders(settings, 120, seed=8)
    done = subprocess.run(_consume_cli(settings, group, "--idle-exit", "1.5", "--outcomes", "-"),
                          capture_output=True, text=True, timeout=90)  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["order_id"] for line in logged) == sorted(o.orderId for o in orders)

    ok = [o for o in orders if not dead_lettered(o)]
    permanent = sum(o.price > 1000 for o in orders)
    exhausted = len(orders) - len(ok) - permanent
    retries = sum(min(failing_attempts(o.orderId), ATTEMPTS - 1) for o in orders if transient(o))
    recovered = sum(transient(o) for o in ok)
    types = (("permanent", permanent), ("retries_exhausted", exhausted))
    by_type = ", ".join(f"{name} {n}" for name, n in types if n)
    total = math.fsum(o.price for o in ok)
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (
        f"consumed 120 · processed {len(ok)} (recovered {recovered}) · dead-lettered "
        f"{len(orders) - len(ok)} ({by_type}) · retry attempts {retries}"
    )
    assert lines[1] == (
        f"prices: total {total:,.2f} · average {total / len(ok):,.2f} · "
        f"min {min(o.price for o in ok):,.2f} · max {max(o.price for o in ok):,.2f}"
    )
    assert re.fullmatch(r"\d+\.\d s · [\d,]+\.\d orders/s", lines[2]), lines[2]


def test_a_source_topic_deleted_mid_run_stops_the_pipeline_with_one_line(settings, group, tmp_path):
    """The topic it reads is gone: said within seconds in one line, no traceback, exit 1."""
    produce_orders(settings, 50, seed=3)
    outcomes = tmp_path / "outcomes.jsonl"
    proc = subprocess.Popen(_consume_cli(settings, group, "--outcomes", str(outcomes)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while _lines(outcomes) < 50:
            assert time.monotonic() < deadline and proc.poll() is None, "no progress"
            time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
        admin.delete_topics([settings.topic])[settings.topic].result(10)
        deleted = time.monotonic()
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - deleted
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert took < 20, took  # a metadata refresh every 10 s
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"orders-tui: a topic the pipeline reads is gone (deleted?): Subscribed topic not "
            f"available: {settings.topic}"
        )
    ), err
