"""The engine's hand-off to a front end: bounded, and only the rows a pane can show."""

from __future__ import annotations

from orders_tui.kafka.events import ROWS_PER_SECOND, ROWS_SHOWN, RowBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_at_a_human_pace_every_order_gets_its_row():
    clock = FakeClock()
    budget = RowBudget(clock=clock)
    for _ in range(100):  # `p` batches of 15, a second apart
        clock.now += 1.0
        assert budget.take(15) == 15


def test_a_backlog_gets_a_bounded_rate_of_rows():
    clock = FakeClock()
    budget = RowBudget(clock=clock)
    granted = 0
    for _ in range(100):  # one second of 1000-order polls, 10 ms apart
        clock.now += 0.01
        granted += budget.take(1000)
    # A full pane to start with, then the sustained rate.
    assert granted <= ROWS_SHOWN + ROWS_PER_SECOND
    assert granted >= ROWS_PER_SECOND * 0.9
    # Every poll still shows its newest few, so the pane keeps moving.
    clock.now += 0.01
    assert 0 < budget.take(1000) < 1000
