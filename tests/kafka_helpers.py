"""Reading what Kafka holds, with a plain confluent-kafka consumer (no orders-tui code),
and running the CLI against a test's topics."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from orders_tui.kafka.consumer_set import pipeline_instance_id


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


def open_transactions(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Partitions (`topic[p]`) a transaction still holds open: their last stable offset,
    the end a read_committed reader sees, is behind the end of the log."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10).topics
    tps = [TopicPartition(t, p) for t in topics for p in metadata[t].partitions]

    def ends(isolation: IsolationLevel) -> dict[tuple[str, int], int]:
        answer = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps},
                                    isolation_level=isolation, request_timeout=10)  # fmt: skip
        return {(tp.topic, tp.partition): f.result().offset for tp, f in answer.items()}

    stable, end = ends(IsolationLevel.READ_COMMITTED), ends(IsolationLevel.READ_UNCOMMITTED)
    return {f"{t}[{p}]": end[t, p] - stable[t, p] for (t, p) in end if stable[t, p] < end[t, p]}


def uncommitted(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """Records of `topics` the group has not committed, per partition (`topic[p]`): its
    committed offset against the end a read_committed reader sees."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10).topics
    tps = [TopicPartition(t, p) for t in topics for p in metadata[t].partitions]
    answer = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps},
                                isolation_level=IsolationLevel.READ_COMMITTED,
                                request_timeout=10)  # fmt: skip
    ends = {(tp.topic, tp.partition): f.result().offset for tp, f in answer.items()}
    request = [ConsumerGroupTopicPartitions(group, tps)]
    committed = admin.list_consumer_group_offsets(request)[group].result(10).topic_partitions
    return {
        f"{tp.topic}[{tp.partition}]": ends[tp.topic, tp.partition] - max(tp.offset, 0)
        for tp in committed
        if max(tp.offset, 0) < ends[tp.topic, tp.partition]
    }


def group_members(settings, group: str) -> int:
    """Pipelines in `group`, as the broker describes it: a pipeline's members, one per
    topic level (`w0`, `w0#retry-1`, ...), count once."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    members = admin.describe_consumer_groups([group])[group].result(10).members
    return len({pipeline_instance_id(m.group_instance_id or m.member_id) for m in members})


def group_state(bootstrap: str, group: str, topics: list[str]) -> str:
    """For a failure message: who in `group` holds what, and what it has not committed."""
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        described = admin.describe_consumer_groups([group])[group].result(10)
        held = "; ".join(
            f"{m.group_instance_id or m.member_id}: "
            + ", ".join(f"{tp.topic}[{tp.partition}]" for tp in m.assignment.topic_partitions)
            for m in described.members
        )
        return f"group {described.state}: {held or 'no members'}; not committed: " + str(
            uncommitted(bootstrap, group, topics)
        )
    except Exception as exc:  # a failure message must not fail
        return f"(no group state: {exc})"


def stacks(pid: int) -> str:
    """Every thread's stack of a live process, Python and native frames (py-spy), for a
    failure message: a pipeline that stopped making progress shows where it waits."""
    try:
        dump = subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "dump", "--native", "--pid", str(pid)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stacks: {exc})"
    return dump.stdout + dump.stderr
