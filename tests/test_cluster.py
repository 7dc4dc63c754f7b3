"""orders-tui on a three-node cluster (replication 3, min.insync.replicas 2), as users
run Kafka: every topic it creates is replicated, and a node killed under a running
pipeline loses no order and writes no DLQ record twice, counted by an independent
read_committed reader. `pytest -m cluster` runs these alone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from orders_tui.domain.codec import decode
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.topics import ensure_topics
from tests.expectations import dead_lettered
from tests.kafka_helpers import read_all
from tests.test_crash_safety import whole_records

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.alone]


def _settings(cluster) -> KafkaSettings:
    suffix = uuid.uuid4().hex[:8]
    return KafkaSettings(cluster.bootstrap, f"orders-{suffix}", f"orders-dlq-{suffix}")


def _cli(settings: KafkaSettings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orders_tui", *args, "-b", settings.bootstrap_servers,
         "--topic", settings.topic, "--dlq-topic", settings.dlq_topic],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _consume(settings: KafkaSettings, group: str, outcomes: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orders_tui", "consume", "--headless",
            "-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic, "--group", group, "--retry-backoff", "0.05",
            "--retry-backoff-max", "0.2", "--outcomes", str(outcomes), *extra]  # fmt: skip


def test_every_topic_orders_tui_creates_has_three_replicas(cluster):
    """The DLQ was made with one replica (replication_factor=1 was explicit): the only
    copy of a dead-lettered order, once its source offset is committed, on one disk."""
    settings = _settings(cluster)
    group = f"replicas-{uuid.uuid4().hex[:6]}"
    assert _cli(settings, "produce", "-n", "50", "--partitions", "6").returncode == 0
    done = _cli(settings, "consume", "--headless", "--group", group, "--idle-exit", "1")
    assert done.returncode == 0, done.stderr
    replay = _cli(settings, "dlq", "replay", "--where", "type=permanent")
    assert replay.returncode == 0, replay.stderr
    topics = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=10).topics
    ours = [settings.topic, settings.dlq_topic, f"{settings.dlq_topic}-redrives",
            *(f"{settings.topic}-{group}-retry-{n}" for n in (1, 2, 3)),
            "orders-tui-status", "orders-tui-control"]  # fmt: skip
    replicas = {t: {len(p.replicas) for p in topics[t].partitions.values()} for t in ours}
    assert replicas == {t: {3} for t in ours}
    assert len(topics[settings.topic].partitions) == 6


def _leader(cluster, topic: str, partition: int) -> int:
    metadata = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10)
    return metadata.topics[topic].partitions[partition].leader


def test_killing_the_leader_of_a_source_partition_mid_run_loses_nothing_and_doubles_nothing(
    cluster, tmp_path
):
    """Orders arrive at 2,000/s while the node leading a source partition is killed
    (kill -9), then restarted: the pipeline rides it out."""
    settings = _settings(cluster)
    ensure_topics(settings, [settings.topic, settings.dlq_topic], partitions=3)
    group = f"failover-{uuid.uuid4().hex[:6]}"
    outcomes = tmp_path / "outcomes.jsonl"
    said = tmp_path / "stderr.txt"
    victim = _leader(cluster, settings.topic, 0)
    with said.open("w") as stderr:
        worker = subprocess.Popen(_consume(settings, group, outcomes), stdout=subprocess.DEVNULL,
                                  stderr=stderr)  # fmt: skip
        producer = subprocess.Popen(
            [sys.executable, "-m", "orders_tui", "produce", "-n", "30000", "--rate", "2000",
             "--seed", "61", "-b", cluster.bootstrap, "--topic", settings.topic],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(whole_records(outcomes)) < 8000:
                assert worker.poll() is None, said.read_text()
                assert time.monotonic() < deadline, "the pipeline got nowhere"
                time.sleep(0.1)
            cluster.kill(victim)  # kill -9, mid-run
            time.sleep(5)
            cluster.start(victim)
            assert producer.wait(120) == 0, producer.stderr.read()
            deadline = time.monotonic() + 120
            while len({r["order_id"] for r in whole_records(outcomes)}) < 30000:
                assert worker.poll() is None, said.read_text()
                assert time.monotonic() < deadline, (
                    f"not every order finished after the failover: {said.read_text()}"
                )
                time.sleep(0.5)
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        finally:
            for process in (worker, producer):
                if process.poll() is None:
                    process.kill()
            if _leader(cluster, settings.topic, 0) < 0:
                cluster.start(victim)

    produced = [decode(m.value()) for m in read_all(cluster.bootstrap, settings.topic, 30000)]
    assert len(produced) == 30000
    finished = {r["order_id"] for r in whole_records(outcomes)}
    assert finished == {o.orderId for o in produced}  # 0 lost
    dlq = [DlqEntry.from_message(m) for m in read_all(cluster.bootstrap, settings.dlq_topic)]
    per_original = Counter(entry.original for entry in dlq)
    assert max(per_original.values()) == 1  # read_committed: no DLQ record twice
    assert len(dlq) == sum(1 for o in produced if dead_lettered(o))
    # Redone orders are not asserted yet: 972 and 2,837 of 30,000 (3-9 %) in the runs of
    # 2026-12-06, against a target of 2 % (issue 22): the rewind after a new producer
    # goes back further than one checkpoint.
