"""Sending at a rate in ticks (orders_tui/domain/pacing.py): the average is the rate, a
batch is a tick's worth (at least 32), and a total is sent whole. Times are simulated:
the schedule is arithmetic, so expected counts follow from the rate alone."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders_tui.domain.pacing import MIN_BATCH, Pace


def _run(pace: Pace, until: float, step: float) -> list[tuple[float, int]]:
    """A sender that wakes every `step` s (or when the pace says) and sends what is owed."""
    now, sends = pace.start, []
    while now <= until and not pace.done:
        owed = pace.owed(now)
        if owed:
            pace.sent_now(owed)
            sends.append((now, owed))
        now += max(step, min(pace.wait(now), 1.0)) if not owed else step
    return sends


@given(rate=st.floats(1, 200_000), seconds=st.floats(1, 20))
def test_the_average_holds_the_rate_within_one_batch(rate, seconds):
    pace = Pace(rate, 100.0)
    sends = _run(pace, 100.0 + seconds, 0.001)
    sent = sum(n for _, n in sends)
    scheduled = math.floor(seconds * rate) + 1  # the schedule owes one at the start
    assert scheduled - pace.batch - rate * 0.001 <= sent <= scheduled


@pytest.mark.parametrize("rate", [100, 3_000, 50_000])
def test_each_send_is_a_ticks_worth_not_one_at_a_time(rate):
    sends = _run(Pace(rate, 0.0), 3.0, 0.0005)
    expected = max(math.ceil(rate * 0.01), min(MIN_BATCH, math.ceil(rate * 0.1)))
    # a batch, plus what comes due while the sender oversleeps: its step, and the wait's
    # rounding up to a whole millisecond
    late = math.ceil(rate * (0.0005 + 0.001))
    assert {n for _, n in sends[:-1]} <= set(range(expected, expected + late + 1))
    assert len(sends) <= 3.0 * rate / expected + 2  # wake-ups that send: one per batch


def test_a_total_is_sent_whole_the_last_batch_smaller():
    pace = Pace(3_000, 0.0, total=100)
    sends = _run(pace, 10.0, 0.001)
    assert sum(n for _, n in sends) == 100 and pace.done
    assert sends[-1][0] == pytest.approx(99 / 3_000, abs=0.002)  # on schedule, not late


def test_a_late_sender_catches_up_at_once_but_never_ahead_of_the_schedule():
    pace = Pace(1_000, 0.0)
    assert pace.owed(2.0) == 2_001  # asleep for 2 s: what the schedule owes, no more
    pace.sent_now(2_001)
    assert pace.owed(2.001) == 0 and pace.wait(2.001) == pytest.approx(0.031)
    assert pace.wait(2.0313) == 0.001  # whole milliseconds: poll(0.0007) would not wait


def test_a_low_rate_goes_a_tenth_of_a_second_at_a_time_not_in_bursts_of_32():
    assert Pace(10, 0.0).batch == 1 and Pace(100, 0.0).batch == 10
    assert Pace(3_000, 0.0).batch == 32 and Pace(50_000, 0.0).batch == 500
