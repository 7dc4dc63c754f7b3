"""The Orders pane: the latest orders and what became of them."""

from __future__ import annotations

from rich.text import Text

from orders_tui.kafka.events import OrderSeen
from orders_tui.ui.panes.table import BoundedTable
from orders_tui.ui.text import literal

OUTCOME_STYLES = {
    "processed": "green",
    "retrying": "yellow",
    "dead_lettered": "bold red",
}
OUTCOME_LABELS = {"dead_lettered": "dead-lettered"}


class OrdersPane(BoundedTable):
    BORDER_TITLE = "Orders"

    def __init__(self, max_rows: int = 500, **kwargs: object) -> None:
        super().__init__(
            [
                ("at", "part/offset", 12),
                ("order", "orderId", 36),
                ("product", "product", None),
                ("price", "price", 9),
                ("outcome", "outcome", 13),
            ],
            max_rows=max_rows,
            **kwargs,
        )

    def show(self, event: OrderSeen) -> None:
        outcome = OUTCOME_LABELS.get(event.outcome, event.outcome)
        if event.outcome == "retrying":
            outcome = f"retrying {event.attempt}"
        price = "—" if event.price is None else f"{event.price:,.2f}"
        self.upsert(
            f"{event.partition}:{event.offset}",
            (
                f"{event.partition}/{event.offset}",
                literal(event.order_id),
                literal(event.product),
                Text(price, justify="right"),
                Text(outcome, style=OUTCOME_STYLES.get(event.outcome, "")),
            ),
        )
