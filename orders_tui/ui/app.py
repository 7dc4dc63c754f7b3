"""The dashboard: four panes over the engine, refreshed in batches ten times a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from orders_tui.kafka.commands import Produce, Replay, SetPaused, SetStreaming
from orders_tui.kafka.decoders import make_decoder
from orders_tui.kafka.engine import DlqEntrySeen, coalesce, replay_refusal
from orders_tui.kafka.engine_api import EngineApi, EngineView
from orders_tui.kafka.events import (
    EngineEnded,
    EngineStatus,
    Event,
    Notice,
    OrderSeen,
    RegistryStatus,
    RetryFinished,
    RetryScheduled,
)
from orders_tui.kafka.redrive import replay_targets
from orders_tui.kafka.workbench import Workbench
from orders_tui.ui.footer import Footer
from orders_tui.ui.panes.aggregates import AggregatesPane
from orders_tui.ui.panes.dlq import DlqPane
from orders_tui.ui.panes.orders import OrdersPane
from orders_tui.ui.panes.retries import RetriesPane
from orders_tui.ui.panes.table import RowTable
from orders_tui.ui.screens.dlq_entry import DlqEntryScreen
from orders_tui.ui.screens.help import HelpScreen
from orders_tui.ui.screens.workbench import WorkbenchScreen
from orders_tui.ui.text import literal, notify_literally

TICK_SECONDS = 0.1  # events reach the panes at most 10 times a second
AGGREGATES_EVERY = 3  # ticks between aggregate refreshes while events flow
BUSY_REPAINT_EVERY = 3  # ticks between table repaints while a backlog streams past
BUSY_EVENTS = 50  # events in one tick that make it busy (500 a second and more)
# What a read-only session (`orders-tui serve` without --allow-actions) may not do.
ACTIONS_THAT_ACT = frozenset({"produce", "stream", "toggle_pause", "replay_selected"})
ENGINE_GONE = "the engine has stopped (see the banner): quit with q and start orders-tui again"


class DashboardScreen(Screen):
    """The default screen. Textual repaints a whole screen whenever its focus moves (its
    `focused` reactive repaints): 20-30 ms of CPU a `tab` at 120x40. Here the two panes
    whose focus changed repaint themselves, as their styles change."""

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)


class OrdersApp(App[None]):
    TITLE = "orders-tui"
    # Absolute, so subclasses elsewhere (the benchmark's) find it too.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    BINDINGS = [
        Binding("p", "produce", "Produce"),
        Binding("P", "stream", "Stream"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("r", "replay_selected", "Replay"),
        Binding("w", "workbench", "DLQ workbench"),
        Binding("slash", "workbench_filter", "Filter DLQ", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        engine: EngineApi,
        clock: Callable[[], float] = time.time,
        start_engine: bool = True,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.read_only = read_only
        self.clock = clock
        self.start_engine = start_engine
        self.decode = make_decoder(engine.settings, engine.options.config.schema_id)
        self.workbench: Workbench | None = None
        # Kept as attributes: query_one() searches the active screen, which is a modal
        # while a DLQ entry or the help is open.
        self.orders = OrdersPane(id="orders", classes="pane")
        self.retries = RetriesPane(clock, id="retries", classes="pane")
        self.dlq = DlqPane(id="dlq", classes="pane")
        self.aggregates = AggregatesPane(id="aggregates", classes="pane")
        self.status = Static(id="status")
        self.banner = Static(id="banner")
        self._ticks = 0
        self._stream_shown = (False, False)  # (streaming, waiting) as the header says
        self.status_detail = ""
        self.connected: bool | None = None  # None until the engine first reports
        self.registry_reachable = True  # the engine's notices say why when it is not

    def get_default_screen(self) -> Screen:
        return DashboardScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield self.status
        yield self.banner
        with Container(id="panes"):
            yield self.orders
            yield self.retries
            yield self.dlq
            yield self.aggregates
        yield Footer()

    def on_mount(self) -> None:
        self.orders.focus()
        self.refresh_status()
        self.set_interval(TICK_SECONDS, self.pull_events)
        if self.start_engine:
            self.engine.start()

    # ---- engine events -> panes ----

    def pull_events(self) -> None:
        self.apply_events(self.engine.events.drain())

    def apply_events(self, events: list[Event | DlqEntrySeen]) -> None:
        orders, retries, dlq = self.orders, self.retries, self.dlq
        status_changed = False
        for event in coalesce(events):
            if isinstance(event, OrderSeen):
                orders.show(event)
            elif isinstance(event, DlqEntrySeen):
                dlq.show(event.entry)
            elif isinstance(event, RetryScheduled | RetryFinished):
                retries.show(event)
            elif isinstance(event, EngineStatus):
                if event.connected != self.connected or event.detail:
                    self.connected, self.status_detail = event.connected, event.detail
                    status_changed = True
            elif isinstance(event, RegistryStatus):
                self.registry_reachable = event.reachable
                status_changed = True
            elif isinstance(event, EngineEnded):
                status_changed = True
            elif isinstance(event, Notice):
                notify_literally(
                    self, event.text, severity="error" if event.error else "information"
                )
        retries.tick()
        self._ticks += 1
        # Under load (a tick bringing more than a person reads) the tables repaint every
        # third tick: a repaint of rows flowing past costs the same CPU as a readable one,
        # and that CPU is the engine's on a small machine. Keys stay immediate.
        if len(events) < BUSY_EVENTS or self._ticks % BUSY_REPAINT_EVERY == 0:
            for pane in (orders, retries, dlq):
                pane.flush()
        view = self.engine.view()
        if self._ticks % AGGREGATES_EVERY == 0:
            now = self.clock()
            self.aggregates.show(view.stats, view.lag, now)
            if view.fleet is not None:
                self.aggregates.show_fleet(view.fleet, now)
        if status_changed or (view.streaming, view.stream_waiting) != self._stream_shown:
            self.refresh_status(view)

    def refresh_status(self, view: EngineView | None = None) -> None:
        engine, settings = self.engine, self.engine.settings
        view = view or engine.view()
        self._stream_shown = (view.streaming, view.stream_waiting)
        line = Text()
        line.append("Kafka ", style="bold")
        line.append_text(literal(settings.bootstrap_servers))
        if view.ended is not None:
            line.append("  ● engine stopped", style="bold red")
        elif self.connected is None:
            line.append("  ● connecting…", style="bold yellow")
        elif self.connected:
            line.append("  ● connected", style="bold green")
        else:
            line.append("  ● disconnected", style="bold red")
        line.append("   fleet " if view.fleet is not None else "   consumer ")
        if view.ended is not None:
            line.append("STOPPED", style="bold red")
        elif view.paused:
            line.append("PAUSED", style="bold black on yellow")
        else:
            line.append("RUNNING", style="bold green")
        if view.streaming and view.stream_waiting:  # before the names, which may be cut
            line.append("   stream waiting for Kafka", style="bold yellow")
        elif view.streaming:
            line.append(f"   streaming {engine.options.rate:g}/s", style="bold magenta")
        if settings.registry is not None and not self.registry_reachable:
            line.append("   registry ● unreachable: records wait", style="bold red")
        elif settings.registry is not None:
            line.append("   registry ● ok", style="green")
        if self.read_only:
            line.append("   read-only", style="bold black on cyan")
        line.append("   group ")
        line.append_text(literal(engine.options.config.group, "bold"))
        line.append("   ")
        line.append_text(literal(f"{settings.topic} → {settings.dlq_topic}"))
        self.status.update(line)
        banner = self.banner
        if view.ended is not None:
            banner.display = True
            why = view.ended[:1].upper() + view.ended[1:]
            banner.update(Text("\n").join(literal(line) for line in why.splitlines()))
            return
        banner.display = self.connected is False and bool(self.status_detail)
        banner.update(literal(self.status_detail))

    # ---- keys ----

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.read_only and action in ACTIONS_THAT_ACT)

    def engine_gone(self) -> bool:
        """Whether the engine has ended; says so, for a key that needs it."""
        if self.engine.view().ended is None:
            return False
        self.notify(ENGINE_GONE, severity="error")
        return True

    def action_produce(self) -> None:
        if self.engine_gone():
            return
        count = self.engine.options.batch_size
        self.engine.send(Produce(count))
        self.notify(f"producing {count} orders", timeout=1.5)

    def action_stream(self) -> None:
        if self.engine_gone():
            return
        self.engine.send(SetStreaming(not self.engine.view().streaming))
        self.refresh_status()

    def action_toggle_pause(self) -> None:
        if self.engine_gone():
            return
        self.engine.send(SetPaused(not self.engine.view().paused))
        self.refresh_status()

    def action_replay_selected(self) -> None:
        dlq = self.dlq
        if not dlq.has_focus:
            self.notify("select an entry in the DLQ pane to replay it", severity="warning")
            return
        entry = dlq.selected
        if entry is not None:
            self.replay(entry)

    def replay(self, entry) -> None:
        if self.engine_gone():
            return
        engine = self.engine
        refusal = replay_refusal(entry, engine.options.max_replays, replay_targets(engine.settings))
        if refusal:
            notify_literally(self, refusal, severity="error")
            return
        engine.send(Replay(entry))
        self.notify(f"replaying {entry.partition}/{entry.offset}…", timeout=1.5)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_workbench(self, edit_filter: bool = False) -> None:
        """The whole DLQ topic: made on first use, kept (with its scan) while the
        dashboard runs."""
        if self.workbench is None:
            self.workbench = Workbench(self.engine.settings, self.decode)
        engine = self.engine
        self.push_screen(
            WorkbenchScreen(
                self.workbench,
                engine.options.max_replays,
                engine.options.config.group,
                edit_filter=edit_filter,
                read_only=self.read_only,
            )
        )

    def action_workbench_filter(self) -> None:
        self.action_workbench(edit_filter=True)

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        if event.table is self.dlq:
            entry = self.dlq.entries.get(event.key)
            if entry is not None:
                self.push_screen(DlqEntryScreen(entry, self.decode))

    async def action_quit(self) -> None:
        self.notify("stopping: committing what is done…", timeout=2)
        await asyncio.to_thread(self.engine.stop, 1.8)
        # An engine that ended unasked is a failure a script running us should see.
        self.exit(return_code=1 if self.engine.view().ended is not None else 0)

    def on_unmount(self) -> None:
        # Any other way out (ctrl+c, an error) still lets the engine commit.
        self.engine.stop()
        if self.workbench is not None:
            self.workbench.stop()
