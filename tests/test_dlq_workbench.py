"""The DLQ workbench on the command line, against the real broker: --where, triage and
replay, with DLQ records of every convention written byte for byte by the test."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.topics import ensure_topics
from tests.kafka_helpers import cli, read_all

pytestmark = pytest.mark.kafka


def ours(order: Order, error_type: str, reason: str, partition: int, offset: int,
         topic: str, replays: int = 0) -> tuple[bytes, bytes, list]:  # fmt: skip
    headers = [
        ("source", b"web"),
        ("error_reason", reason.encode()),
        ("error_type", error_type.encode()),
        ("original_topic", topic.encode()),
        ("original_partition", b"%d" % partition),
        ("original_offset", b"%d" % offset),
    ]
    if replays:
        headers.append(("replay_count", b"%d" % replays))
    return order.orderId.encode(), encode(order), headers


def write_dlq(settings, records: list[tuple[bytes | None, bytes | None, list]]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20})
    for i, (key, value, headers) in enumerate(records):
        producer.produce(settings.dlq_topic, value, key, partition=i % 3, headers=headers)
    assert producer.flush(30) == 0


@pytest.fixture
def mixed_dlq(settings):
    """30 of ours (prices 1001-1030, permanent), 6 deserialization, one Spring, one
    Connect, one Streams entry; two entries for one original record."""
    others = KafkaSettings(settings.bootstrap_servers, f"payments-{uuid.uuid4().hex[:6]}",
                           f"inventory-{uuid.uuid4().hex[:6]}")  # fmt: skip
    ensure_topics(others, [others.topic, others.dlq_topic])
    records = []
    for i in range(30):
        order = Order(f"order-{i:02d}", "Teal Lamp" if i % 2 else "Navy Chair", 1001.0 + i)
        records.append(ours(order, "permanent", f"price {order.price:.2f} is above the "
                            "permanent-failure threshold 1000.00", i % 3, 100 + i,
                            settings.topic, replays=3 if i == 29 else 0))  # fmt: skip
    for i in range(6):
        records.append((b"junk-%d" % i, b"\xff\x00junk", [
            ("error_type", b"deserialization"), ("error_reason", b"not an Order: junk"),
            ("original_topic", settings.topic.encode()), ("original_partition", b"0"),
            ("original_offset", b"%d" % (200 + i))]))  # fmt: skip
    # Dead-lettered twice (a replay that failed again): one original record.
    records.append(ours(Order("order-00", "Navy Chair", 1001.0), "permanent",
                        "price 1001.00 is above the permanent-failure threshold 1000.00",
                        0, 100, settings.topic))  # fmt: skip
    records.append((b"spring-key", b"spring-value", [
        ("kafka_dlt-original-topic", others.topic.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", 1)),
        ("kafka_dlt-original-offset", struct.pack(">q", 77)),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", b"amount must be positive")]))  # fmt: skip
    records.append((b"connect-key", b"connect-value", [
        ("__connect.errors.topic", others.dlq_topic.encode()),
        ("__connect.errors.partition", b"2"), ("__connect.errors.offset", b"5"),
        ("__connect.errors.exception.class.name", b"DataException"),
        ("__connect.errors.exception.message", b"Unknown magic byte!")]))  # fmt: skip
    records.append((b"streams-key", b"streams-value", [
        ("__streams.errors.topic", b"no-such-topic-anywhere"),
        ("__streams.errors.partition", b"0"), ("__streams.errors.offset", b"1"),
        ("__streams.errors.exception", b"SerializationException"),
        ("__streams.errors.message", b"Size of data received is not 4")]))  # fmt: skip
    write_dlq(settings, records)
    return records, others


def test_where_picks_the_entries_its_terms_describe(settings, mixed_dlq):
    result = cli(settings, "dlq", "--where", "type=permanent price>=1020 product~Lamp", "--json")
    assert result.returncode == 0, result.stderr
    picked = sorted(json.loads(line)["order"]["orderId"] for line in result.stdout.splitlines())
    # Prices 1020-1030 are orders 19-29; "Teal Lamp" is on the odd ones.
    assert picked == [f"order-{i:02d}" for i in range(19, 30) if i % 2]
    spring = cli(settings, "dlq", "--where", "topic=" + mixed_dlq[1].topic, "--json")
    [line] = spring.stdout.splitlines()
    assert json.loads(line)["key"] == {"text": "spring-key"}
    bad = cli(settings, "dlq", "--where", "colour=red")
    assert bad.returncode == 2
    assert bad.stderr.startswith("orders-tui: --where: 'colour=red': no field 'colour'")


def test_triage_counts_types_reasons_and_partitions(settings, mixed_dlq):
    result = cli(settings, "dlq", "triage", "--json")
    assert result.returncode == 0, result.stderr
    triage = json.loads(result.stdout)
    assert triage["total"]["count"] == 40
    assert {t: g["count"] for t, g in triage["by_type"].items()} == {
        "permanent": 31, "deserialization": 6, "java.lang.IllegalStateException": 1,
        "DataException": 1, "SerializationException": 1,
    }  # fmt: skip
    top = triage["by_reason"][0]
    assert (top["reason"], top["count"]) == (
        "price # is above the permanent-failure threshold #",
        31,
    )
    text = cli(settings, "dlq", "triage", "--where", "type=deserialization")
    assert text.stdout.startswith("6 entries")
    assert "[deserialization] not an Order: junk" in text.stdout


def test_replay_sends_each_original_once_to_its_topic_and_skips_what_it_must(settings, mixed_dlq):
    records, others = mixed_dlq
    # Spring's and Connect's entries name other pipelines' topics: sent there when allowed.
    allow = ["--allow-topic", others.topic, "--allow-topic", others.dlq_topic]
    plan = cli(settings, "dlq", "replay", "--dry-run", "--json", *allow)
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    # 30 + 6 + 1 of ours, of which order-29 is at 3 replays and order-00 is there twice;
    # Spring's and Connect's go to their topics, Streams' topic does not exist.
    assert planned["to_topics"] == {settings.topic: 35, others.topic: 1, others.dlq_topic: 1}
    assert (planned["skipped_duplicates"], planned["skipped_at_max_replays"],
            planned["skipped_no_target"]) == (1, 1, 1)  # fmt: skip
    assert read_all(settings.bootstrap_servers, settings.topic) == []  # a dry run sends nothing

    result = cli(settings, "dlq", "replay", "--json", *allow)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 37
    sent = read_all(settings.bootstrap_servers, settings.topic, 35)
    assert len(sent) == 35
    by_key = {m.key(): m for m in sent}
    assert len(by_key) == 35 and b"order-29" not in by_key
    source = next(r for r in records if r[0] == b"order-07")
    replayed = by_key[b"order-07"]
    assert replayed.value() == source[1]  # byte for byte
    headers = replayed.headers()
    assert headers[0] == ("source", b"web")  # the record's own headers stay
    assert not {"error_type", "error_reason", "original_topic"} & {k for k, _ in headers}
    assert ("replay_count", b"1") in headers
    assert ("redrive_id", json.loads(result.stdout)["name"].encode()) in headers
    [spring] = read_all(settings.bootstrap_servers, others.topic, 1)
    assert (spring.key(), spring.value()) == (b"spring-key", b"spring-value")
    assert not any(k.startswith("kafka_dlt-") for k, _ in spring.headers())
    again = json.loads(cli(settings, "dlq", "replay", "--json", *allow).stdout)
    assert (again["sent"], again["sent_before_resume"]) == (0, 37)  # the same command: done


def test_replay_sends_only_to_the_pipelines_topics_unless_told(settings, mixed_dlq):
    """An entry's original_topic is whoever wrote the entry: forged, it named the fleet's
    control topic (a fleet command) or __consumer_offsets (every unfiltered redrive then
    failed with 'Topic authorization failed'). Those are never sent, nor to the DLQ
    itself; another pipeline's topic only with --allow-topic or --to."""
    _, others = mixed_dlq
    forged = [
        (b"to-dlq", b"x", [("original_topic", settings.dlq_topic.encode()),
                           ("original_partition", b"0"), ("original_offset", b"1")]),
        (b"to-offsets", b"x", [("original_topic", b"__consumer_offsets"),
                               ("original_partition", b"0"), ("original_offset", b"2")]),
    ]  # fmt: skip
    write_dlq(settings, forged)
    plan = cli(settings, "dlq", "replay", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "would send 35 (" + settings.topic + " 35)" in plan.stdout
    assert ("not sent: 4 naming a topic the pipeline does not read" in plan.stdout
            and f"{settings.dlq_topic} 1" in plan.stdout and "__consumer_offsets 1" in plan.stdout
            and others.topic in plan.stdout)  # fmt: skip
    sent = json.loads(cli(settings, "dlq", "replay", "--json").stdout)
    assert sent["to_topics"] == {settings.topic: 35}
    assert sent["not_allowed_topics"] == {
        others.topic: 1,
        others.dlq_topic: 1,
        settings.dlq_topic: 1,
        "__consumer_offsets": 1,
    }
    assert read_all(settings.bootstrap_servers, others.topic) == []
    # Run again, it neither fails nor sends: the forged entries stay counted, not sent.
    again = cli(settings, "dlq", "replay", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["sent"] == 0

    quarantine = f"quarantine-{uuid.uuid4().hex[:6]}"
    ensure_topics(KafkaSettings(settings.bootstrap_servers, quarantine, quarantine), [quarantine])
    moved = json.loads(cli(settings, "dlq", "replay", "--json", "--to", quarantine,
                           "--where", "type=deserialization").stdout)  # fmt: skip
    assert moved["to_topics"] == {quarantine: 6}
    assert len(read_all(settings.bootstrap_servers, quarantine, 6)) == 6
    for target in ("__consumer_offsets", settings.dlq_topic, "orders-tui-control"):
        refused = cli(settings, "dlq", "replay", "--to", target)
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1 and "cannot be a replay's target" in refused.stderr


def _committed_count(bootstrap: str, topic: str, isolation: str) -> list:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                       "isolation.level": isolation, "enable.partition.eof": True,
                       "auto.offset.reset": "earliest"})  # fmt: skip
    reader.assign([TopicPartition(topic, p, 0) for p in range(3)])
    records, ends, deadline = [], set(), time.monotonic() + 30
    while len(ends) < 3 and time.monotonic() < deadline:
        for msg in reader.consume(1000, 0.5):
            if msg.error():
                ends.add(msg.partition())
            else:
                records.append(msg)
    reader.close()
    return records


def _wait_until_sent(settings, count: int, redrive: subprocess.Popen) -> None:
    """Until `count` records of a running redrive are committed on its target topic."""
    deadline = time.monotonic() + 30
    while len(_committed_count(settings.bootstrap_servers, settings.topic,
                               "read_committed")) < count:  # fmt: skip
        assert time.monotonic() < deadline and redrive.poll() is None, "no progress"
        time.sleep(0.1)


def test_a_replay_killed_mid_way_resumes_and_sends_each_record_once(settings):
    """kill -9 during a rate-limited redrive of 3,000 entries (400/s: 7.5 s), then the
    same command: a read_committed reader sees each once; what the killed run left
    uncommitted is at most one batch (500)."""
    write_dlq(settings, [ours(Order(f"o-{i:05d}", "Lamp", 1500.0), "permanent", "too dear",
                              i % 3, i, settings.topic) for i in range(3000)])  # fmt: skip
    argv = [sys.executable, "-m", "orders_tui", "dlq", "replay", "--rate", "400", "--json",
            "-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic]  # fmt: skip
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_until_sent(settings, 600, first)
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -9
    second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["sent_before_resume"] + summary["sent"] == 3000
    committed = _committed_count(settings.bootstrap_servers, settings.topic, "read_committed")
    keys = [m.key() for m in committed]
    assert len(keys) == len(set(keys)) == 3000
    everything = _committed_count(settings.bootstrap_servers, settings.topic, "read_uncommitted")
    assert len(everything) - 3000 <= 500  # what the killed run's open transaction held


def test_a_broker_restart_mid_redrive_ends_it_with_one_line_and_the_same_command_resumes(
    own_broker, tmp_path
):
    """The broker stops for 3 s during a rate-limited redrive of 2,000 entries. The
    redrive rides it out, or ends (exit 1) with one line saying how to resume: within
    seconds of the broker's return either way, never waiting on a transactional call that
    librdkafka may not end (seen here: send_offsets_to_transaction blocked for good, and a
    'not coordinator' answer ended in a traceback). The same command then finishes it,
    and each record reaches its topic once."""
    settings = KafkaSettings(own_broker.bootstrap, "orders", "orders-dlq")
    ensure_topics(settings, [settings.topic, settings.dlq_topic])
    write_dlq(settings, [ours(Order(f"o-{i:05d}", "Lamp", 1500.0), "permanent", "too dear",
                              i % 3, i, settings.topic) for i in range(2000)])  # fmt: skip
    argv = [sys.executable, "-m", "orders_tui", "dlq", "replay", "--rate", "300", "--json",
            "-b", settings.bootstrap_servers]  # fmt: skip
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    own_broker.stop()
    time.sleep(3)
    own_broker.start()
    back = time.monotonic()
    out, said = first.communicate(timeout=60)
    assert time.monotonic() - back < 25  # a stuck call is given up on after 15 s
    if first.returncode == 0:  # rode it out
        assert json.loads(out)["sent"] == 2000
    else:
        assert first.returncode == 1
        [line] = said.strip().splitlines()
        assert "run the same command again to resume" in line, said
    second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["sent_before_resume"] + summary["sent"] == 2000
    keys = [m.key() for m in _committed_count(settings.bootstrap_servers, settings.topic,
                                              "read_committed")]  # fmt: skip
    assert len(keys) == len(set(keys)) == 2000


def test_ctrl_c_stops_a_redrive_at_once_and_the_same_command_resumes_it(settings):
    """^C during a rate-limited redrive (200/s) stops it within a second, not at the end
    of the 1,000 entries it read in one batch; the same command sends the rest, each
    record once."""
    write_dlq(settings, [ours(Order(f"o-{i:05d}", "Lamp", 1500.0), "permanent", "too dear",
                              i % 3, i, settings.topic) for i in range(1000)])  # fmt: skip
    argv = [sys.executable, "-m", "orders_tui", "dlq", "replay", "--rate", "200", "--json",
            "-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic]  # fmt: skip
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_sent(settings, 100, first)
    first.send_signal(signal.SIGINT)
    asked = time.monotonic()
    out, said = first.communicate(timeout=30)
    assert time.monotonic() - asked < 1.5, said
    stopped = json.loads(out)
    assert stopped["cancelled"] is True and 100 <= stopped["sent"] < 1000
    resumed = json.loads(subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                        check=True).stdout)  # fmt: skip
    assert resumed["sent_before_resume"] + resumed["sent"] == 1000
    keys = [m.key() for m in _committed_count(settings.bootstrap_servers, settings.topic,
                                              "read_committed")]  # fmt: skip
    assert len(keys) == len(set(keys)) == 1000


def test_redrives_report_what_came_back_and_what_was_processed(settings, group):
    """12 entries redriven: the 4 priced over 1000 fail again (permanent) and come back
    to the DLQ carrying the redrive's id; the 8 others are processed once the pipeline
    has consumed them."""
    prices = [200.0 + i for i in range(8)] + [1100.0 + i for i in range(4)]
    write_dlq(settings, [ours(Order(f"r-{i:02d}", "Lamp", price), "retries_exhausted",
                              "downstream unavailable", i % 3, i, settings.topic)
                         for i, price in enumerate(prices)])  # fmt: skip
    sent = json.loads(cli(settings, "dlq", "replay", "--json").stdout)
    assert sent["sent"] == 12
    before = json.loads(cli(settings, "dlq", "redrives", "--group", group, "--json").stdout)
    assert [(r["sent"], r["consumed"], r["processed"]) for r in before] == [(12, False, None)]
    consumed = cli(settings, "consume", "--headless", "--group", group, "--idle-exit", "1",
                   "--retry-backoff", "0.05")  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr
    [after] = json.loads(cli(settings, "dlq", "redrives", "--group", group, "--json").stdout)
    assert (after["sent"], after["dead_lettered_again"], after["processed"]) == (12, 4, 8)
    text = cli(settings, "dlq", "redrives", "--group", group).stdout
    assert f"{after['name']}: 12 sent · 4 dead-lettered again · 8 processed" in text
    # A replay that fails again carries its replay_count on, so --max-replays can stop it.
    came_back = [headers for headers in (dict(m.headers() or [])
                 for m in read_all(settings.bootstrap_servers, settings.dlq_topic))
                 if "redrive_id" in headers]  # fmt: skip
    assert [headers["replay_count"] for headers in came_back] == [b"1"] * 4
