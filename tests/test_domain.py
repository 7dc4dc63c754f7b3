"""Failure rules, retry schedule, offset tracking and aggregates: plain Python."""

import math
import random
import re
from collections import Counter

import pytest

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.domain.order import Order, OrderFactory
from orders_tui.domain.retry import Backoff
from orders_tui.domain.rules import FailureRules, Outcome
from orders_tui.domain.stats import PipelineStats, RateMeter

RULES = FailureRules()


def order(price: float, order_id: str = "id-1") -> Order:
    return Order(order_id, "Lamp", price)


@pytest.mark.parametrize(
    ("price", "outcome"),
    [(4.99, Outcome.OK), (5.0, Outcome.TRANSIENT), (50.0, Outcome.TRANSIENT),
     (50.01, Outcome.OK), (1000.0, Outcome.OK), (1000.01, Outcome.PERMANENT),
     (math.nan, Outcome.PERMANENT), (math.inf, Outcome.PERMANENT)],
)  # fmt: skip
def test_first_attempt_verdicts_follow_the_thresholds(price, outcome):
    assert RULES.check(order(price), 1).outcome is outcome


def test_permanent_reason_names_value_and_threshold():
    reason = RULES.check(order(1234.5), 1).reason
    assert "1234.50" in reason
    assert "1000.00" in reason


def test_transient_order_fails_its_first_k_attempts_then_recovers():
    ids = [f"order-{i}" for i in range(2000)]
    ks = [RULES.failing_attempts(i) for i in ids]
    assert set(ks) == {1, 2, 3, 4}  # spread over 1 .. max_retries + 1
    for order_id, k in zip(ids[:50], ks[:50], strict=True):
        o = order(20.0, order_id)
        outcomes = [RULES.check(o, attempt).outcome for attempt in range(1, RULES.max_attempts + 1)]
        assert outcomes[:k] == [Outcome.TRANSIENT] * k
        assert all(x is Outcome.OK for x in outcomes[k:])


def test_failing_attempts_is_stable_across_processes():
    # Pinned values: Python's salted hash() would give others in every process, and a
    # restarted pipeline would retry an order a different number of times.
    # blake2b(b"x0", digest_size=8) = 0xbee67509d2524873; 0x...73 % 4 = 3, so k = 4.
    assert [RULES.failing_attempts(f"x{i}") for i in range(8)] == [4, 2, 1, 3, 3, 4, 2, 4]
    assert FailureRules(max_retries=0).failing_attempts("anything") == 1


def test_failing_attempts_spread_evenly():
    """Over 10,000 ids each k in 1..4 occurs 2,500 times, within 6 % (4 standard
    deviations of a fair draw)."""
    counts = Counter(RULES.failing_attempts(f"order-{i}") for i in range(10_000))
    assert set(counts) == {1, 2, 3, 4}
    assert all(abs(n - 2_500) <= 150 for n in counts.values()), counts


def test_bad_rules_are_refused():
    with pytest.raises(ValueError):
        FailureRules(max_retries=-1)
    with pytest.raises(ValueError):
        FailureRules(transient_min=60, transient_max=50)


@pytest.mark.parametrize(
    "rules",
    [
        {"transient_min": math.nan},
        {"transient_max": math.nan},
        {"permanent_above": math.nan},
        {"permanent_above": math.inf},
        {"transient_min": -math.inf},
    ],
)
def test_rules_refuse_non_finite_thresholds(rules):
    # NaN compares false both ways: `price > nan` would let a 1,499.00 order through.
    with pytest.raises(ValueError, match="finite"):
        FailureRules(**rules)


@pytest.mark.parametrize("backoff", [{"base": math.inf}, {"cap": math.inf}, {"base": math.nan}])
def test_backoff_refuses_non_finite_delays(backoff):
    with pytest.raises(ValueError, match="finite"):
        Backoff(**backoff)


def test_backoff_grows_exponentially_is_capped_and_jittered():
    backoff = Backoff(base=0.5, cap=3.0, jitter=0.5)
    assert [backoff.ceiling(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    rng = random.Random(1)
    delays = [backoff.delay(2, rng) for _ in range(500)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert max(delays) - min(delays) > 0.3
    assert Backoff(base=1, jitter=0).delay(3) == 4.0


def test_offsets_commit_only_the_contiguous_done_prefix():
    offsets = PartitionOffsets()
    assert offsets.committable is None
    offsets.track_done(10)
    assert offsets.committable == 11
    offsets.track(11)  # waits for a retry
    offsets.track_done(12)
    offsets.track(13)
    offsets.track_done(14)
    assert offsets.committable == 11  # 11 is not done: nothing past it may be committed
    assert offsets.has_pending
    offsets.done(13)
    assert offsets.committable == 11
    offsets.done(11)
    assert offsets.committable == 15
    assert not offsets.has_pending
    offsets.track_done(15)
    assert offsets.committable == 16


def test_offsets_random_completion_order_never_passes_an_undone_offset():
    rng = random.Random(5)
    offsets = PartitionOffsets()
    pending, done = [], set()
    for o in range(1000):  # most orders are done at once, some wait
        if rng.random() < 0.6:
            offsets.track_done(o)
            done.add(o)
        else:
            offsets.track(o)
            pending.append(o)
    assert offsets.committable == pending[0]
    rng.shuffle(pending)
    for o in pending:
        offsets.done(o)
        done.add(o)
        committable = offsets.committable
        if committable is not None:
            assert all(x in done for x in range(committable))
            assert committable not in done or committable == 1000
    assert offsets.committable == 1000


def test_stats_aggregate_processed_orders():
    stats = PipelineStats()
    stats.add_processed_batch([10.0, 30.0], now=100.0)
    stats.add_processed(20.0, recovered=True, now=100.5)
    stats.add_dead_lettered(["permanent"])
    stats.add_dead_lettered(["permanent"])
    stats.add_dead_lettered(["deserialization"])
    assert (stats.processed, stats.recovered, stats.dead_lettered) == (3, 1, 3)
    assert stats.total_price == 60.0
    assert stats.average_price == 20.0
    assert (stats.min_price, stats.max_price) == (10.0, 30.0)
    summary = stats.summary(now=101.0)
    assert summary["dead_lettered_by_type"] == {"deserialization": 1, "permanent": 2}
    assert PipelineStats().summary(1.0)["min_price"] is None


def test_the_rate_counts_finished_orders_so_a_run_of_retries_alone_is_not_zero():
    stats = PipelineStats(started=100.0)
    stats.add_processed(20.0, recovered=True, now=101.0)  # retries: nothing consumed
    stats.add_dead_lettered(["retries_exhausted"])
    assert stats.consumed == 0
    assert stats.summary(now=102.0)["orders_per_second"] == 1.0  # 2 orders in 2 s


def test_rate_meter_counts_per_second():
    meter = RateMeter(window=10)
    meter.add(5, 100.2)
    meter.add(5, 100.9)
    meter.add(3, 102.0)
    assert meter.history(103.0, 4) == [0, 10, 0, 3]
    assert meter.rate(103.0, seconds=2) == 1.5


def test_the_price_mix_puts_about_3_percent_in_the_transient_band():
    factory = OrderFactory(1)
    orders = [factory() for _ in range(20000)]
    transient = sum(RULES.is_transient(o.price) for o in orders) / len(orders)
    assert 0.02 < transient < 0.04  # (50 - 5) / (1500 - 5) ~ 3 %


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"max_retries": -1}, "max_retries must be 0 or more"),
        ({"transient_min": 60.0, "transient_max": 50.0},
         "the transient band's minimum is above its maximum"),
        ({"permanent_above": math.nan},
         "price thresholds must be finite numbers: NaN would switch a rule off"),
    ],
)  # fmt: skip
def test_bad_rules_say_what_is_wrong(rules, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        FailureRules(**rules)


@pytest.mark.parametrize(
    ("backoff", "message"),
    [
        ({"base": -1.0}, "backoff delays cannot be negative"),
        ({"cap": -1.0}, "backoff delays cannot be negative"),
        ({"jitter": 1.5}, "jitter is a fraction between 0 and 1"),
        ({"jitter": -0.1}, "jitter is a fraction between 0 and 1"),
        ({"multiplier": math.inf},
         "backoff delays must be finite numbers: an infinite one never retries"),
    ],
)  # fmt: skip
def test_bad_backoff_says_what_is_wrong(backoff, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Backoff(**backoff)


def test_a_one_price_transient_band_is_allowed():
    rules = FailureRules(transient_min=20.0, transient_max=20.0)
    assert rules.check(Order("x0", "p", 20.0), 1).outcome is Outcome.TRANSIENT
    assert rules.check(Order("x0", "p", 20.01), 1).outcome is Outcome.OK


def test_backoff_accepts_its_bounds():
    assert Backoff(base=0.0, cap=0.0, jitter=1.0).delay(1) == 0.0
    assert Backoff(jitter=0.0).delay(3) == 2.0  # 0.5 * 2**2, no jitter


def test_reasons_name_the_value_and_the_rule():
    assert RULES.check(Order("n", "p", math.nan), 1).reason == "price nan is not a finite number"
    transient = Order("x0", "p", 20.0)  # k = 4 for x0
    assert RULES.check(transient, 2).reason == (
        "downstream unavailable for price 20.00 (transient band 5.00-50.00): attempt 2 of 4 failed"
    )


def test_an_order_id_with_a_lone_surrogate_still_gets_a_verdict():
    # Decoded text can hold one (a producer that wrote invalid UTF-16 as UTF-8).
    assert 1 <= RULES.failing_attempts("id-\ud800") <= 4


def test_with_nothing_pending_the_next_offset_after_the_newest_commits():
    offsets = PartitionOffsets()
    offsets.track(5)
    offsets.done(5)
    assert offsets.committable == 6
    offsets.track_done(9)
    assert offsets.committable == 10
