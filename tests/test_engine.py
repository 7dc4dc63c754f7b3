"""The engine behind the dashboard, in-process, on the real broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from orders_tui.kafka.engine import DlqEntrySeen, Engine, broker_answered
from orders_tui.kafka.events import ROWS_SHOWN


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
