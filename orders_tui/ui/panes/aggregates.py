"""The Aggregates pane: prices of processed orders, counters, rate, lag."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
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

    def compose(self) -> ComposeResult:
        yield self.lag
        yield self.figures
        yield Static("orders/s, last 60 s", id="spark-label")
        yield self.spark

    def _grid(self, rows: list[tuple[str, str, str, str]], wide: bool) -> Table:
        """Two label/value pairs a row; one pair a row when the pane is narrow."""
        table = Table.grid(padding=(0, 2))
        for _ in range(2 if wide else 1):
            table.add_column(style="bold", no_wrap=True)
            table.add_column(justify="right", no_wrap=True)
        if wide:
            for row in rows:
                table.add_row(*row)
        else:
            for left in (r[:2] for r in rows if r[0]):
                table.add_row(*left)
            for right in (r[2:] for r in rows):
                table.add_row(right[0].strip(), right[1])
        return table

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
        self.figures.set(self._grid(rows, wide), layout=wide != self._wide)
        self._wide = wide
        self.spark.data = stats.rate.history(now, SPARK_SECONDS)
        lag_text = "  ".join(f"p{p}: {n:,}" for p, n in sorted(lag.items())) or "—"
        total = sum(lag.values())
        self.lag.set(Text.assemble(("lag ", "bold"), f"{total:,}  ({lag_text})"))
