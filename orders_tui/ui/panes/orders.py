"""The Orders pane: the latest orders and what became of them."""

from __future__ import annotations

from orders_tui.kafka.events import OrderSeen, OrderState
from orders_tui.ui.panes.table import RowTable

OUTCOME_STYLES = {
    OrderState.PROCESSED: "green",
    OrderState.RETRYING: "yellow",
    OrderState.DEAD_LETTERED: "bold red",
    OrderState.PRODUCED: "dim",
}
OUTCOME_LABELS = {OrderState.DEAD_LETTERED: "dead-lettered"}


class OrdersPane(RowTable):
    BORDER_TITLE = "Orders"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            [
                # Most telling first: a narrow terminal cuts columns from the right.
                ("at", "p/offset", 8),
                ("price", "price", 9),
                ("outcome", "outcome", 13),
                ("product", "product", 20),
                ("order", "orderId", None),
            ],
            **kwargs,
        )

    def show(self, event: OrderSeen) -> None:
        outcome = OUTCOME_LABELS.get(event.outcome, event.outcome)
        if event.outcome is OrderState.RETRYING:
            outcome = f"retrying {event.attempt}"
        price = "—" if event.price is None else f"{event.price:,.2f}"
        self.upsert(
            f"{event.partition}:{event.offset}",
            (
                f"{event.partition}/{event.offset}",
                (price, "right"),
                (outcome, OUTCOME_STYLES.get(event.outcome, "")),
                event.product,
                event.order_id,
            ),
        )
