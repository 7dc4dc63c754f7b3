"""Reading what Kafka holds, with a plain confluent-kafka consumer (no orders-tui code),
and running the CLI against a test's topics."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

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


class OwnBroker:
    """A broker of a test's own, on free ports, for a test that stops and starts it (the
    session's broker is left alone)."""

    def __init__(self, folder: Path) -> None:
        from tests.conftest import KAFKA_LOCAL, _free_port_pair

        self.port = _free_port_pair()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._command = [str(KAFKA_LOCAL), "--port", str(self.port), "--dir", str(folder)]

    def _run(self, action: str) -> None:
        subprocess.run([self._command[0], action, *self._command[1:]], check=True,
                       capture_output=True, timeout=300)  # fmt: skip

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")
