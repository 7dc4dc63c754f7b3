"""The key table."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("p", "produce a batch of orders (--batch-size)"),
    ("P", "start / stop a continuous stream at --rate orders/s"),
    ("space", "pause / resume consumption"),
    ("tab / shift+tab", "move between panes"),
    ("enter", "in the DLQ pane: open the entry"),
    ("r", "in the DLQ pane or an entry: replay it to its original topic"),
    (
        "w, /",
        "the DLQ workbench: the whole DLQ, filter (/), triage (t), select (space, a), "
        "redrive (R), export (x), go to a time (g), the source record (o)",
    ),
    ("?", "this help"),
    ("q", "quit (commits what is done)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical(id="help") as box:
            box.border_title = "Keys"
            yield Static(table)
