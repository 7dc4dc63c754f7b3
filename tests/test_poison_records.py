"""Records whose writer schema an attacker chose (tests/hostile_records.py), on the real
broker: the pipeline dead-letters each byte for byte with a reason naming the limit it
broke and goes on with the orders behind it; `dlq`, `dlq --json` and the dashboard read
them; no reader crashes, hangs, ignores SIGTERM or takes the machine's memory. Before
the decoder had limits, the first of them segfaulted every one of these readers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.domain.retry import Backoff
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
from orders_tui.kafka.remote import EngineProcess
from orders_tui.ui.app import OrdersApp
from tests.hostile_records import LIMITS, corpus
from tests.kafka_helpers import read_all
from tests.ui_helpers import wait_for

pytestmark = pytest.mark.kafka

CORPUS = corpus()
PEAK_RSS_MB = 500


def _produce_between_orders(settings, times: int = 1) -> list[Order]:
    """Each hostile record between two good orders, on one partition, `times` over."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    good = []
    for round_ in range(times):
        for i, (name, value) in enumerate(CORPUS.items()):
            order = Order(f"good-{round_}-{i}", "Lamp", 100.0 + i)
            good.append(order)
            producer.produce(settings.topic, encode(order), order.orderId, partition=0)
            producer.produce(settings.topic, value, f"hostile {name}", partition=0)
    last = Order(f"good-{times}-last", "Lamp", 200.0)
    good.append(last)
    producer.produce(settings.topic, encode(last), last.orderId, partition=0)
    assert producer.flush(30) == 0
    return good


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _run_watched(command: list[str], timeout: float = 90) -> tuple[float, str]:
    """Runs `command` to its end: its peak RSS in MB, and its stdout (through a file, so
    a long output never waits on a pipe)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        peak = 0.0
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"{command[3:5]} did not finish in {timeout} s")
            peak = max(peak, _peak_rss_mb(proc.pid))
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        assert proc.returncode == 0, f"exit {proc.returncode}: {err.read()[-2000:]}"
        return peak, out.read()


def _consume(settings, group, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orders_tui", "consume", "--headless",
            "-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic, "--group", group, "--retry-backoff", "0.05",
            *extra]  # fmt: skip


def test_the_pipeline_dead_letters_each_hostile_record_byte_for_byte_and_goes_on(
    settings, group, tmp_path
):
    good = _produce_between_orders(settings)
    outcomes = tmp_path / "outcomes.jsonl"
    peak, _ = _run_watched(_consume(settings, group, "--idle-exit", "2",
                                       "--outcomes", str(outcomes)))  # fmt: skip
    assert peak < PEAK_RSS_MB
    finished = [json.loads(line) for line in outcomes.read_text().splitlines()]
    processed = [r["order_id"] for r in finished if r["outcome"] == "processed"]
    assert sorted(processed) == sorted(o.orderId for o in good)  # each once, none lost

    dlq = [DlqEntry.from_message(m) for m in read_all(settings.bootstrap_servers,
                                                      settings.dlq_topic, len(CORPUS))]  # fmt: skip
    assert len(dlq) == len(CORPUS)
    by_name = {entry.key.decode().removeprefix("hostile "): entry for entry in dlq}
    for name, value in CORPUS.items():
        entry = by_name[name]
        assert entry.value == value, name  # byte for byte
        assert entry.error_type == "deserialization"
        assert LIMITS[name] in entry.reason, entry.reason


def test_sigterm_stops_a_pipeline_fed_hostile_records_within_5_seconds(settings, group, tmp_path):
    _produce_between_orders(settings, times=10)
    outcomes = tmp_path / "outcomes.jsonl"
    command = _consume(settings, group, "--outcomes", str(outcomes))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not outcomes.exists() or len(outcomes.read_text().splitlines()) < 20:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the pipeline got nowhere"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=10)
        assert time.monotonic() - sent < 5
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _put_on_the_dlq(settings) -> None:
    """The corpus as DLQ entries, as the pipeline leaves them (any writer could)."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for name, value in CORPUS.items():
        producer.produce(settings.dlq_topic, value, f"hostile {name}", partition=0,
                         headers=[("error_type", b"deserialization"),
                                  ("error_reason", b"written by the test"),
                                  ("original_topic", settings.topic.encode())])  # fmt: skip
    assert producer.flush(30) == 0


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_dlq_lists_hostile_entries_in_bounded_time_memory_and_output(settings, json_output):
    _put_on_the_dlq(settings)
    command = [sys.executable, "-m", "orders_tui", "dlq", "-b", settings.bootstrap_servers,
               "--topic", settings.topic, "--dlq-topic", settings.dlq_topic]  # fmt: skip
    started = time.monotonic()
    peak, out = _run_watched([*command, "--json"] if json_output else command, timeout=60)
    assert time.monotonic() - started < 30
    assert peak < PEAK_RSS_MB
    lines = out.splitlines()
    if json_output:
        keys = [json.loads(line)["key"]["text"] for line in lines]
        assert sorted(keys) == sorted(f"hostile {name}" for name in CORPUS)
    else:
        assert sum("hostile" in line for line in lines) == len(CORPUS)
    # Each value shown once, as hex or base64: no entry is expanded (the bzip2 bomb's
    # 1 KB made a 600 MB line).
    assert len(out) < 3 * sum(map(len, CORPUS.values())) + 10_000


async def test_the_dashboard_reads_hostile_records_and_its_engine_lives_on(settings, group):
    good = _produce_between_orders(settings)
    config = EngineConfig(group=group, backoff=Backoff(base=0.05, cap=0.2))
    engine = EngineProcess(settings, EngineOptions(config))
    engine.start()
    try:
        app = OrdersApp(engine)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(
                pilot,
                lambda: (
                    engine.view().stats.processed == len(good) and app.dlq.row_count == len(CORPUS)
                ),
                timeout=60,
            )
            entries = list(app.dlq.entries.values())
            assert sorted(e.value for e in entries) == sorted(CORPUS.values())
            assert engine.view().ended is None
            assert _peak_rss_mb(engine.pid) < PEAK_RSS_MB
    finally:
        engine.stop()
