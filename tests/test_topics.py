"""Topics as asked, on a broker with Apache Kafka's stock defaults (topic auto-creation
on, 1 partition), as scripts/kafka-local runs it: a metadata request naming a missing
topic created it with 1 partition before orders-tui could create it with --partitions."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.topics import ensure_topics

pytestmark = pytest.mark.kafka


def _partitions(bootstrap: str, topics: list[str]) -> dict[str, int]:
    found = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {t: len(found[t].partitions) for t in topics if t in found}


def _fresh(bootstrap: str) -> KafkaSettings:
    suffix = uuid.uuid4().hex[:8]
    return KafkaSettings(bootstrap, f"stock-{suffix}", f"stock-dlq-{suffix}")


def _cli(settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orders_tui", *args, "-b", settings.bootstrap_servers,
         "--topic", settings.topic, "--dlq-topic", settings.dlq_topic],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_partitions_are_as_asked_for_every_topic_on_a_broker_that_auto_creates(bootstrap):
    settings = _fresh(bootstrap)
    group = f"stock-group-{uuid.uuid4().hex[:6]}"
    produced = _cli(settings, "produce", "-n", "20", "--partitions", "6")
    assert produced.returncode == 0, produced.stderr
    consumed = _cli(settings, "consume", "--headless", "--group", group, "--partitions", "6",
                    "--idle-exit", "1")  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr
    retry = [f"{settings.topic}-{group}-retry-{n}" for n in (1, 2, 3)]
    everything = [settings.topic, settings.dlq_topic, *retry]
    assert _partitions(bootstrap, everything) == dict.fromkeys(everything, 6)
    assert "partition" not in produced.stderr + consumed.stderr  # nothing to say


def test_an_existing_topic_with_another_count_is_said_in_one_line_and_left(bootstrap):
    settings = _fresh(bootstrap)
    ensure_topics(settings, [settings.topic, settings.dlq_topic], partitions=1)
    produced = _cli(settings, "produce", "-n", "5", "--partitions", "6")
    assert produced.returncode == 0, produced.stderr
    said = [line for line in produced.stderr.splitlines() if "partition" in line]
    assert said == [
        f"orders-tui: topic {topic!r} has 1 partition, not the 6 asked for (it existed "
        f"already: kafka-topics --alter --partitions 6 adds them; keys then move)"
        for topic in (settings.topic, settings.dlq_topic)
    ]
    assert _partitions(bootstrap, [settings.topic]) == {settings.topic: 1}
    quiet = _cli(settings, "produce", "-n", "5")  # no --partitions: nothing was asked
    assert "partition" not in quiet.stderr


def test_a_replication_factor_the_cluster_cannot_give_is_one_line(bootstrap):
    settings = _fresh(bootstrap)
    refused = _cli(settings, "produce", "-n", "1", "--replication-factor", "3")
    assert refused.returncode != 0
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"orders-tui: cannot create topic '{settings.topic}': ")
    assert "replication factor" in line.lower() and "Traceback" not in refused.stderr
    default = _cli(settings, "produce", "-n", "1")  # the broker's default (1 here)
    assert default.returncode == 0, default.stderr
