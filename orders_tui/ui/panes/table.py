"""A table that renders only the lines on screen (Textual's Line API), over a bounded,
keyed model of rows.

Rows are upserted as engine events arrive and reach the screen at most once a tick.
DataTable measures every new cell and costs 15-20 ms a frame, which starved the engine
thread and key handling under load; this widget's cost depends on the lines visible, not
on the rows held. Untrusted text never goes through markup: cells become Segments as
they are, with control characters already made visible.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orders_tui.kafka.events import ROWS_SHOWN
from orders_tui.ui.text import visible

TRIM_SLACK = 100
GAP = 2  # blank columns between cells

# A cell: plain text, or (text, Rich style name); right-aligned when the style says so.
Cell = str | tuple[str, str]


class RowTable(ScrollView, can_focus=True):
    """Columns are (key, label, width); a width of None takes what the others leave."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    COMPONENT_CLASSES = {"rowtable--header", "rowtable--cursor"}
    DEFAULT_CSS = """
    RowTable { overflow-x: hidden; padding: 0 0 0 1; }
    RowTable > .rowtable--header { text-style: bold; color: $text-accent; }
    RowTable > .rowtable--cursor { background: $block-cursor-blurred-background; }
    RowTable:focus > .rowtable--cursor { background: $block-cursor-background; }
    """

    class Selected(Message):
        def __init__(self, table: RowTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    def __init__(
        self,
        columns: Sequence[tuple[str, str, int | None]],
        max_rows: int = ROWS_SHOWN,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.columns = list(columns)
        self.max_rows = max_rows
        self.rows_model: OrderedDict[str, tuple[Cell, ...]] = OrderedDict()
        self._keys: list[str] = []
        self._dirty = False
        self.cursor = -1  # -1: following the newest row
        self._styles: dict[str, Style] = {}
        # Rendered rows by key: following the stream shifts rows up a line each tick,
        # and a row once rendered is reused until its cells or the width change.
        self._strips: dict[tuple[str, int, bool], tuple[tuple[Cell, ...], Strip]] = {}

    # ---- the model ----

    def upsert(self, key: str, cells: tuple[Cell, ...]) -> None:
        model = self.rows_model
        if key not in model and len(model) >= self.max_rows + TRIM_SLACK:
            while len(model) >= self.max_rows:
                model.popitem(last=False)
        model[key] = cells
        self._dirty = True

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def get_row_at(self, index: int) -> tuple[str, ...]:
        return tuple(_text(c) for c in self.rows_model.get(self._keys[index], ()))

    @property
    def cursor_key(self) -> str | None:
        if not self._keys:
            return None
        index = self.cursor if self.cursor >= 0 else len(self._keys) - 1
        return self._keys[min(index, len(self._keys) - 1)]

    def flush(self) -> None:
        """Bring the screen up to date with the model (once a tick)."""
        if not self._dirty:
            return
        self._dirty = False
        held = self.cursor_key if self.cursor >= 0 else None
        model = self.rows_model
        # Exactly max_rows once full: the virtual size then stays put, and a changed
        # virtual size costs a layout of the whole screen (most of a busy tick).
        while len(model) > self.max_rows:
            model.popitem(last=False)
        self._keys = list(model)
        if held is not None:
            # Keep the cursor on the row the user picked; if it was trimmed, the oldest.
            self.cursor = self._keys.index(held) if held in model else 0
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._keys) + 1)
        if self.cursor < 0:
            # After the new virtual size is laid out, or the end is the old one's.
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
        self.refresh()

    # ---- keys ----

    def action_cursor(self, step: int) -> None:
        if not self._keys:
            return
        current = self.cursor if self.cursor >= 0 else len(self._keys) - 1
        self._move_to(current + step)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 2))

    def action_jump(self, index: int) -> None:
        if self._keys:
            self._move_to(index if index >= 0 else len(self._keys) - 1)

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    def on_focus(self) -> None:
        self._strips.clear()  # the cursor's colour depends on focus

    def on_blur(self) -> None:
        self._strips.clear()

    def _move_to(self, index: int) -> None:
        last = len(self._keys) - 1
        index = max(0, min(index, last))
        # Moving onto the newest row resumes following; anywhere else holds the view.
        self.cursor = -1 if index == last else index
        body = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + body:
            self.scroll_to(y=index - body + 1, animate=False, immediate=True)
        self.refresh()

    # ---- rendering ----

    def _widths(self, total: int) -> list[int]:
        fixed = sum(w for _, _, w in self.columns if w is not None)
        gaps = GAP * (len(self.columns) - 1)
        rest = max(8, total - fixed - gaps)
        return [w if w is not None else rest for _, _, w in self.columns]

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = Style.parse(name) if name else Style()
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = self._widths(width)
        if y == 0:
            header = self.get_component_rich_style("rowtable--header")
            cells: Sequence[Cell] = [label for _, label, _ in self.columns]
            return self._strip(cells, widths, width, header)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._keys):
            return Strip.blank(width, self.rich_style)
        key = self._keys[index]
        cells = self.rows_model.get(key)
        if cells is None:  # trimmed since the last flush; a repaint came first (a key)
            return Strip.blank(width, self.rich_style)
        is_cursor = key == self.cursor_key
        cache_key = (key, width, is_cursor)
        cached = self._strips.get(cache_key)
        if cached is not None and cached[0] is cells:
            return cached[1]
        base = self.rich_style
        if is_cursor:
            base = base + self.get_component_rich_style("rowtable--cursor")
        strip = self._strip(cells, widths, width, base)
        if len(self._strips) > 4 * self.max_rows:
            self._strips.clear()
        self._strips[cache_key] = (cells, strip)
        return strip

    def _strip(self, cells: Sequence[Cell], widths: list[int], width: int, base: Style) -> Strip:
        segments = []
        for i, (cell, cell_width) in enumerate(zip(cells, widths, strict=False)):
            text, style_name = (cell, "") if isinstance(cell, str) else cell
            right = "right" in style_name
            style = base + self._style(style_name.replace("right", "").strip())
            text = visible(text)
            if cell_len(text) > cell_width:
                text = set_cell_size(text, max(0, cell_width - 1)) + "…"
            pad = " " * (cell_width - cell_len(text))
            segments.append(Segment(pad + text if right else text + pad, style))
            if i < len(widths) - 1:
                segments.append(Segment(" " * GAP, base))
        return Strip(segments).adjust_cell_length(width, base)


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]
