"""orders-tui beside Java services on the real broker: keyed records go where Java's
clients put them (murmur2, tests/java_partitioner.py), and a redrive keeps a key on
its partition."""

from __future__ import annotations

import json
import struct
import uuid

import pytest
from confluent_kafka import Producer

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.topics import ensure_topics
from tests.java_partitioner import java_partition
from tests.kafka_helpers import cli, read_all

pytestmark = pytest.mark.kafka


def test_produce_puts_each_order_where_a_java_producer_would(settings):
    result = cli(settings, "produce", "-n", "300")
    assert result.returncode == 0, result.stderr
    records = read_all(settings.bootstrap_servers, settings.topic, 300)
    assert len(records) == 300
    misplaced = [m.key() for m in records if m.partition() != java_partition(m.key(), 3)]
    assert misplaced == []  # librdkafka's default (CRC32) misplaced about two in three


def _spring_entry(topic: str, key: bytes, partition: int | None, offset: int) -> list:
    headers = [("kafka_dlt-original-topic", topic.encode()),
               ("kafka_dlt-original-offset", struct.pack(">q", offset)),
               ("kafka_dlt-exception-fqcn",
                b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
               ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
               ("kafka_dlt-exception-message", b"amount must be positive")]  # fmt: skip
    if partition is not None:
        headers.insert(1, ("kafka_dlt-original-partition", struct.pack(">i", partition)))
    return headers


def test_a_redrive_keeps_each_key_on_its_partition_or_places_it_as_java_would(settings):
    keys = [f"cust-{i}".encode() for i in range(12)]
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for i, key in enumerate(keys):
        # Dead-lettered by a Spring listener, as DeadLetterPublishingRecoverer writes it:
        # the first six with the partition the key was read from (where Java put it),
        # one of them moved there by hand (an original partition wins over the key), the
        # others without a partition header, so the key decides.
        partition = java_partition(key, 3) if i < 6 else None
        if i == 0:
            partition = (java_partition(key, 3) + 1) % 3
        headers = _spring_entry(settings.topic, key, partition, 100 + i)
        producer.produce(settings.dlq_topic, b"value-%d" % i, key, headers=headers)
    assert producer.flush(10) == 0

    result = cli(settings, "dlq", "replay", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 12
    placed = {m.key(): m.partition() for m in read_all(settings.bootstrap_servers,
                                                         settings.topic, 12)}  # fmt: skip
    expected = {key: java_partition(key, 3) for key in keys}
    expected[keys[0]] = (java_partition(keys[0], 3) + 1) % 3
    assert placed == expected

    quarantine = f"quarantine-{uuid.uuid4().hex[:6]}"
    ensure_topics(KafkaSettings(settings.bootstrap_servers, quarantine, quarantine),
                  [quarantine], partitions=6)  # fmt: skip
    moved = cli(settings, "dlq", "replay", "--json", "--to", quarantine)
    assert json.loads(moved.stdout)["sent"] == 12, moved.stderr
    placed = {m.key(): m.partition() for m in read_all(settings.bootstrap_servers,
                                                         quarantine, 12)}  # fmt: skip
    assert placed == {key: java_partition(key, 6) for key in keys}  # another topic: by key

    triage = json.loads(cli(settings, "dlq", "triage", "--json").stdout)
    assert set(triage["by_type"]) == {"java.lang.IllegalStateException"}  # the cause, unwrapped
    found = cli(settings, "dlq", "--where", "type~IllegalState", "--json")
    assert len(found.stdout.splitlines()) == 12
