"""KIP-848's consumer group protocol, opted into with -X group.protocol=consumer: the
broker assigns partitions and times sessions, and librdkafka refuses a client that sets
the classic protocol's assignor or session timeout, which the pipeline set by default
(`bad librdkafka property: … session.timeout.ms is not supported for
group.protocol=consumer`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orders_tui.domain.codec import decode
from tests.expectations import dead_lettered
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka


def test_the_pipeline_runs_on_the_consumer_group_protocol(settings, group, tmp_path):
    produced = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-n", "200", "--seed", "5",
         "-b", settings.bootstrap_servers, "--topic", settings.topic],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    outcomes = tmp_path / "outcomes.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "orders_tui", "consume", "--headless",
         "-b", settings.bootstrap_servers, "--topic", settings.topic,
         "--dlq-topic", settings.dlq_topic, "--group", group, "--retry-backoff", "0.05",
         "--retry-backoff-max", "0.2", "--idle-exit", "3", "--outcomes", str(outcomes),
         "-X", "group.protocol=consumer", "-X", "group.remote.assignor=range"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    orders = [decode(m.value()) for m in read_all(settings.bootstrap_servers, settings.topic, 200)]
    finished = [json.loads(line) for line in outcomes.read_text().splitlines()]
    assert sorted(r["order_id"] for r in finished) == sorted(o.orderId for o in orders)
    dead = {r["order_id"] for r in finished if r["outcome"] == "dead_lettered"}
    assert dead == {o.orderId for o in orders if dead_lettered(o)}
