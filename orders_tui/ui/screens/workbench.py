"""The DLQ workbench: the whole DLQ topic, filtered (`/`), browsed a window at a time,
triaged (`t`), selected (`space`, `a`), redriven (`R`), exported (`x`), and the record
behind an entry opened (`o`). The Kafka work runs on the workbench's threads
(kafka/workbench); this screen sends requests and shows `view`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static

from orders_tui.domain.dlq_filter import FilterError, parse_time
from orders_tui.domain.failure import short_type
from orders_tui.domain.triage import NUMBER_MARK, Triage
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.workbench import Workbench, WorkbenchView
from orders_tui.ui.footer import Footer
from orders_tui.ui.panes.dlq import TYPE_STYLES
from orders_tui.ui.screens.dialogs import Confirm, Prompt
from orders_tui.ui.screens.dlq_entry import DlqEntryScreen, entry_details
from orders_tui.ui.text import literal, notify_literally

TICK = 0.1
Key = tuple[int, int]  # (partition, offset) of a DLQ entry


def _key(entry: DlqEntry) -> Key:
    return entry.partition, entry.offset


def reason_pattern(normalised: str) -> str:
    """A regex for the reasons a triage group folded together (# stood for numbers)."""
    parts = [re.escape(part) for part in normalised.split(NUMBER_MARK)]
    return "^" + r"-?\d[\d.,]*".join(parts) + "$"


class SourceScreen(ModalScreen[None]):
    """The original record behind a DLQ entry, as it is on its topic now."""

    BINDINGS = [Binding("escape,q,enter,o", "dismiss", "Close")]

    def __init__(self, record: DlqEntry | None, why: str) -> None:
        super().__init__()
        self.record, self.why = record, why

    def compose(self) -> ComposeResult:
        if self.record is None:
            body = literal(f"no source record: {self.why}")
        else:
            body = entry_details(self.record)
        shown = Static(body, id="entry")
        if self.record is not None:
            shown.border_title = (
                f"source {self.record.topic}[{self.record.partition}]@{self.record.offset}"
            )
        yield shown
        yield Footer()


class Rows(Static, can_focus=True):
    """The window of entries; focusable, so the screen's keys reach it (while the filter
    line has focus, keys type into it)."""


class WorkbenchScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back / cancel"),
        Binding("slash", "edit_filter", "Filter"),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("space", "select", "Select"),
        Binding("a", "select_all", "All"),
        Binding("R", "redrive", "Redrive"),
        Binding("x", "export", "Export"),
        Binding("t", "toggle_triage", "Triage"),
        Binding("g", "jump", "Go to time"),
        Binding("o", "source", "Source"),
        Binding("h", "redrives", "Redrives"),
        Binding("enter", "open", "Open"),
        *(Binding(str(n), f"choose_group({n})", show=False) for n in range(1, 10)),
    ]

    def __init__(
        self,
        workbench: Workbench,
        max_replays: int,
        group: str,
        where: str = "",
        edit_filter: bool = False,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.read_only = read_only  # no redrive, no export (a served, read-only session)
        self.workbench = workbench
        self.max_replays = max_replays
        self.group = group
        self.initial_where = where
        self.start_editing = edit_filter
        self.position = 0  # the cursor, in 0 .. matched - 1
        self.following = True  # at the newest end: stays there as entries come
        self.selected: set[Key] = set()
        self.all_selected = False
        self.show_triage = False
        self._shown_version = -1
        self._requested: tuple[tuple[int, int], int, int] | None = None
        self._source_asked: str | None = None
        self._jobs_seen = 0
        self._jumps_seen = 0
        self._awaiting_plan = False
        self._awaiting_redrives = False

    def compose(self) -> ComposeResult:
        yield Input(
            self.initial_where,
            placeholder="filter, e.g. type=permanent price>1200 "
            "(enter applies; syntax in the README)",
            id="filter",
        )
        yield Static(id="wb-status")
        yield Rows(id="wb-rows")
        yield Static(id="wb-triage")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#wb-triage").display = False
        self.workbench.start(self.initial_where)
        if self.start_editing:
            self.query_one("#filter", Input).focus()
        else:
            self.query_one("#wb-rows").focus()
        self.set_interval(TICK, self.refresh_view)

    # ---- the view ----

    @property
    def page(self) -> int:
        return max(5, self.query_one("#wb-rows").size.height - 1)

    def refresh_view(self, force: bool = False) -> None:
        view = self.workbench.view
        if view.jump[0] != self._jumps_seen:
            self._jumps_seen, self.position = view.jump[0], view.jump[1]
        if view.matched and self.following:
            self.position = view.matched - 1
        self.position = max(0, min(self.position, view.matched - 1))
        self._ask_for_window(view)
        if view.jobs_done != self._jobs_seen:
            self._jobs_seen = view.jobs_done
            if self._awaiting_redrives:
                self._awaiting_redrives = False
                self.app.push_screen(Confirm(view.job_done, question=False))
            elif not self._awaiting_plan:
                notify_literally(self, view.job_done, timeout=8)
        if view.source is not None and view.source[0] == self._source_asked:
            self._source_asked = None
            self.app.push_screen(SourceScreen(view.source[1], view.source[2]))
        if view.version == self._shown_version and not force:
            return
        self._shown_version = view.version
        self.query_one("#wb-status", Static).update(self._status(view))
        self.query_one("#wb-rows", Rows).update(
            rows_table(view, self._top(view), self.page, self.position, self._is_chosen)
        )
        if self.show_triage and view.triage is not None:
            self.query_one("#wb-triage", Static).update(triage_text(view.triage))

    def _top(self, view: WorkbenchView) -> int:
        """The first row on screen: the cursor stays on it unless near the end."""
        return max(0, min(self.position - self.page // 2, view.matched - self.page))

    def _ask_for_window(self, view: WorkbenchView) -> None:
        top = self._top(view)
        have = range(view.window_start, view.window_start + len(view.window))
        needed = min(self.page, max(0, view.matched - top))
        if needed and (
            top not in have
            or top + needed - 1 not in have
            or (self.following and len(view.window) < min(view.matched, self.page))
        ):
            # A window three pages tall around what is shown: paging stays local.
            want = (max(0, top - self.page), self.page * 3)
            # Asked once while it loads; again once anything moved the window meanwhile
            # (a jump to a time or a place), or the same request would be lost.
            asked = (want, view.matched, view.window_start)
            if asked != self._requested:
                self._requested = asked
                self.workbench.show(*want)

    def _status(self, view: WorkbenchView) -> Text:
        line = Text()
        if view.scanning:
            done = 100 * view.read // max(view.total, 1)
            line.append(
                f"scanning {view.read:,} of ~{view.total:,} ({done}%) · esc cancels · ",
                style="yellow",
            )
        line.append(f"{view.matched:,} entries", style="bold")
        if view.where:
            line.append(" match ")
            line.append_text(literal(view.where, "cyan"))
        if view.matched:
            line.append(
                f" · row {self.position + 1:,} of {view.matched:,} "
                f"({100 * (self.position + 1) // view.matched}%)"
            )
            line.append(" · following the newest" if self.following else "", style="green")
        chosen = "all matching" if self.all_selected else f"{len(self.selected):,}"
        if self.all_selected or self.selected:
            line.append(f" · selected {chosen}", style="bold magenta")
        if view.job:
            line.append(f"\n{view.job}", style="yellow")
        if view.error:
            line.append("\n")
            line.append_text(literal(view.error, "bold red"))
        return line

    def _is_chosen(self, entry: DlqEntry) -> bool:
        return self.all_selected or _key(entry) in self.selected

    def _current(self) -> DlqEntry | None:
        view = self.workbench.view
        index = self.position - view.window_start
        return view.window[index] if 0 <= index < len(view.window) else None

    # ---- keys ----

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.selected.clear()
        self.all_selected = False
        self.position, self.following = 0, True
        self._requested = None
        self.workbench.filter(event.value)
        self.query_one("#wb-rows").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.read_only and action in ("redrive", "export"))

    def action_edit_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        view = self.workbench.view
        if view.scanning or view.job:
            self.workbench.cancel()
        elif self.focused is self.query_one("#filter"):
            self.query_one("#wb-rows").focus()
        else:
            self.app.pop_screen()

    def action_move(self, step: int) -> None:
        matched = self.workbench.view.matched
        self.position = max(0, min(matched - 1, self.position + step))
        self.following = self.position >= matched - 1 and step > 0
        self.refresh_view(force=True)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.page)

    def action_edge(self, end: int) -> None:
        matched = self.workbench.view.matched
        self.position = matched - 1 if end else 0
        self.following = bool(end)
        self.refresh_view(force=True)

    def action_select(self) -> None:
        entry = self._current()
        if entry is None:
            return
        self.all_selected = False
        self.selected ^= {_key(entry)}
        self.action_move(1)

    def action_select_all(self) -> None:
        self.all_selected = not self.all_selected
        self.selected.clear()
        self.refresh_view(force=True)

    def _chosen(self) -> set[Key] | None:
        """The selection, or None for everything the filter picks."""
        return None if self.all_selected or not self.selected else set(self.selected)

    def action_redrive(self) -> None:
        """A dry run first; its plan is shown to confirm before anything is sent."""
        chosen = self._chosen()
        what = "every entry the filter picks" if chosen is None else f"{len(chosen)} entries"
        asked_at = self.workbench.view.jobs_done
        self._awaiting_plan = True
        self.workbench.redrive(chosen, dry_run=True, max_replays=self.max_replays)

        def confirm() -> None:
            view = self.workbench.view
            if view.jobs_done == asked_at:  # the dry run is still counting
                self.set_timer(0.1, confirm)
                return
            self._awaiting_plan = False
            self.app.push_screen(
                Confirm(f"Redrive {what}?\n\n{view.job_done}\n\nenter: redrive · esc: cancel"),
                lambda go: (
                    go
                    and self.workbench.redrive(chosen, dry_run=False, max_replays=self.max_replays)
                ),
            )

        self.set_timer(0.1, confirm)

    def action_export(self) -> None:
        chosen = self._chosen()
        default = time.strftime("dlq-export-%Y%m%d-%H%M%S.jsonl")

        def export(path: str | None) -> None:
            if path:
                self.workbench.export(path, chosen)

        self.app.push_screen(Prompt("Export to (JSON Lines, as `dlq --json`):", default), export)

    def action_toggle_triage(self) -> None:
        self.show_triage = not self.show_triage
        self.query_one("#wb-triage").display = self.show_triage
        self.refresh_view(force=True)

    def action_choose_group(self, n: int) -> None:
        triage = self.workbench.view.triage
        if not self.show_triage or triage is None:
            return
        ranked = sorted(triage.by_reason.items(), key=lambda item: -item[1].count)
        if n > len(ranked):
            return
        (error_type, reason), _ = ranked[n - 1]
        where = f"type={_quoted(error_type)} reason~{_quoted(reason_pattern(reason))}"
        self.query_one("#filter", Input).value = where
        self.on_input_submitted(Input.Submitted(self.query_one("#filter", Input), where))

    def action_jump(self) -> None:
        def jump(where: str | None) -> None:
            if not where:
                return
            place = re.fullmatch(r"\s*(\d+)\s*@\s*(\d+)\s*", where)
            self.following = False
            if place:
                partition, offset = map(int, place.groups())
                self.workbench.jump_to_offset(partition, offset, self.page * 3)
                return
            try:
                ms = parse_time(where.strip())
            except FilterError as exc:
                notify_literally(self, f"{exc}, or PARTITION@OFFSET", severity="error")
                return
            self.workbench.jump_to_time(ms, self.page * 3)

        self.app.push_screen(
            Prompt("Go to a time (10:42, 2026-11-27T10:42, -2h) or a DLQ place (2@1234):"),
            jump,
        )

    def action_redrives(self) -> None:
        self._awaiting_redrives = True
        self.workbench.redrives(self.group)

    def action_source(self) -> None:
        entry = self._current()
        if entry is not None:
            self._source_asked = f"{entry.partition}:{entry.offset}"
            self.workbench.open_source(entry)

    def action_open(self) -> None:
        entry = self._current()
        if entry is not None and self.focused is not self.query_one("#filter"):
            self.app.push_screen(DlqEntryScreen(entry, entry.decoder))


def _clock(ms: int | None) -> str:
    return "--:--" if ms is None else time.strftime("%m-%d %H:%M", time.localtime(ms / 1000))


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rows_table(
    view: WorkbenchView, top: int, page: int, position: int, chosen: Callable[[DlqEntry], bool]
) -> Table:
    """The rows from `top` that fit a `page`, the cursor's at `position`, with a
    scrollbar over everything the filter picks."""
    table = Table(expand=True, box=None, padding=(0, 1), show_edge=False)
    for name, width in (
        ("", 1),
        ("time", 19),
        ("type", 17),
        ("original", 18),
        ("price", 9),
        ("reason", None),
        ("", 1),
    ):
        table.add_column(
            name,
            width=width,
            min_width=width,
            ratio=None if width else 1,
            no_wrap=True,
            overflow="ellipsis",
        )
    shown = min(view.matched, top + page) - top
    # A scrollbar over all the filter picks, not over the rows fetched: its thumb is
    # where the screen is in the whole DLQ, as tall as the screen's share of it.
    thumb_from = top * shown // max(view.matched, 1)
    thumb_to = thumb_from + max(1, shown * shown // max(view.matched, 1))
    by_row = {view.window_start + i: e for i, e in enumerate(view.window)}
    for line, row in enumerate(range(top, top + shown)):
        entry = by_row.get(row)
        style = "reverse" if row == position else ""
        bar = Text("█" if thumb_from <= line < thumb_to else "│", style="dim")
        if entry is None:
            table.add_row("", "…", "", "", "", "", bar, style=style)
            continue
        topic, partition, offset = entry.original
        mark = "✓" if chosen(entry) else ""
        order = entry.order
        table.add_row(
            mark,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.timestamp_ms / 1000)),
            literal(short_type(entry.error_type) or "?", TYPE_STYLES.get(entry.error_type, "")),
            literal(f"{topic}[{partition}]@{offset}"),
            f"{order.price:,.2f}" if order is not None else "",
            literal(entry.reason),
            bar,
            style=style,
        )
    return table


def triage_text(triage: Triage) -> Text:
    """The triage panel: the top reasons (1-9 filter to one), by type, by original
    partition, and a sparkline over time."""
    text = Text(
        f"triage of {triage.total.count:,} entries: count, first to last seen, "
        "reason (press 1-9 to filter to it)\n",
        style="bold",
    )
    ranked = sorted(triage.by_reason.items(), key=lambda item: -item[1].count)[:9]
    for n, ((error_type, reason), group) in enumerate(ranked, start=1):
        text.append(
            f" {n}  {group.count:>9,}  {_clock(group.first_ms)} to {_clock(group.last_ms)}  "
        )
        text.append_text(literal(f"[{error_type}] {reason}"))
        text.append("\n")
    by_type = sorted(triage.by_type.items(), key=lambda item: -item[1].count)
    text.append(" by type: ")
    text.append_text(literal(" · ".join(f"{t} {g.count:,}" for t, g in by_type)))
    text.append("\n by original partition: ")
    text.append_text(
        literal(
            " · ".join(f"{name} {count:,}" for name, count in triage.by_partition.most_common(8))
        )
    )
    text.append("\n")
    counts, _, _ = triage.over_time(48)
    top = max(counts) or 1
    text.append(" over time " + "".join(" ▁▂▃▄▅▆▇█"[round(c / top * 8)] for c in counts))
    return text
