"""The Aggregates pane: prices of processed orders, counters, rate, lag."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from orders_tui.domain.stats import PipelineStats

SPARK_SECONDS = 60
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
        self.spark = Sparkline([0] * SPARK_SECONDS, id="rate-spark")
        self.spark_label = Static("orders/s, last 60 s", id="spark-label")

    def compose(self) -> ComposeResult:
        yield self.lag
        yield self.figures
        yield self.spark_label
        yield self.spark

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
    def _compact(summary: dict, by_type: dict[str, str], stats: PipelineStats,
                 now: float) -> Text:  # fmt: skip
        """Every figure in six lines of at most ~26 characters, for a narrow pane (at
        80x24): nothing hides below the pane's edge."""
        lines = [
            [("count", f"{summary['processed']:,}"), ("of", f"{summary['consumed']:,}"),
             ("", f"{stats.rate.rate(now):,.1f}/s")],
            [("Σ", _money(summary["total_price"])), ("avg", _money(summary["average_price"]))],
            [("min", _money(summary["min_price"])), ("max", _money(summary["max_price"]))],
            [("retries", f"{summary['retry_attempts']:,}"),
             ("recovered", f"{summary['recovered']:,}")],
            [("dead", f"{summary['dead_lettered']:,}"), ("perm", by_type.get("permanent", "0")),
             ("exh", by_type.get("retries_exhausted", "0"))],
            [("undecodable", by_type.get("deserialization", "0"))],
        ]  # fmt: skip
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
        by_type = {k: f"{v:,}" for k, v in summary["dead_lettered_by_type"].items()}
        rows = [
            ("count", f"{summary['processed']:,}", "consumed", f"{summary['consumed']:,}"),
            ("total", _money(summary["total_price"]), "retries", f"{summary['retry_attempts']:,}"),
            ("average", _money(summary["average_price"]), "recovered", f"{summary['recovered']:,}"),
            ("min", _money(summary["min_price"]), "dead-lettered", f"{summary['dead_lettered']:,}"),
            ("max", _money(summary["max_price"]), "  permanent", by_type.get("permanent", "0")),
            ("orders/s", f"{stats.rate.rate(now):,.1f}", "  exhausted",
             by_type.get("retries_exhausted", "0")),
            ("", "", "  undecodable", by_type.get("deserialization", "0")),
        ]  # fmt: skip
        wide = self.size.width >= NARROW_BELOW
        figures = self._grid(rows, wide) if wide else self._compact(summary, by_type, stats, now)
        self.figures.set(figures, layout=wide != self._wide)
        if wide != self._wide:
            self.spark_label.display = wide  # kept: show() can come before mounting
            self.set_class(not wide, "narrow")
        self._wide = wide
        self.spark.data = stats.rate.history(now, SPARK_SECONDS)
        lag_text = "  ".join(f"p{p}: {n:,}" for p, n in sorted(lag.items())) or "—"
        total = sum(lag.values())
        self.lag.set(Text.assemble(("lag ", "bold"), f"{total:,}  ({lag_text})",
                                   no_wrap=not wide, overflow="ellipsis"))  # fmt: skip
