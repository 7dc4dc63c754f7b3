"""A fleet that shares the work, on the real broker: workers in one group each hold their
share of the source topic and of each retry topic. The classic protocol's incremental
assignor balances the count over all the topics a member subscribes to (one worker held
all four source partitions, the other only retry partitions), so each worker runs a
member per topic (orders_tui/kafka/consumer_set.py). Asserted from the group's
description by the broker, not from the workers' own reports, in the hard case: a worker
holding everything, then the others joining."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.consumer_set import pipeline_instance_id
from orders_tui.kafka.topics import ensure_topics
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.kafka, pytest.mark.alone]  # three workers and a producer


def _shares(admin: AdminClient, group: str) -> dict[str, Counter]:
    """Each member's partitions per topic, as the broker describes the group ({} while
    it cannot say)."""
    try:
        members = (
            admin.describe_consumer_groups([group], request_timeout=5)[group].result(6).members
        )
    except (KafkaException, concurrent.futures.TimeoutError):
        return {}
    shares: dict[str, Counter] = {}
    for member in members:  # a worker's members: `w0`, `w0#retry-1`, ...
        worker = pipeline_instance_id(member.group_instance_id)
        held = Counter(tp.topic for tp in member.assignment.topic_partitions)
        shares[worker] = shares.get(worker, Counter()) + held
    return shares


@pytest.mark.parametrize("workers", [2, 3])
def test_each_worker_holds_its_share_of_every_topic(bootstrap, tmp_path, workers):
    suffix = uuid.uuid4().hex[:8]
    settings = KafkaSettings(bootstrap, f"share-{suffix}", f"share-dlq-{suffix}")
    group = f"share-{suffix}"
    ensure_topics(settings, [settings.topic, settings.dlq_topic], partitions=6)
    produced = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-n", "3000", "-b", bootstrap,
         "--topic", settings.topic], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    logs = [tmp_path / f"w{i}.jsonl" for i in range(workers)]

    def start(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "orders_tui", "consume", "--headless", "-b", bootstrap,
             "--topic", settings.topic, "--dlq-topic", settings.dlq_topic, "--group", group,
             "--instance-id", f"w{i}", "--retry-backoff", "1", "--idle-exit", "8",
             "--outcomes", str(logs[i])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    topics = [settings.topic, *(f"{settings.topic}-{group}-retry-{n}" for n in (1, 2, 3))]
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def wait_for_shares(want: int, count: int) -> None:
        seen: dict[str, Counter] = {}
        deadline = time.monotonic() + 30
        while not (len(seen) == count
                   and all(held[t] == want for held in seen.values() for t in topics)):  # fmt: skip
            assert time.monotonic() < deadline, f"not {want} of each topic each: {seen}"
            seen = _shares(admin, group)
            time.sleep(0.3)

    procs = [start(0)]
    try:
        wait_for_shares(6, 1)  # the first holds everything
        procs += [start(i) for i in range(1, workers)]
        wait_for_shares(6 // workers, workers)
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    finished = {json.loads(line)["order_id"] for log in logs
                for line in log.read_text().splitlines()}  # fmt: skip
    assert finished == {m.key().decode() for m in read_all(bootstrap, settings.topic, 3000)}
