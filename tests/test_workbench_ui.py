"""The DLQ workbench screen, driven by Textual's pilot against the real broker."""

from __future__ import annotations

import json
import re
import time

import pytest
from confluent_kafka import Producer

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.kafka.engine import Engine
from orders_tui.ui.app import OrdersApp
from orders_tui.ui.screens.dialogs import Confirm, Prompt
from orders_tui.ui.screens.workbench import SourceScreen, WorkbenchScreen
from tests.kafka_helpers import read_all
from tests.ui_helpers import screen_text, wait_for

pytestmark = pytest.mark.kafka

START_MS = 1795800000000  # entry i was dead-lettered at START_MS + i minutes


def _dlq(settings) -> tuple[int, int]:
    """100 permanent entries (prices 1001-1100, a minute apart) and 20 deserialization
    ones; entry 0's original is a real record on the orders topic (returned)."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 10})
    source: list = []
    producer.produce(
        settings.topic,
        b"the source record",
        b"source-key",
        partition=1,
        on_delivery=lambda err, msg: source.append((msg.partition(), msg.offset())),
    )
    assert producer.flush(10) == 0
    partition, offset = source[0]
    for i in range(120):
        if i < 100:
            order = Order(f"order-{i:03d}", "Lamp", 1001.0 + i)
            key, value = order.orderId.encode(), encode(order)
            headers = [
                ("error_type", b"permanent"),
                ("error_reason", f"price {order.price:.2f} is above 1000.00".encode()),
                ("original_topic", settings.topic.encode()),
                ("original_partition", str(partition if i == 0 else 0).encode()),
                ("original_offset", str(offset if i == 0 else 1000 + i).encode()),
            ]
        else:
            key, value = f"junk-{i}".encode(), b"\xff junk"
            headers = [
                ("error_type", b"deserialization"),
                ("error_reason", b"not an Order"),
                ("original_topic", settings.topic.encode()),
                ("original_partition", b"2"),
                ("original_offset", str(i).encode()),
            ]
        producer.produce(
            settings.dlq_topic,
            value,
            key,
            partition=i % 3,
            headers=headers,
            timestamp=START_MS + i * 60_000,
        )
    assert producer.flush(10) == 0  # fmt: skip
    return partition, offset


async def test_filter_triage_navigate_select_redrive_export_and_source(settings, tmp_path):
    _dlq(settings)
    app = OrdersApp(Engine(settings), start_engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("w")
        screen = app.screen
        assert isinstance(screen, WorkbenchScreen)
        view = lambda: screen.workbench.view  # noqa: E731
        await wait_for(pilot, lambda: view().matched == 120 and not view().scanning)
        await pilot.pause(0.3)
        assert "120 entries" in screen_text(app)
        assert "row 120 of 120" in screen_text(app)  # following the newest

        # Filter from the / line.
        await pilot.press("slash")
        screen.query_one("#filter").value = "type=deserialization"
        await pilot.press("enter")
        await wait_for(pilot, lambda: view().matched == 20 and not view().scanning)
        await pilot.pause(0.3)
        assert "20 entries match type=deserialization" in screen_text(app)

        # Triage of everything; 1 filters to the biggest reason group.
        screen.query_one("#filter").value = ""
        await pilot.press("slash", "enter")
        await wait_for(pilot, lambda: view().matched == 120 and not view().scanning)
        await pilot.press("t")
        await pilot.pause(0.3)
        triage = screen_text(app)
        assert "triage of 120 entries" in triage
        assert "by type: permanent 100 · deserialization 20" in triage
        assert f"by original partition: {settings.topic}[0] 99" in triage
        first_reason = r" 1\s+100\s+\S+ \S+ to \S+ \S+\s+\[permanent\] price # is above #"
        assert re.search(first_reason, triage)
        await pilot.press("1")
        await wait_for(pilot, lambda: view().matched == 100 and not view().scanning)
        assert view().where.startswith('type="permanent" reason~')

        # Navigate: home is row 1; a page down moves on; the rows are in time order.
        await pilot.press("home")
        await wait_for(pilot, lambda: view().window_start == 0 and view().window)
        await pilot.pause(0.3)
        assert "row 1 of 100" in screen_text(app)
        assert view().window[0].key == b"order-000"

        # Go to the time of entry 50.
        await pilot.press("g")
        assert isinstance(app.screen, Prompt)
        app.screen.query_one("#prompt-input").value = time.strftime(
            "%Y-%m-%dT%H:%M", time.localtime((START_MS + 50 * 60_000) / 1000)
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: "row 51 of 100" in screen_text(app))
        assert screen._current().key == b"order-050"

        # Go to a place on the DLQ: entry i is at partition i % 3, offset i // 3.
        await pilot.press("g")
        app.screen.query_one("#prompt-input").value = "1@10"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen._current() is not None
                       and screen._current().key == b"order-031")  # fmt: skip
        await pilot.press("g")
        app.screen.query_one("#prompt-input").value = time.strftime(
            "%Y-%m-%dT%H:%M", time.localtime((START_MS + 50 * 60_000) / 1000)
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: "row 51 of 100" in screen_text(app))

        # Select two, redrive them: a dry run's plan first, then the send.
        await pilot.press("space", "space")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        assert "would send 2" in app.screen.text
        await pilot.press("enter")
        await wait_for(pilot, lambda: "sent 2" in view().job_done)
        sent = read_all(settings.bootstrap_servers, settings.topic, 3)
        assert sorted(m.key() for m in sent) == [b"order-050", b"order-051", b"source-key"]

        # The redrive's outcome (nothing consumed them: no pipeline runs here).
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        assert "2 sent · 0 dead-lettered again · not all consumed yet" in app.screen.text
        await pilot.press("escape")

        # Export everything the filter picks.
        await pilot.press("a", "x")
        assert isinstance(app.screen, Prompt)
        target = tmp_path / "export.jsonl"
        app.screen.query_one("#prompt-input").value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "exported 100 entries" in view().job_done)
        lines = [json.loads(line) for line in target.read_text().splitlines()]
        assert len(lines) == 100 and {line["order"]["orderId"] for line in lines} == {
            f"order-{i:03d}" for i in range(100)}  # fmt: skip

        # The record behind entry 0.
        await pilot.press("home")
        await wait_for(pilot, lambda: view().window_start == 0 and view().window)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, SourceScreen))
        await pilot.pause(0.2)
        assert "source-key" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("escape")  # back to the dashboard
        await pilot.pause(0.2)
        assert not isinstance(app.screen, WorkbenchScreen)


def test_the_workbench_follows_a_dlq_topic_created_after_it_opened(bootstrap):
    """Opened before anything was dead-lettered (no DLQ topic yet), it shows the entries
    once the topic exists and they come."""
    import uuid

    from orders_tui.kafka.config import KafkaSettings
    from orders_tui.kafka.topics import ensure_topics
    from orders_tui.kafka.workbench import Workbench

    settings = KafkaSettings(bootstrap, "late", f"late-dlq-{uuid.uuid4().hex[:6]}")
    workbench = Workbench(settings)
    workbench.start("")
    try:
        time.sleep(1.0)
        assert workbench.view.matched == 0
        ensure_topics(settings, [settings.dlq_topic])
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(5):
            producer.produce(settings.dlq_topic, b"x", b"k%d" % i, partition=i % 3)
        assert producer.flush(10) == 0
        deadline = time.monotonic() + 15
        while workbench.view.matched < 5:
            assert time.monotonic() < deadline, workbench.view
            time.sleep(0.1)
    finally:
        workbench.stop()
