"""The dashboard: four panes over the engine, refreshed in batches ten times a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import DataTable, Footer, Static

from orders_tui.kafka.engine import DlqEntrySeen, Engine
from orders_tui.kafka.events import (
    EngineStatus,
    Event,
    Notice,
    OrderSeen,
    RetryFinished,
    RetryScheduled,
)
from orders_tui.ui.panes.aggregates import AggregatesPane
from orders_tui.ui.panes.dlq import DlqPane
from orders_tui.ui.panes.orders import OrdersPane
from orders_tui.ui.panes.retries import RetriesPane
from orders_tui.ui.screens.dlq_entry import DlqEntryScreen
from orders_tui.ui.screens.help import HelpScreen
from orders_tui.ui.text import literal

TICK_SECONDS = 0.1  # events reach the panes at most 10 times a second


class OrdersApp(App[None]):
    TITLE = "orders-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("p", "produce", "Produce"),
        Binding("P", "stream", "Stream"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("r", "replay_selected", "Replay"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        start_engine: bool = True,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.clock = clock
        self.start_engine = start_engine
        self.status_detail = ""
        self.connected: bool | None = None  # None until the engine first reports

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="banner")
        with Container(id="panes"):
            yield OrdersPane(id="orders", classes="pane")
            yield RetriesPane(self.clock, id="retries", classes="pane")
            yield DlqPane(id="dlq", classes="pane")
            yield AggregatesPane(id="aggregates", classes="pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OrdersPane).focus()
        self.refresh_status()
        self.set_interval(TICK_SECONDS, self.pull_events)
        if self.start_engine:
            self.engine.start()

    # ---- engine events -> panes ----

    def pull_events(self) -> None:
        self.apply_events(self.engine.events.drain())

    def apply_events(self, events: list[Event | DlqEntrySeen]) -> None:
        orders = self.query_one(OrdersPane)
        retries = self.query_one(RetriesPane)
        dlq = self.query_one(DlqPane)
        status_changed = False
        for event in events:
            if isinstance(event, OrderSeen):
                orders.show(event)
            elif isinstance(event, RetryScheduled | RetryFinished):
                retries.show(event)
            elif isinstance(event, DlqEntrySeen):
                dlq.show(event.entry)
            elif isinstance(event, EngineStatus):
                if event.connected != self.connected or event.detail:
                    self.connected, self.status_detail = event.connected, event.detail
                    status_changed = True
            elif isinstance(event, Notice):
                self.notify(event.text, severity="error" if event.error else "information")
        retries.tick()
        for pane in (orders, retries, dlq):
            pane.flush()
        self.query_one(AggregatesPane).show(self.engine.stats, self.engine.lag, self.clock())
        if status_changed:
            self.refresh_status()

    def refresh_status(self) -> None:
        engine, settings = self.engine, self.engine.settings
        line = Text()
        line.append("Kafka ", style="bold")
        line.append_text(literal(settings.bootstrap_servers))
        if self.connected is None:
            line.append("  ● connecting…", style="bold yellow")
        elif self.connected:
            line.append("  ● connected", style="bold green")
        else:
            line.append("  ● disconnected", style="bold red")
        line.append("   consumer ")
        if engine.paused:
            line.append("PAUSED", style="bold black on yellow")
        else:
            line.append("RUNNING", style="bold green")
        line.append("   group ")
        line.append_text(literal(engine.config.group, "bold"))
        line.append("   ")
        line.append_text(literal(f"{settings.topic} → {settings.dlq_topic}"))
        if engine.streaming:
            line.append(f"   streaming {engine.rate:g}/s", style="bold magenta")
        self.query_one("#status", Static).update(line)
        banner = self.query_one("#banner", Static)
        banner.display = self.connected is False and bool(self.status_detail)
        banner.update(literal(self.status_detail))

    # ---- keys ----

    def action_produce(self) -> None:
        self.engine.produce_batch()
        self.notify(f"producing {self.engine.batch_size} orders", timeout=1.5)

    def action_stream(self) -> None:
        self.engine.toggle_stream()
        self.refresh_status()

    def action_toggle_pause(self) -> None:
        self.engine.toggle_pause()
        self.refresh_status()

    def action_replay_selected(self) -> None:
        dlq = self.query_one(DlqPane)
        if not dlq.has_focus:
            self.notify("select an entry in the DLQ pane to replay it", severity="warning")
            return
        entry = dlq.selected
        if entry is not None:
            self.replay(entry)

    def replay(self, entry) -> None:
        if self.engine.replay(entry):
            self.notify(f"replaying {entry.partition}/{entry.offset}…", timeout=1.5)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, DlqPane):
            entry = event.data_table.entries.get(event.row_key.value)
            if entry is not None:
                self.push_screen(DlqEntryScreen(entry))

    async def action_quit(self) -> None:
        self.notify("stopping: committing what is done…", timeout=2)
        await asyncio.to_thread(self.engine.stop, 1.8)
        self.exit()

    def on_unmount(self) -> None:
        self.engine.stop(timeout=0)
