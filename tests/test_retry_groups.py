"""Retry topics belong to one consumer group, on the real broker: several groups on one
topic each finish every order once, a retry record of another group is skipped and
counted, and an upgraded group drains its retries from the old shared topics. Before
retry topics were named per group, two groups processed 13 % of the orders twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from orders_tui.domain.codec import decode
from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.retry_topics import RetryState
from orders_tui.kafka.topics import ensure_topics
from tests.expectations import ATTEMPTS, failing_attempts, transient
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka


def consume(settings, group: str, outcomes, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orders_tui", "consume", "--headless",
            "-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic, "--group", group, "--retry-backoff", "0.05",
            "--retry-backoff-max", "0.2", "--outcomes", str(outcomes), "--json",
            *extra]  # fmt: skip


@pytest.mark.parametrize("groups", [2, 3])
def test_groups_on_one_topic_each_finish_every_order_once(settings, tmp_path, groups):
    names = [f"team-{i}-{uuid.uuid4().hex[:6]}" for i in range(groups)]
    logs = [tmp_path / f"{name}.jsonl" for name in names]
    producer = subprocess.Popen(
        [sys.executable, "-m", "orders_tui", "produce", "-n", "900", "--rate", "300",
         "--seed", "29", "-b", settings.bootstrap_servers, "--topic", settings.topic],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    workers = [subprocess.Popen(consume(settings, name, log, "--idle-exit", "4"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, log in zip(names, logs, strict=True)]  # fmt: skip
    assert producer.wait(60) == 0, producer.stderr.read()
    summaries = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        summaries.append(json.loads(out))

    produced = [
        decode(m.value()) for m in read_all(settings.bootstrap_servers, settings.topic, 900)
    ]
    assert len(produced) == 900
    exhausted = sum(1 for o in produced if transient(o) and failing_attempts(o.orderId) == ATTEMPTS)
    dlq = [
        DlqEntry.from_message(m) for m in read_all(settings.bootstrap_servers, settings.dlq_topic)
    ]
    for name, log, summary in zip(names, logs, summaries, strict=True):
        finished = Counter(json.loads(line)["order_id"] for line in log.read_text().splitlines())
        assert set(finished) == {o.orderId for o in produced}, name
        assert max(finished.values()) == 1, f"{name}: orders finished twice"
        assert summary["dead_lettered_by_type"].get("retries_exhausted", 0) == exhausted
        assert summary["foreign_retries_skipped"] == 0
        own = Counter(e.original for e in dlq if e.header("consumer_group") == name)
        assert own and max(own.values()) == 1, f"{name}: duplicate DLQ records"


def _retry_record(order: Order, group: str | None) -> tuple[bytes, list]:
    state = RetryState(1, 0, 0, "downstream unavailable", "orders", 0, 7, 0, [], group)
    return encode(order), state.headers()


def test_a_retry_record_of_another_group_is_skipped_counted_and_named_once(settings, group,
                                                                            tmp_path):  # fmt: skip
    own_retry = f"{settings.topic}-{group}-retry-1"
    ensure_topics(settings, [own_retry])
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for i in range(2):
        value, headers = _retry_record(Order(f"theirs-{i}", "Mug", 500.0), "another-team")
        producer.produce(own_retry, value, f"theirs-{i}", partition=0, headers=headers)
    value, headers = _retry_record(Order("ours", "Mug", 500.0), group)
    producer.produce(own_retry, value, b"ours", partition=0, headers=headers)
    producer.produce(settings.topic, encode(Order("new", "Lamp", 100.0)), b"new", partition=0)
    assert producer.flush(10) == 0
    log = tmp_path / "outcomes.jsonl"
    done = subprocess.run(consume(settings, group, log, "--idle-exit", "2"),
                          capture_output=True, text=True, timeout=90)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["foreign_retries_skipped"] == 2
    finished = {
        json.loads(line)["order_id"]: json.loads(line) for line in log.read_text().splitlines()
    }
    assert set(finished) == {"ours", "new"}  # another group's retries neither done nor counted
    assert finished["ours"]["attempts"] == 2
    said = [line for line in done.stderr.splitlines() if "another-team" in line]
    assert (
        len(said) == 1
        and f"skipping retry records of group 'another-team' on {own_retry}" in said[0]
    )


def test_an_upgraded_group_drains_its_retries_from_the_old_shared_topics(settings, group,
                                                                         tmp_path):  # fmt: skip
    shared = f"{settings.topic}-retry-1"  # how every group's retries were named before
    ensure_topics(settings, [shared])
    # The group consumed the shared topic before (its committed offsets say so) ...
    committer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    committer.commit(offsets=[TopicPartition(shared, p, 0) for p in range(3)], asynchronous=False)
    committer.close()
    # ... and a retry written then (no group header) still waits there.
    value, headers = _retry_record(Order("waiting", "Mug", 500.0), None)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(shared, value, b"waiting", partition=0, headers=headers)
    assert producer.flush(10) == 0

    assert _retries(settings, group)["shared_retry_topics"] == {shared: 1}
    log, said = tmp_path / "outcomes.jsonl", tmp_path / "stderr.txt"
    with said.open("w") as stderr:
        first = subprocess.Popen(consume(settings, group, log), stdout=subprocess.DEVNULL,
                                 stderr=stderr, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 40  # drained, then seen so at the next check
            while "no longer read" not in said.read_text():
                assert first.poll() is None and time.monotonic() < deadline, said.read_text()
                time.sleep(0.2)
        finally:
            first.send_signal(signal.SIGTERM)
            first.wait(10)
    assert first.returncode == 0, said.read_text()
    text = said.read_text()
    assert f"draining this group's retries from the old shared retry topics ({shared})" in text
    assert f"the old shared retry topics are drained ({shared}): no longer read" in text
    [finished] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (finished["order_id"], finished["outcome"], finished["attempts"]) == (
        "waiting",
        "processed",
        2,
    )
    again = subprocess.run(consume(settings, group, log, "--idle-exit", "1"),
                           capture_output=True, text=True, timeout=90)  # fmt: skip
    assert again.returncode == 0 and "draining" not in again.stderr  # nothing left there
    assert len(log.read_text().splitlines()) == 1
    left = _retries(settings, group)
    assert left["shared_retry_topics"] == {shared: 0}
    assert left["retry_topics"] == {f"{settings.topic}-{group}-retry-{n}": 0 for n in (1, 2, 3)}


def _retries(settings, group: str) -> dict:
    """`orders-tui retries --json`: what the README says to run to check nothing is left."""
    done = subprocess.run(
        [sys.executable, "-m", "orders_tui", "retries", "--group", group, "--json",
         "-b", settings.bootstrap_servers, "--topic", settings.topic],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
