"""One DLQ entry in full: every header decoded, the order (or a hex dump), coordinates."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from orders_tui.domain.codec import Decoder
from orders_tui.domain.codec import decode as default_decoder
from orders_tui.domain.failure import TIMESTAMP_HEADERS
from orders_tui.domain.order import Order
from orders_tui.kafka.dlq import DlqEntry, header_text
from orders_tui.ui.footer import Footer
from orders_tui.ui.panes.dlq import clock_time
from orders_tui.ui.text import literal


def wall_time(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def hex_dump(data: bytes, width: int = 16) -> Text:
    lines = []
    for start in range(0, len(data), width):
        chunk = data[start : start + width]
        hexed = " ".join(f"{b:02x}" for b in chunk).ljust(width * 3 - 1)
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {hexed}  {shown}")
    return Text("\n".join(lines) or "(empty value)", end="")


def entry_details(entry: DlqEntry, decode: Decoder = default_decoder) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    topic, partition, offset = entry.original
    grid.add_row("DLQ record", f"{entry.topic}[{entry.partition}]@{entry.offset}")
    grid.add_row("original", literal(f"{topic}[{partition}]@{offset}"))
    grid.add_row("dead-lettered", clock_time(entry.timestamp_ms))
    grid.add_row("key", literal(header_text(entry.key)))
    grid.add_row("", "")
    grid.add_row(Text("headers", style="bold underline"), "")
    for name, value in entry.decoded_headers():
        shown = literal(value)
        if name in TIMESTAMP_HEADERS and value.isdigit():
            shown.append(f"  ({wall_time(int(value))})", style="dim")
        grid.add_row(literal(name), shown)
    grid.add_row("", "")
    order = entry.decoded(decode)
    schema = entry.schema(decode)
    if schema is not None:
        where = f"  {schema['subject']} v{schema['version']}" if schema["subject"] else ""
        grid.add_row("schema", literal(f"id {schema['id']}{where}"))
    if isinstance(order, Order):
        grid.add_row(Text("order", style="bold underline"), "")
        grid.add_row("orderId", literal(order.orderId))
        grid.add_row("product", literal(order.product))
        grid.add_row("price", f"{order.price:,.2f}")
    else:
        grid.add_row(Text("value", style="bold underline"), literal(str(order)))
        grid.add_row("", hex_dump(entry.value or b""))
    return grid


class DlqEntryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,enter", "dismiss", "Close"),
        Binding("r", "replay", "Replay"),
    ]

    def __init__(self, entry: DlqEntry, decode: Decoder = default_decoder) -> None:
        super().__init__()
        self.entry = entry
        self.decode = decode

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="entry") as scroll:
            scroll.border_title = f"DLQ entry {self.entry.partition}/{self.entry.offset}"
            yield Static(entry_details(self.entry, self.decode), id="entry-details")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "replay" and getattr(self.app, "read_only", False))

    def action_replay(self) -> None:
        self.app.replay(self.entry)
