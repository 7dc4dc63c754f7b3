"""Crashes, stops and restarts of `consume --headless` on the real broker, counted by an
independent reader of the topics: what was lost, what was done twice, how long it took.

Expected outcomes are computed here from the produced orders and the README's rules, not
with the code under test: price > 1000 is dead-lettered at once; a price in 5..50 fails
its first k = 1 + (BLAKE2b-64 of the orderId, big-endian, mod 4) attempts, so k = 4
exhausts the 3 retries."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.producer import OrderProducer
from orders_tui.kafka.topics import ensure_topics
from tests.kafka_helpers import open_transactions, read_all

pytestmark = pytest.mark.kafka


def dead_lettered(order: Order) -> bool:
    if order.price > 1000.0:
        return True
    if 5.0 <= order.price <= 50.0:
        digest = hashlib.blake2b(order.orderId.encode(), digest_size=8).digest()
        return 1 + int.from_bytes(digest, "big") % 4 == 4
    return False


def produce(settings: KafkaSettings, count: int, seed: int) -> list[Order]:
    orders: list[Order] = []
    assert OrderProducer(settings, seed=seed, on_order=orders.append).produce(count).delivered
    return orders


def consume_cli(settings: KafkaSettings, group: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "orders_tui", "consume", "--headless",
        "-b", settings.bootstrap_servers, "--topic", settings.topic,
        "--dlq-topic", settings.dlq_topic, "--group", group, *extra,
    ]  # fmt: skip


def start_consumer(settings: KafkaSettings, group: str, outcomes: Path) -> subprocess.Popen:
    command = consume_cli(settings, group, "--outcomes", str(outcomes))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def whole_records(path: Path) -> list[dict]:
    """The outcome log's complete lines (a killed run may leave its last one cut short)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().split("\n")[:-1]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the consumer exited early: {proc.stderr.read()}")
        time.sleep(0.05)


def written_topics(settings: KafkaSettings, group: str) -> list[str]:
    """The topics a pipeline writes in its transactions: its group's three retry
    topics, the DLQ."""
    return [*(f"{settings.topic}-{group}-retry-{n}" for n in (1, 2, 3)), settings.dlq_topic]


def assert_same_orders(found: set[str], expected: set[str], where: str) -> None:
    """Counts, not a diff of thousands of ids."""
    missing, extra = expected - found, found - expected
    assert not missing and not extra, (
        f"{where}: {len(missing)} of {len(expected)} expected orders missing "
        f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]})"
    )


def dlq_keys(settings: KafkaSettings) -> Counter[str]:
    """DLQ records per order, read as a read_committed consumer sees them."""
    return Counter(m.key().decode() for m in read_all(settings.bootstrap_servers,
                                                       settings.dlq_topic))  # fmt: skip


def test_three_kill_9s_lose_nothing_and_the_dlq_holds_each_failure_once(settings, group, tmp_path):
    orders = produce(settings, 20_000, seed=31)
    outcomes = tmp_path / "outcomes.jsonl"
    for _ in range(3):
        proc = start_consumer(settings, group, outcomes)
        wait_for(lambda: len(whole_records(outcomes)) > 0, 30, proc)
        time.sleep(4)
        assert proc.poll() is None, proc.stderr.read()  # alive when killed
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    final = subprocess.run(
        consume_cli(settings, group, "--outcomes", str(outcomes),
                    "--idle-exit", "2", "--json"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["drained"] is True

    processed = {r["order_id"] for r in whole_records(outcomes) if r["outcome"] == "processed"}
    dlq = dlq_keys(settings)
    expected_dead = {o.orderId for o in orders if dead_lettered(o)}
    assert_same_orders(set(dlq), expected_dead, "DLQ")
    assert max(dlq.values()) == 1  # no duplicate for a read_committed reader
    everything = {o.orderId for o in orders}
    assert everything - expected_dead <= processed  # nothing lost


def test_sigterm_then_restart_redoes_at_most_2_percent(settings, group, tmp_path):
    orders = produce(settings, 20_000, seed=32)
    outcomes = tmp_path / "outcomes.jsonl"
    proc = start_consumer(settings, group, outcomes)
    wait_for(lambda: len(whole_records(outcomes)) > 0, 30, proc)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.stderr.read()
    first_run = len(whole_records(outcomes))
    assert first_run > 0
    final = subprocess.run(
        consume_cli(settings, group, "--outcomes", str(outcomes), "--idle-exit", "2"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    records = whole_records(outcomes)
    per_order = Counter(r["order_id"] for r in records)
    assert_same_orders(set(per_order), {o.orderId for o in orders}, "outcome log")
    redone = sum(n - 1 for n in per_order.values())
    assert redone <= 0.02 * len(orders), redone
    dlq = dlq_keys(settings)
    assert_same_orders(set(dlq), {o.orderId for o in orders if dead_lettered(o)}, "DLQ")
    assert sum(dlq.values()) - len(dlq) <= 0.02 * len(dlq)


def test_a_stop_under_load_leaves_no_transaction_open(settings, group, tmp_path):
    """Under load a commit is on its way every 0.1 s, so a SIGTERM often lands in one.
    The stopping pipeline must complete that commit (or abort): a transaction left open
    holds back every read_committed reader of the retry and DLQ topics, the other
    members included, until it times out 30 s later."""
    produce(settings, 150_000, seed=38)
    outcomes = tmp_path / "outcomes.jsonl"

    def lines() -> int:
        return outcomes.read_bytes().count(b"\n") if outcomes.exists() else 0

    for _ in range(6):
        before = lines()
        proc = start_consumer(settings, group, outcomes)
        try:
            wait_for(lambda: lines() > before + 2_000, 30, proc)  # noqa: B023
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
        assert open_transactions(settings.bootstrap_servers, written_topics(settings, group)) == {}


def test_a_restart_after_kill_9_processes_its_first_order_within_5_seconds(
    settings, group, tmp_path
):
    produce(settings, 100, seed=33)
    outcomes = tmp_path / "outcomes.jsonl"
    proc = start_consumer(settings, group, outcomes)
    wait_for(lambda: len(whole_records(outcomes)) >= 100, 30, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    later = produce(settings, 100, seed=34)
    started = time.monotonic()
    proc = start_consumer(settings, group, outcomes)
    try:
        later_ids = {o.orderId for o in later}
        wait_for(lambda: any(r["order_id"] in later_ids for r in whole_records(outcomes)),
                 30, proc)  # fmt: skip
        assert time.monotonic() - started <= 5.0
    finally:
        proc.kill()
        proc.wait()


def test_two_pipelines_started_at_once_both_work(settings, group, tmp_path):
    """Each takes its own static member id, so neither fences the other: both keep their
    partitions and consume orders produced once they have joined."""
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    procs = [start_consumer(settings, group, log) for log in logs]
    try:
        time.sleep(4)  # both join (a fenced member would exit with an error)
        orders = produce(settings, 3_000, seed=35)
        everything = {o.orderId for o in orders}

        def union() -> set[str]:
            return {r["order_id"] for log in logs for r in whole_records(log)}

        wait_for(lambda: union() >= everything, 60)
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read()
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(10) == 0, proc.stderr.read()
        assert all(whole_records(log) for log in logs), "one of the two did nothing"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_an_order_too_big_for_a_default_producer_reaches_the_dlq_byte_for_byte(settings, group):
    big = Order("big-order", "x" * 1_020_000, 2000.0)
    value = encode(big)
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "message.max.bytes": 2_000_000}
    )
    producer.produce(settings.topic, value, big.orderId)
    assert producer.flush(10) == 0
    run = subprocess.run(consume_cli(settings, group, "--idle-exit", "1"),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = read_all(settings.bootstrap_servers, settings.dlq_topic)
    assert (record.key(), record.value()) == (b"big-order", value)


def test_a_record_refused_locally_stops_the_engine_and_loses_nothing(settings, group):
    """A producer limit below a DLQ record's size (-X message.max.bytes): the record is
    refused before it leaves; one line, exit 1, and a run without the limit has it."""
    produce_big = Producer({"bootstrap.servers": settings.bootstrap_servers})
    order = Order("refused-order", "y" * 5_000, 2000.0)
    produce_big.produce(settings.topic, encode(order), order.orderId)
    assert produce_big.flush(10) == 0
    first = subprocess.run(
        consume_cli(settings, group, "--idle-exit", "1", "-X", "message.max.bytes=4000"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert first.returncode == 1, first.stderr
    lines = [line for line in first.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"orders-tui: a record for {settings.dlq_topic!r} was refused")
    assert "Traceback" not in first.stderr
    second = subprocess.run(consume_cli(settings, group, "--idle-exit", "1"),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert dlq_keys(settings) == {"refused-order": 1}


def test_sigterm_with_the_broker_gone_exits_within_5_seconds(tmp_path, own_broker):
    """A broker of its own, stopped under a running consumer: SIGTERM exits in time, and
    stderr said the connection was lost, in one line, not a traceback."""
    broker = own_broker
    proc = None
    try:
        settings = KafkaSettings(broker.bootstrap, "orders", "orders-dlq")
        ensure_topics(settings, [settings.topic, settings.dlq_topic])
        produce(settings, 2_000, seed=36)
        outcomes = tmp_path / "outcomes.jsonl"
        proc = subprocess.Popen(
            consume_cli(settings, "gone-group", "--outcomes", str(outcomes), "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(lambda: len(whole_records(outcomes)) >= 1_000, 60, proc)
        broker.stop()
        time.sleep(3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert time.monotonic() - sent <= 5.0
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "lost the connection to Kafka" in err
        summary = json.loads(out)
        assert summary["connection_losses"] == 1
        assert summary["consumed"] == 2_000
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()


def test_a_rebalance_under_load_redoes_little_and_duplicates_no_dlq_record(
    settings, group, tmp_path
):
    """Two pipelines share 50,000 orders as they arrive; a third joins, then the first
    leaves. Partitions move (incrementally) without finished work being done again."""
    logs = [tmp_path / f"{name}.jsonl" for name in "abc"]
    a, b = (start_consumer(settings, group, log) for log in logs[:2])
    procs = [a, b]
    orders: list[Order] = []
    try:
        time.sleep(3)  # both joined
        producer = OrderProducer(settings, seed=37, on_order=orders.append)
        producing = threading.Thread(target=producer.produce, args=(50_000,),
                                     kwargs={"rate": 10_000})  # fmt: skip
        producing.start()
        time.sleep(1.5)
        procs.append(start_consumer(settings, group, logs[2]))
        time.sleep(1.5)
        a.send_signal(signal.SIGTERM)
        assert a.wait(10) == 0, a.stderr.read()
        producing.join()
        everything = {o.orderId for o in orders}
        assert len(everything) == 50_000

        def finished() -> Counter[str]:
            return Counter(r["order_id"] for log in logs for r in whole_records(log))

        # a's partitions move once its session (10 s) ends
        wait_for(lambda: set(finished()) >= everything, 90)
        # The outcome log is written before the commit that covers it: a clean stop
        # commits the last transaction before the topics are counted.
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0, proc.stderr.read()
        assert open_transactions(settings.bootstrap_servers, written_topics(settings, group)) == {}
        per_order = finished()
        redone = sum(n - 1 for n in per_order.values())
        assert redone <= 0.05 * len(everything), redone
        dlq = dlq_keys(settings)
        assert_same_orders(set(dlq), {o.orderId for o in orders if dead_lettered(o)}, "DLQ")
        assert max(dlq.values()) == 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_idle_exit_waits_for_partitions_a_dead_member_held_then_drains_them(
    settings, group, tmp_path
):
    """The issue's case: a member that stopped answering (SIGSTOP) holds every partition
    until its session ends. A run with --idle-exit 1 must not call that drained: it waits,
    takes the partitions over, and exits 0 only once it has done every order."""
    holder = subprocess.Popen(consume_cli(settings, group),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(3)  # the holder has every partition
        holder.send_signal(signal.SIGSTOP)
        orders = produce(settings, 300, seed=38)
        outcomes = tmp_path / "outcomes.jsonl"
        run = subprocess.run(
            consume_cli(settings, group, "--idle-exit", "1", "--json", "--outcomes",
                        str(outcomes)),
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["drained"] is True
        done = {r["order_id"] for r in whole_records(outcomes)}
        assert done == {o.orderId for o in orders}
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.wait()
