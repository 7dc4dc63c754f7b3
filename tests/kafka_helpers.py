"""Reading what Kafka holds, with a plain confluent-kafka consumer (no orders-tui code),
and running the CLI against a test's topics."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Message, TopicPartition


def read_all(
    bootstrap: str, topic: str, expected: int | None = None, timeout: float = 30.0
) -> list[Message]:
    """Every record of `topic`, from the beginning; stops at `expected` records or when
    the end of every partition is reached."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records: list[Message] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if expected is not None and len(records) >= expected:
                break
            if expected is None and at_end == set(partitions):
                break
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    if msg.error().code() == msg.error()._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    raise RuntimeError(msg.error().str())
                at_end.discard(msg.partition())
                records.append(msg)
    finally:
        consumer.close()
    return records


def cli(settings, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """`orders-tui ARGS` on the test's broker and topics, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "orders_tui", *args, "-b", settings.bootstrap_servers,
         "--topic", settings.topic, "--dlq-topic", settings.dlq_topic],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
