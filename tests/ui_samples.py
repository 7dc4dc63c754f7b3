"""A fixed data set for the dashboard: the same events and figures every run, so layout
snapshots are stable. The engine is a stand-in that shows a fixed view (what an engine's
`view()` answers) and keeps what it is asked; the events are what an engine's threads
would have put on its queue."""

from __future__ import annotations

from dataclasses import replace

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.domain.stats import PipelineStats
from orders_tui.kafka.commands import EngineCommand, SetPaused, SetStreaming
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.engine import DlqEntrySeen
from orders_tui.kafka.engine_api import EngineView
from orders_tui.kafka.engine_config import EngineOptions
from orders_tui.kafka.events import (
    EngineStatus,
    EventQueue,
    OrderSeen,
    OrderState,
    RetryEnd,
    RetryFinished,
    RetryScheduled,
)
from orders_tui.ui.app import OrdersApp

NOW = 1_795_000_000.0  # a fixed clock
HOSTILE_PRODUCT = "[bold red]x[/] \x1b[31mred\x1b[0m"

PRODUCTS = ["Teal Lamp", "Navy Chair", "Olive Desk", "Coral Mug", "Ivory Sofa", "Plum Rug"]


def _order(i: int) -> Order:
    return Order(f"{i:08x}-0000-4000-8000-{i:012x}", PRODUCTS[i % len(PRODUCTS)], 12.5 + 97.3 * i)


def _dlq_entry(offset: int, order: Order, error_type: str, reason: str, source_offset: int):
    headers = [
        ("error_reason", reason.encode()),
        ("error_type", error_type.encode()),
        ("original_topic", b"orders"),
        ("original_partition", b"1"),
        ("original_offset", str(source_offset).encode()),
        ("original_timestamp", str(int(NOW * 1000) - 5000).encode()),
        ("timestamp", str(int(NOW * 1000) - 4000 + offset).encode()),
        ("attempts", b"1"),
        ("consumer_group", b"orders-tui"),
    ]
    return DlqEntry("orders-dlq", 0, offset, int(NOW * 1000), order.orderId.encode(),
                    encode(order), headers)  # fmt: skip


def sample_events() -> list:
    events: list = [EngineStatus(True)]
    for i in range(24):
        order = _order(i)
        outcome = OrderState.PROCESSED
        if order.price > 1000:
            outcome = OrderState.DEAD_LETTERED
        events.append(OrderSeen(i % 3, 100 + i, order.orderId, order.product, order.price, outcome))
    hostile = Order("ffffffff-0000-4000-8000-000000000000", HOSTILE_PRODUCT, 1200.0)
    events.append(OrderSeen(1, 200, hostile.orderId, hostile.product, hostile.price,
                            OrderState.DEAD_LETTERED))  # fmt: skip
    events.append(OrderSeen(2, 201, "aaaaaaaa-0000-4000-8000-000000000001", "Teal Lamp", 20.0,
                            OrderState.RETRYING, 2))  # fmt: skip
    events.append(RetryScheduled(2, 201, "aaaaaaaa-0000-4000-8000-000000000001", 2, 4,
                                 "downstream unavailable for price 20.00 (transient band "
                                 "5.00-50.00): attempt 2 of 4 failed", NOW + 1.5))  # fmt: skip
    events.append(RetryScheduled(0, 202, "bbbbbbbb-0000-4000-8000-000000000002", 1, 4,
                                 "downstream unavailable for price 7.00", NOW - 3))  # fmt: skip
    events.append(RetryFinished(0, 202, "bbbbbbbb-0000-4000-8000-000000000002", 2,
                                RetryEnd.RECOVERED))  # fmt: skip
    for offset in range(6):
        order = _order(11 + offset)
        events.append(DlqEntrySeen(_dlq_entry(
            offset, order, "permanent",
            f"price {order.price:.2f} is above the permanent-failure threshold 1000.00",
            100 + offset)))  # fmt: skip
    events.append(DlqEntrySeen(_dlq_entry(6, hostile, "permanent",
                                          f"bad product {HOSTILE_PRODUCT}", 200)))  # fmt: skip
    return events


class FixedEngine:
    """An engine that shows `shown` and keeps what it was sent (pause and stream requests
    show at once, as a real engine's do); it connects to nothing."""

    def __init__(self, settings: KafkaSettings, shown: EngineView) -> None:
        self.settings = settings
        self.options = EngineOptions()
        self.events = EventQueue()
        self.shown = shown
        self.sent: list[EngineCommand] = []

    def view(self) -> EngineView:
        return self.shown

    def send(self, command: EngineCommand) -> None:
        self.sent.append(command)
        if isinstance(command, SetPaused):
            self.shown = replace(self.shown, paused=command.paused)
        elif isinstance(command, SetStreaming):
            self.shown = replace(self.shown, streaming=command.on)

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 2.0) -> None:
        pass


def sample_app() -> OrdersApp:
    stats = PipelineStats()
    stats.started = NOW - 60
    prices = [_order(i).price for i in range(24) if _order(i).price <= 1000]
    for second in range(30):
        stats.add_processed_batch(prices[: (second % 7) + 1], NOW - 30 + second)
    stats.consumed = stats.processed + 8
    stats.retry_attempts = 5
    stats.recovered = 2
    for _ in range(6):
        stats.add_dead_lettered(["permanent"])
    stats.add_dead_lettered(["retries_exhausted"])
    stats.add_dead_lettered(["deserialization"])
    shown = EngineView(stats=stats, lag={0: 0, 1: 12, 2: 3})
    engine = FixedEngine(KafkaSettings("localhost:9092", "orders", "orders-dlq"), shown)
    return OrdersApp(engine, clock=lambda: NOW, start_engine=False)
