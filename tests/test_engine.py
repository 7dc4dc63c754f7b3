"""The engine behind the dashboard, in-process, on the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from orders_tui.kafka.commands import SetStreaming
from orders_tui.kafka.engine import DlqEntrySeen, Engine, broker_answered
from orders_tui.kafka.events import ROWS_SHOWN
from tests.kafka_helpers import group_members


def test_an_error_the_broker_sent_is_not_a_lost_connection():
    """A fresh broker answers "not coordinator" while it loads its groups: the header
    must not say disconnected for that, only for librdkafka's own connection errors."""
    assert broker_answered(KafkaError(KafkaError.NOT_COORDINATOR))
    assert broker_answered(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))
    assert not broker_answered(KafkaError(KafkaError._TRANSPORT))
    assert not broker_answered(KafkaError(KafkaError._TIMED_OUT))
    assert not broker_answered(KafkaError(KafkaError._ALL_BROKERS_DOWN))


def _write_dlq(settings, count: int, start: int) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20})
    for n in range(start, start + count):
        producer.produce(
            settings.dlq_topic, b"not an order %d" % n, b"key-%d" % n, partition=n % 3,
            headers=[("error_type", b"deserialization")],
        )  # fmt: skip
    assert producer.flush(30) == 0


def _ends(settings) -> dict[int, int]:
    reader = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "ends"})
    try:
        return {
            p: reader.get_watermark_offsets(TopicPartition(settings.dlq_topic, p), timeout=10)[1]
            for p in range(3)
        }
    finally:
        reader.close()


@pytest.mark.kafka
def test_the_dlq_reader_skips_to_the_newest_entries_when_the_dlq_outgrows_the_pane(settings):
    """A DLQ growing by thousands between two reads: the reader shows each partition's
    newest entries, and does not read everything in between to get there."""
    _write_dlq(settings, 6_000, start=0)
    engine = Engine(settings)
    engine.start()
    seen: list[DlqEntrySeen] = []
    try:
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.2)
            seen += [e for e in engine.events.drain() if isinstance(e, DlqEntrySeen)]
        assert seen, "the DLQ reader showed nothing"
        _write_dlq(settings, 30_000, start=6_000)
        ends = _ends(settings)
        newest = {p: -1 for p in ends}
        deadline = time.monotonic() + 20
        while newest != {p: end - 1 for p, end in ends.items()} and time.monotonic() < deadline:
            time.sleep(0.2)
            for event in engine.events.drain():
                if isinstance(event, DlqEntrySeen):
                    seen.append(event)
                    entry = event.entry
                    newest[entry.partition] = max(newest[entry.partition], entry.offset)
    finally:
        engine.stop()
    assert newest == {p: end - 1 for p, end in ends.items()}
    # It skipped ahead: far fewer entries decoded than the 36,000 written.
    assert len(seen) <= 12 * ROWS_SHOWN


def _wait(condition, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.time()  # comparable with the records' timestamps


@pytest.mark.kafka
def test_the_stream_waits_while_kafka_is_down_then_resumes_at_its_rate(own_broker):
    """`P` at 20/s; the broker stops for a while and starts again. While it is away the
    stream says it waits and sends nothing new; after, it resumes at 20/s without a
    burst for the time it missed, and every order it counted is on the topic once."""
    from orders_tui.kafka.config import KafkaSettings
    from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
    from orders_tui.kafka.topics import ensure_topics
    from tests.kafka_helpers import read_all

    broker = own_broker
    engine = None
    try:
        settings = KafkaSettings(broker.bootstrap, "orders", "orders-dlq")
        ensure_topics(settings, [settings.topic, settings.dlq_topic])
        engine = Engine(settings, EngineOptions(EngineConfig(group="stream"), rate=20.0))
        engine.start()
        _wait(lambda: engine.view().connected, 30, "the engine to connect")
        engine.send(SetStreaming(True))
        _wait(lambda: engine.view().produced >= 40, 10, "40 orders streamed")
        broker.stop()
        _wait(lambda: engine.view().stream_waiting, 15, "the stream to say it waits")
        time.sleep(3)  # 60 orders' worth of time the stream must not make up for
        broker.start()
        resumed = _wait(lambda: not engine.view().stream_waiting, 60, "the stream to resume")
        time.sleep(4)
        engine.send(SetStreaming(False))
        time.sleep(1)
        produced = engine.view().produced
    finally:
        if engine is not None:
            engine.stop(timeout=3)
        records = read_all(broker.bootstrap, "orders") if engine is not None else []
    ids = [m.key() for m in records]
    assert len(ids) == len(set(ids)) == produced  # each counted order is there, once
    stamps = sorted(m.timestamp()[1] / 1000 for m in records)
    after = [t for t in stamps if t >= resumed - 0.5]
    # At 20/s for about 4 s after resuming: a catch-up burst would add ~60 more orders.
    assert 60 <= len(after) <= 110, len(after)
    first_second = [t for t in after if t < after[0] + 1.0]
    assert len(first_second) <= 30, "a burst after the outage"


DASHBOARD_STAND_IN = """
import sys, time
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.engine_config import EngineOptions
from orders_tui.kafka.remote import EngineProcess

if __name__ == "__main__":
    bootstrap, topic, dlq, group = sys.argv[1:]
    engine = EngineProcess(KafkaSettings(bootstrap, topic, dlq),
                           EngineOptions(EngineConfig(group=group)))
    engine.start()
    while not engine.view().connected:
        time.sleep(0.1)
    print(engine.pid, flush=True)
    time.sleep(600)
"""


def test_the_engine_process_stops_when_the_dashboard_is_killed(settings, group, tmp_path):
    """A dashboard killed with SIGKILL leaves no engine behind consuming for its group.
    While it runs, what the engine prints goes to ~/.cache/orders-tui/engine.log, not to
    the dashboard's terminal."""
    script = tmp_path / "dashboard.py"
    script.write_text(DASHBOARD_STAND_IN)
    dashboard = subprocess.Popen(
        [sys.executable, str(script), settings.bootstrap_servers, settings.topic,
         settings.dlq_topic, group],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        engine_pid = int(dashboard.stdout.readline())
        assert _alive(engine_pid)
        log = tmp_path / ".cache" / "orders-tui" / "engine.log"
        for fd in (1, 2):
            assert os.readlink(f"/proc/{engine_pid}/fd/{fd}") == str(log)
        dashboard.kill()
        assert dashboard.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while _alive(engine_pid):
            assert time.monotonic() < deadline, "the engine outlived its dashboard by 10 s"
            time.sleep(0.1)
    finally:
        dashboard.kill()
    assert group_members(settings, group) == 0  # it left the group on its way out


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has exited; its parent never reaped it
