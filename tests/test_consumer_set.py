"""The consumer per level, read as one: calls about a partition reach the consumer of its
topic, and the source waits for records only when no retry level has any. (What the
group does with the members is tested on the broker: test_fleet_share.py.)"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from orders_tui.kafka.consumer_set import ConsumerSet, level_instance_id, pipeline_instance_id

LEVELS = [["orders"], ["orders-g-retry-1", "orders-retry-1"], ["orders-g-retry-2"]]


class Recording:
    def __init__(self, level: int) -> None:
        self.level = level
        self.calls: list[tuple] = []
        self.records: list[str] = []
        self.stored = False

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return []

        return call

    def consume(self, count: int, timeout: float) -> list[str]:
        self.calls.append(("consume", (count, timeout), {}))
        records, self.records = self.records, []
        return records

    def commit(self, asynchronous: bool = True):
        if not self.stored:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        return [TopicPartition(f"level-{self.level}", 0, 1)]


def _set() -> tuple[ConsumerSet, list[Recording]]:
    made: list[Recording] = []

    def make(level: int) -> Recording:
        made.append(Recording(level))
        return made[-1]

    return ConsumerSet(LEVELS, make), made


def test_each_level_subscribes_to_its_topics_among_those_asked_for():
    consumers, made = _set()
    consumers.subscribe(["orders", "orders-g-retry-1", "orders-g-retry-2"], on_assign=print)
    assert [c.calls for c in made] == [
        [("subscribe", (["orders"],), {"on_assign": print})],
        [("subscribe", (["orders-g-retry-1"],), {"on_assign": print})],
        [("subscribe", (["orders-g-retry-2"],), {"on_assign": print})],
    ]
    consumers.subscribe(["orders", "orders-g-retry-1"])  # retry level 2 no longer read
    assert made[2].calls[-1][0] == "unsubscribe"


def test_a_partition_goes_to_the_consumer_of_its_topic():
    consumers, made = _set()
    consumers.pause([TopicPartition("orders-retry-1", 0), TopicPartition("orders", 3)])
    consumers.seek(TopicPartition("orders-g-retry-2", 1, 7))
    called = [[(name, [(tp.topic, tp.partition) for tp in
                       (args[0] if isinstance(args[0], list) else [args[0]])])
               for name, args, _ in c.calls] for c in made]  # fmt: skip
    assert called == [
        [("pause", [("orders", 3)])],
        [("pause", [("orders-retry-1", 0)])],
        [("seek", [("orders-g-retry-2", 1)])],
    ]


def test_the_source_waits_only_when_no_retry_level_had_records():
    consumers, made = _set()
    consumers.subscribe(["orders", "orders-g-retry-1", "orders-g-retry-2"])
    assert consumers.consume(1000, 0.1) == []
    assert made[0].calls[-1] == ("consume", (1000, 0.1), {})
    made[2].records = ["due retry"]
    made[0].records = ["order"]
    assert consumers.consume(1000, 0.1) == ["due retry", "order"]
    assert made[0].calls[-1] == ("consume", (1000, 0), {})  # no wait: work is at hand


def test_a_commit_says_no_offset_only_when_no_level_had_one():
    consumers, made = _set()
    with pytest.raises(KafkaException) as nothing:
        consumers.commit(asynchronous=False)
    assert nothing.value.args[0].code() == KafkaError._NO_OFFSET
    made[1].stored = True
    assert [tp.topic for tp in consumers.commit(asynchronous=False)] == ["level-1"]


def test_a_levels_member_is_named_after_its_pipeline():
    assert [level_instance_id("host-1", n) for n in range(3)] == [
        "host-1", "host-1#retry-1", "host-1#retry-2"
    ]  # fmt: skip
    assert {pipeline_instance_id(level_instance_id("host-1", n)) for n in range(3)} == {"host-1"}
