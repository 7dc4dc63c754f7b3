"""KIP-848's consumer group protocol, opted into with -X group.protocol=consumer: the
broker assigns partitions and times sessions, and librdkafka refuses a client that sets
the classic protocol's assignor or session timeout, which the pipeline set by default
(`bad librdkafka property: … session.timeout.ms is not supported for
group.protocol=consumer`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from orders_tui.domain.codec import decode
from orders_tui.kafka.dlq import DlqEntry
from tests.expectations import dead_lettered
from tests.kafka_helpers import read_all
from tests.test_crash_safety import whole_records

pytestmark = pytest.mark.kafka


def _produce(settings, count: int, seed: int) -> None:
    produced = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-n", str(count), "--seed", str(seed),
         "-b", settings.bootstrap_servers, "--topic", settings.topic],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr


def test_the_pipeline_runs_on_the_consumer_group_protocol(settings, group, tmp_path):
    _produce(settings, 200, seed=5)
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


def test_a_member_killed_on_the_consumer_group_protocol_is_back_once_its_session_ends(
    settings, group, tmp_path
):
    """Under KIP-848 a static member killed without leaving keeps its instance id until
    its session ends (45 s): the restarted pipeline was refused ("The instance ID is
    still used by another member", a fatal error) and ended with exit 1. It now says so
    once, joins again every 5 s, and finishes every order, each DLQ record once."""
    _produce(settings, 3000, seed=7)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"

    def worker(outcomes, *extra: str) -> list[str]:
        return [sys.executable, "-m", "orders_tui", "consume", "--headless",
                "-b", settings.bootstrap_servers, "--topic", settings.topic,
                "--dlq-topic", settings.dlq_topic, "--group", group, "--instance-id", "k1",
                "--retry-backoff", "0.05", "--retry-backoff-max", "0.2", "--outcomes",
                str(outcomes), "-X", "group.protocol=consumer", *extra]  # fmt: skip

    killed = subprocess.Popen(worker(first, "--retry-backoff", "2"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not whole_records(first):  # retries wait 2 s: killed with work in flight
            assert time.monotonic() < deadline and killed.poll() is None
            time.sleep(0.1)
    finally:
        killed.kill()
        killed.wait()
    again = subprocess.run(worker(second, "--idle-exit", "3"), capture_output=True,
                           text=True, timeout=150)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("is still held by a member that stopped without leaving") == 1
    orders = [decode(m.value()) for m in read_all(settings.bootstrap_servers, settings.topic, 3000)]
    finished = {r["order_id"] for r in whole_records(first) + whole_records(second)}
    assert finished == {o.orderId for o in orders}  # 0 lost
    dlq = [DlqEntry.from_message(m) for m in read_all(settings.bootstrap_servers,
                                                      settings.dlq_topic)]  # fmt: skip
    assert max(Counter(entry.original for entry in dlq).values()) == 1
    assert len(dlq) == sum(1 for o in orders if dead_lettered(o))
