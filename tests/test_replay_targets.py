"""Where a replay may send a DLQ entry: the pipeline's own topics unless the user says
otherwise, and never Kafka's internal topics or orders-tui's own."""

from __future__ import annotations

import pytest

from orders_tui.domain.replay_targets import ReplayTargets, ReplayVerdict, TargetRefused
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.redrive import replay_targets

SETTINGS = KafkaSettings("localhost:9092", "orders", "orders-dlq")


def test_by_default_only_the_source_topic_and_its_retry_topics_are_targets():
    targets = replay_targets(SETTINGS)
    for topic in ("orders", "orders-retry", "orders-retry-1", "orders-retry-1000"):
        assert targets.target(topic) == topic and targets.refusal(topic) == ""
    for topic in ("payments", "orders-retry-x", "orders2", "xorders", ""):
        assert targets.target(topic) is None
    assert "is not the pipeline's ('orders'); --allow-topic or --to" in targets.refusal("payments")
    assert targets.refusal(None) == "the entry has no original topic"


@pytest.mark.parametrize(
    "topic",
    ["__consumer_offsets", "__transaction_state", "orders-dlq", "orders-dlq-redrives",
     "orders-tui-control", "orders-tui-status"],
)  # fmt: skip
def test_internal_and_orders_tuis_own_topics_are_never_targets(topic):
    assert replay_targets(SETTINGS).target(topic) is None
    assert "is never a target" in replay_targets(SETTINGS).refusal(topic)
    with pytest.raises(TargetRefused, match="cannot be a replay's target"):
        replay_targets(SETTINGS, allowed=(topic,))
    with pytest.raises(TargetRefused, match="cannot be a replay's target"):
        replay_targets(SETTINGS, to=topic)


def test_the_fleet_topics_named_in_the_environment_are_protected_too(monkeypatch):
    monkeypatch.setenv("ORDERS_TUI_CONTROL_TOPIC", "team-a-control")
    assert (
        replay_targets(SETTINGS)
        .refusal("team-a-control")
        .endswith(
            "is never a target: orders-tui keeps its own records there (the DLQ, the redrive "
            "log, the fleet)"
        )
    )


def test_allow_topic_adds_targets_and_to_sends_everything_to_one():
    allowed = ReplayTargets("orders", {"orders-dlq"}, allowed=("payments",))
    assert allowed.target("payments") == "payments" and allowed.target("billing") is None
    moved = ReplayTargets("orders", {"orders-dlq"}, to="quarantine")
    assert {moved.target(t) for t in ("orders", "payments", "__consumer_offsets", None)} == {
        "quarantine"
    }


def test_the_dashboards_replay_is_refused_for_a_foreign_topic():
    from orders_tui.kafka.dlq import DlqEntry
    from orders_tui.kafka.engine import replay_refusal

    entry = DlqEntry("orders-dlq", 0, 5, 0, b"k", b"v",
                     [("original_topic", b"orders-tui-control"),
                      ("original_partition", b"0"), ("original_offset", b"1")])  # fmt: skip
    refusal = replay_refusal(entry, 3, replay_targets(SETTINGS))
    assert refusal.startswith("cannot replay: its original topic 'orders-tui-control' is never")


def test_the_replay_policy_is_one_order_of_checks_for_every_replay():
    """`r`, `R` and `dlq replay` ask the same question in the same order: replayed too
    often; no original topic, or one that does not exist; one not allowed; else send."""
    targets = ReplayTargets("orders", protected=["orders-dlq"])
    existing = {"orders", "payments"}.__contains__
    verdict = targets.verdict
    assert verdict("orders", 0, 3, existing) is ReplayVerdict.SEND
    assert verdict("orders-retry-2", 0, 3) is ReplayVerdict.SEND
    assert verdict("orders", 3, 3, existing) is ReplayVerdict.AT_MAX_REPLAYS
    assert verdict("", 3, 3) is ReplayVerdict.AT_MAX_REPLAYS  # the first check wins
    assert verdict("", 0, 3) is ReplayVerdict.NO_TARGET
    assert verdict("gone", 0, 3, existing) is ReplayVerdict.NO_TARGET
    assert verdict("payments", 0, 3, existing) is ReplayVerdict.NOT_ALLOWED
    assert verdict("orders-dlq", 0, 3) is ReplayVerdict.NOT_ALLOWED
    sent_elsewhere = ReplayTargets("orders", protected=["orders-dlq"], to="quarantine")
    assert sent_elsewhere.verdict("payments", 0, 3) is ReplayVerdict.SEND
    assert sent_elsewhere.verdict("", 0, 3) is ReplayVerdict.NO_TARGET
