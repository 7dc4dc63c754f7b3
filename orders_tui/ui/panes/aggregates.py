"""The Aggregates pane: prices of processed orders, counters, rate, lag; for a watched
fleet, the live members' sums and a row per member."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from orders_tui.domain.member_status import RUNNING, STALE, STOPPED, Fleet, member_state
from orders_tui.domain.stats import PipelineStats
from orders_tui.ui.text import literal

SPARK_SECONDS = 60
LAG_NAMED = 3  # partitions named on the lag line (the worst)
BAR_CELLS = 12
EIGHTHS = " ▏▎▍▌▋▊▉█"
NARROW_BELOW = 44  # columns: under this the figures stack in one label/value column


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


class Figures(Widget):
    """A renderable swapped in place: unlike Static.update, no layout pass each time."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._renderable: RenderableType = ""

    def set(self, renderable: RenderableType, layout: bool = False) -> None:
        self._renderable = renderable
        self.refresh(layout=layout)

    def render(self) -> RenderableType:
        return self._renderable


class AggregatesPane(VerticalScroll, can_focus=True):
    BORDER_TITLE = "Aggregates"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._wide: bool | None = None
        self.lag = Figures(id="lag")
        self.figures = Figures(id="figures")
        self.members = Figures(id="members")
        self.spark = Sparkline([0] * SPARK_SECONDS, id="rate-spark")
        self.spark_label = Static("orders/s, last 60 s", id="spark-label")
        self.lag_bars = Figures(id="lag-bars")
        self.schemas = Figures(id="schemas")
        self._partitions_shown = -1
        self._members_shown = -1
        self._shown: tuple = ()

    def compose(self) -> ComposeResult:
        yield self.lag
        yield self.figures
        yield self.members
        yield self.spark_label
        yield self.spark
        yield self.lag_bars
        yield self.schemas

    @staticmethod
    def _grid(rows: list[tuple[str, str, str, str]], wide: bool) -> Text:
        """Two label/value pairs a line; one pair a line when the pane is narrow. Plain
        padded text: a Rich Table here was the costliest thing on a busy screen."""
        if wide:
            lines = [(row[:2], row[2:]) for row in rows]
        else:
            lines = [(row[:2],) for row in rows if row[0]]
            lines += [((row[2].strip(), row[3]),) for row in rows]
        pairs = max(len(line) for line in lines)
        label_widths = [max(len(line[i][0]) for line in lines) for i in range(pairs)]
        value_widths = [max(len(line[i][1]) for line in lines) for i in range(pairs)]
        text = Text(no_wrap=True, overflow="ellipsis")
        for number, line in enumerate(lines):
            if number:
                text.append("\n")
            for i, (label, value) in enumerate(line):
                if i:
                    text.append("  ")
                text.append(label.ljust(label_widths[i]), style="bold")
                text.append("  " + value.rjust(value_widths[i]))
        return text

    @staticmethod
    def _compact(summary: dict, by_type: dict[str, str], stats: PipelineStats, now: float) -> Text:
        """Every figure in six lines of at most ~26 characters, for a narrow pane (at
        80x24): nothing hides below the pane's edge."""
        lines = [
            [
                ("count", f"{summary['processed']:,}"),
                ("of", f"{summary['consumed']:,}"),
                ("", f"{stats.rate.rate(now):,.1f}/s"),
            ],
            [("Σ", _money(summary["total_price"])), ("avg", _money(summary["average_price"]))],
            [("min", _money(summary["min_price"])), ("max", _money(summary["max_price"]))],
            [
                ("retries", f"{summary['retry_attempts']:,}"),
                ("recovered", f"{summary['recovered']:,}"),
            ],
            [
                ("dead", f"{summary['dead_lettered']:,}"),
                ("perm", by_type.get("permanent", "0")),
                ("exh", by_type.get("retries_exhausted", "0")),
            ],
            [("undecodable", by_type.get("deserialization", "0"))],
        ]
        text = Text(no_wrap=True, overflow="ellipsis")
        for number, line in enumerate(lines):
            if number:
                text.append("\n")
            for i, (label, value) in enumerate(line):
                text.append(" · " if i else "")
                if label:
                    text.append(label + " ", style="bold")
                text.append(value)
        return text

    def show(self, stats: PipelineStats, lag: dict[int, int], now: float) -> None:
        summary = stats.summary(now)
        # Redrawn when a figure changed, or each second for the rate and the sparkline:
        # an idle screen costs next to nothing.
        shown = (
            summary["consumed"],
            summary["processed"],
            summary["dead_lettered"],
            summary["retry_attempts"],
            summary["total_price"],
            tuple(lag.items()),
            int(now),
            self.size.width,
            tuple(stats.schemas_seen.items()),
        )
        if shown == self._shown:
            return
        self._shown = shown
        by_type = {k: f"{v:,}" for k, v in summary["dead_lettered_by_type"].items()}
        rows = [
            ("count", f"{summary['processed']:,}", "consumed", f"{summary['consumed']:,}"),
            ("total", _money(summary["total_price"]), "retries", f"{summary['retry_attempts']:,}"),
            ("average", _money(summary["average_price"]), "recovered", f"{summary['recovered']:,}"),
            ("min", _money(summary["min_price"]), "dead-lettered", f"{summary['dead_lettered']:,}"),
            ("max", _money(summary["max_price"]), "  permanent", by_type.get("permanent", "0")),
            (
                "orders/s",
                f"{stats.rate.rate(now):,.1f}",
                "  exhausted",
                by_type.get("retries_exhausted", "0"),
            ),
            ("", "", "  undecodable", by_type.get("deserialization", "0")),
        ]
        wide = self.size.width >= NARROW_BELOW
        figures = self._grid(rows, wide) if wide else self._compact(summary, by_type, stats, now)
        self.figures.set(figures, layout=wide != self._wide)
        if wide != self._wide:
            self.spark_label.display = wide  # kept: show() can come before mounting
            self.set_class(not wide, "narrow")
        self._wide = wide
        self.spark.data = stats.rate.history(now, SPARK_SECONDS)
        self.lag.set(lag_line(lag))
        self.lag_bars.set(lag_bars(lag), layout=len(lag) != self._partitions_shown)
        self._partitions_shown = len(lag)
        if stats.schemas_seen:  # only with Confluent framing: a registry, --format confluent
            self.schemas.display = True
            self.schemas.set(schema_lines(stats.schemas_seen), layout=True)

    def show_fleet(self, fleet: Fleet, now: float) -> None:
        rows = fleet.rows(now)
        self.members.display = True
        self.members.set(member_lines(fleet, now), layout=len(rows) != self._members_shown)
        self._members_shown = len(rows)


def by_lag(lag: dict[int, int]) -> list[tuple[int, int]]:
    """Partitions, the furthest behind first."""
    return sorted(lag.items(), key=lambda item: (-item[1], item[0]))


def lag_line(lag: dict[int, int]) -> Text:
    """The total, then the worst partitions: one line at any partition count."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("lag ", style="bold")
    if not lag:
        return text.append("—")
    text.append(f"{sum(lag.values()):,}")
    worst = [(p, n) for p, n in by_lag(lag) if n][:LAG_NAMED]
    if worst:
        text.append("  worst " + ", ".join(f"p{p} {n:,}" for p, n in worst))
    count = len(lag)
    text.append(f"  ({count} partition{'' if count == 1 else 's'})", style="dim")
    return text


def lag_bars(lag: dict[int, int]) -> Text:
    """A bar per partition, the worst first, scaled to the worst (below the figures, in
    the pane's scroll)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not lag:
        return text
    text.append("lag by partition", style="bold")
    worst = max(lag.values()) or 1
    width = len(f"p{max(lag)}")
    for partition, behind in by_lag(lag):
        eighths = round(behind / worst * BAR_CELLS * 8)
        bar = "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")
        text.append(f"\n{f'p{partition}':<{width}} ")
        text.append(bar.ljust(BAR_CELLS), style="yellow" if behind else "")
        text.append(f" {behind:,}")
    return text


def schema_lines(seen: dict[str, int]) -> Text:
    """The Confluent schema ids the source's records were written with, and how many:
    which producers' versions are out there."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not seen:
        return text
    text.append("schemas seen", style="bold")
    for label, count in seen.items():
        text.append("\n")
        text.append_text(literal(label))
        text.append(f"  {count:,}")
    return text


def member_lines(fleet: Fleet, now: float) -> Text:
    """A line per member: state, name, partitions, rate, lag, paused."""
    rows = fleet.rows(now)
    live = sum(member_state(m, now) == RUNNING for m in rows)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("members ", style="bold")
    text.append(f"{live} live of {len(rows)}" if rows else "none reporting yet")
    for m in rows:
        state = member_state(m, now)
        style = "" if state == RUNNING else "dim"
        text.append("\n")
        text.append(
            {RUNNING: "● ", STALE: "◌ ", STOPPED: "○ "}[state],
            style="green" if state == RUNNING else "red",
        )
        text.append_text(literal(f"{m.member}@{m.host}", style))
        parts = ",".join(str(p) for p in m.partitions) or "-"
        text.append(f"  p{parts}  {m.orders_per_second:,.0f}/s  lag {m.lag:,}", style=style)
        if m.retries_pending:
            text.append(f"  retries {m.retries_pending:,}", style=style)
        if state == STALE:
            text.append(f"  stale {m.age(now):.0f} s", style="bold red")
        elif state == STOPPED:
            text.append("  stopped", style="dim")
        elif m.paused:
            text.append("  PAUSED", style="bold black on yellow")
    return text
