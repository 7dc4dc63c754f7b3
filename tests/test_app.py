"""The dashboard against the real broker, driven by Textual's pilot."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from textual.pilot import Pilot

from orders_tui.domain.retry import Backoff
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
from orders_tui.kafka.remote import EngineProcess
from orders_tui.ui.app import OrdersApp
from orders_tui.ui.panes.dlq import DlqPane
from orders_tui.ui.panes.orders import OrdersPane
from orders_tui.ui.screens.dlq_entry import DlqEntryScreen
from tests.kafka_helpers import read_all
from tests.ui_helpers import screen_text, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def engine(settings, group) -> Iterator[EngineProcess]:
    """The engine as the dashboard runs it: in a child process."""
    config = EngineConfig(group=group, backoff=Backoff(base=0.05, cap=0.2))
    engine = EngineProcess(settings, EngineOptions(config, batch_size=15, seed=21))
    engine.start()  # before the app runs, as the CLI does
    yield engine
    engine.stop()


@asynccontextmanager
async def running_app(engine: EngineProcess) -> AsyncIterator[tuple[OrdersApp, Pilot]]:
    """The dashboard at 120x40, once it is connected and its pipeline has started."""
    app = OrdersApp(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.connected and engine.view().stats.started)
        yield app, pilot


async def test_p_produces_orders_that_appear_and_are_counted(engine):
    async with running_app(engine) as (app, pilot):
        await pilot.press("p")
        orders = app.query_one(OrdersPane)
        await wait_for(pilot, lambda: engine.view().stats.consumed == 15 and orders.row_count == 15)
        await pilot.press("p")
        await wait_for(pilot, lambda: engine.view().stats.consumed == 30 and orders.row_count == 30)
        await wait_for(pilot, lambda: re.search(r"consumed\s+30\b", screen_text(app)) is not None)
        text = screen_text(app)
        assert "● connected" in text
        assert "consumer RUNNING" in text
        assert re.search(r"count\s+\d+", text)
        rows = [orders.get_row_at(i) for i in range(orders.row_count)]
        produced_partitions = {int(row[0].split("/")[0]) for row in rows}  # partition/offset
        assert produced_partitions == {0, 1, 2}  # 30 uuid keys reach all three
        assert {row[2].split()[0] for row in rows} <= {"processed", "retrying", "dead-lettered"}


async def test_space_pauses_and_resumes_consumption(engine):
    async with running_app(engine) as (app, pilot):
        await pilot.press("p")
        await wait_for(pilot, lambda: engine.view().stats.consumed == 15)
        await pilot.press("space")
        await wait_for(pilot, lambda: engine.view().pipeline_paused)
        assert "consumer PAUSED" in screen_text(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: engine.view().produced == 30)
        # While paused the lag grows to the 15 new orders, and none is consumed.
        await wait_for(pilot, lambda: sum(engine.view().lag.values()) == 15)
        assert engine.view().stats.consumed == 15
        await wait_for(pilot, lambda: re.search(r"lag 15\b", screen_text(app)) is not None)
        await pilot.press("space")
        await wait_for(pilot, lambda: engine.view().stats.consumed == 30)
        assert "consumer RUNNING" in screen_text(app)


async def test_dlq_entry_opens_with_decoded_headers_and_r_replays_it(engine, settings):
    async with running_app(engine) as (app, pilot):
        await pilot.press("p")
        dlq = app.query_one(DlqPane)
        await wait_for(pilot, lambda: dlq.row_count > 0)
        dlq.focus()
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DlqEntryScreen))
        entry: DlqEntry = app.screen.entry
        text = screen_text(app)
        for name in ("error_reason", "error_type", "original_topic", "original_partition",
                     "original_offset", "original_timestamp", "consumer_group"):  # fmt: skip
            assert name in text
        assert entry.reason[:40] in text
        assert f"{settings.topic}[{entry.original[1]}]@{entry.original[2]}" in text

        await pilot.press("r")
        await wait_for(pilot, lambda: _replayed(settings, entry))


def _replayed(settings, entry: DlqEntry) -> bool:
    for record in read_all(settings.bootstrap_servers, settings.topic):
        headers = dict(record.headers() or [])
        if headers.get("replayed_from_offset") == str(entry.offset).encode():
            assert headers["replay_count"] == b"1"
            assert headers["replayed_from_partition"] == str(entry.partition).encode()
            assert "error_type" not in headers
            assert record.value() == entry.value
            assert record.key() == entry.key
            return True
    return False


async def test_replay_is_refused_after_max_replays(engine, settings):
    """An entry replayed 3 times already (the default --max-replays): `r` says so on
    screen and sends nothing to its original topic."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(settings.dlq_topic, b"value", b"tired-key", partition=0,
                     headers=[("original_topic", settings.topic.encode()),
                              ("replay_count", b"3")])  # fmt: skip
    assert producer.flush(10) == 0
    async with running_app(engine) as (app, pilot):
        dlq = app.query_one(DlqPane)
        await wait_for(pilot, lambda: dlq.row_count == 1)
        dlq.focus()
        await pilot.press("r")
        refusal = f"{settings.dlq_topic}[0]@0 was replayed 3 times already (--max-replays 3)"
        await wait_for(pilot, lambda: any(refusal in n.message for n in app._notifications))
        await pilot.press("p")  # an order through the same producer, after the refusal
        await wait_for(pilot, lambda: engine.view().produced == 15)
    sent = read_all(settings.bootstrap_servers, settings.topic)
    assert len(sent) == 15 and all(m.key() != b"tired-key" for m in sent)


async def test_no_broker_shows_disconnected_then_connects_by_itself(tmp_path):
    """Nothing listening: the app opens and says so; once a broker starts on that address
    it connects by itself."""
    from tests.conftest import KAFKA_LOCAL, _free_port_pair

    port = _free_port_pair()
    settings = KafkaSettings(f"127.0.0.1:{port}", "orders", "orders-dlq")
    engine = EngineProcess(settings)
    engine.start()
    app = OrdersApp(engine)
    broker = [str(KAFKA_LOCAL), "--port", str(port), "--dir", str(tmp_path / "kafka")]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: "cannot reach" in screen_text(app), timeout=15)
        text = " ".join(screen_text(app).split())  # the banner wraps where its detail ends
        assert "● disconnected" in text
        assert f"cannot reach Kafka at 127.0.0.1:{port}" in text
        assert "scripts/kafka-local start" in text
        start = await asyncio.create_subprocess_exec(broker[0], "start", *broker[1:])
        try:
            assert await start.wait() == 0
            await wait_for(pilot, lambda: "● connected" in screen_text(app), timeout=30)
        finally:
            stop = await asyncio.create_subprocess_exec(broker[0], "stop", *broker[1:])
            await stop.wait()
    engine.stop()


async def test_q_quits_within_2_seconds_and_commits_what_was_done(engine, settings, group):
    async with running_app(engine) as (_app, pilot):
        await pilot.press("p")
        await wait_for(pilot, lambda: engine.view().stats.consumed == 15)
        started = time.monotonic()
        await pilot.press("q")
        await asyncio.sleep(0)
    assert time.monotonic() - started < 2.5
    # The group's committed offsets, asked of the broker: every order consumed is done
    # (processed, retried or dead-lettered), so each partition is committed to its end.
    reader = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    try:
        partitions = [TopicPartition(settings.topic, p) for p in range(3)]
        committed = {tp.partition: tp.offset for tp in reader.committed(partitions, 10)}
        ends = {p: reader.get_watermark_offsets(TopicPartition(settings.topic, p), 10)[1]
                for p in range(3)}  # fmt: skip
    finally:
        reader.close()
    assert sum(ends.values()) == 15
    assert {p: max(o, 0) for p, o in committed.items()} == ends


async def test_shift_p_streams_orders_until_pressed_again(engine):
    async with running_app(engine) as (app, pilot):
        await pilot.press("P")
        assert "streaming 10/s" in screen_text(app)
        await wait_for(
            pilot, lambda: engine.view().produced >= 10 and engine.view().stats.consumed >= 10
        )
        await pilot.press("P")
        await pilot.pause(0.5)
        stopped_at = engine.view().produced
        await pilot.pause(1.5)
        assert engine.view().produced == stopped_at
        assert "streaming" not in screen_text(app)


async def test_an_engine_that_dies_is_shown_within_a_second_and_q_exits_non_zero(engine):
    """A crash (here a SIGSEGV, as a C library's bug would give) leaves the dashboard
    without its pipeline: it says so and how, keys that need the engine say why they do
    nothing, and quitting reports the failure."""
    async with running_app(engine) as (app, pilot):
        os.kill(engine.pid, signal.SIGSEGV)
        killed = time.monotonic()
        await wait_for(pilot, lambda: "engine stopped" in screen_text(app), timeout=5)
        assert time.monotonic() - killed < 1.5  # a second, and the tick that shows it
        text = screen_text(app)
        assert "consumer STOPPED" in text and "RUNNING" not in text
        assert "The engine process ended (killed by SIGSEGV)" in text
        assert "engine.log:" in text and "Fatal Python error: Segmentation fault" in text
        await pilot.press("p")
        await wait_for(
            pilot, lambda: any("the engine has stopped" in n.message for n in app._notifications)
        )
        await pilot.press("q")
    assert app.return_code == 1
