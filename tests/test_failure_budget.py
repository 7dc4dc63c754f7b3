"""Giving up on a recovery that keeps failing (orders_tui/domain/failure_budget.py): the
pipeline replaces a fenced consumer or a failed producer at most 10 times each in 5
minutes before it ends the run saying why."""

from __future__ import annotations

from orders_tui.domain.failure_budget import FailureBudget


def test_one_more_than_allowed_within_the_window_gives_up():
    budget = FailureBudget(allowed=3, window=300)
    assert [budget.spend(t) for t in (0, 10, 20, 30)] == [True, True, True, False]


def test_failures_older_than_the_window_no_longer_count():
    budget = FailureBudget(allowed=3, window=300)
    assert all(budget.spend(t) for t in (0, 10, 20))
    assert budget.spend(301) and budget.spend(312)  # the first two have left the window
    assert not budget.spend(313)  # 20, 301, 312, 313: four within 300 s
