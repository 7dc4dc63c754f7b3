"""Which of the pipeline's consumers the broker has not had in the group for long: the
watch's own logic, with the broker's answers written out here (a stand-in admin client).
On the broker, the restart test of tests/test_pipeline.py is where a consumer fell out."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

from orders_tui.kafka.member_watch import CHECK_EVERY, MISSING_AFTER, MemberWatch


class Broker:
    """Answers each description at once with the members it holds now."""

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.asked = 0

    def describe(self) -> Future:
        self.asked += 1
        answer: Future = Future()
        members = [SimpleNamespace(group_instance_id=i) for i in sorted(self.members)]
        answer.set_result(SimpleNamespace(members=members))
        return answer


def _watch(broker: Broker) -> MemberWatch:
    watch = MemberWatch(broker.describe)
    watch.expect({"w0", "w0#retry-1"}, now=0.0)
    return watch


def test_a_consumer_out_of_the_group_for_longer_than_a_while_is_named():
    broker = Broker()
    broker.members = {"w0"}
    watch = _watch(broker)
    now = CHECK_EVERY
    assert watch.missing(now) == []  # asked
    assert watch.missing(now + 0.1) == []  # read: w0#retry-1 missing since now
    assert watch.missing(now + MISSING_AFTER) == []
    assert watch.missing(now + MISSING_AFTER + 0.2) == ["w0#retry-1"]


def test_a_consumer_that_joins_in_time_is_not_named_and_nothing_is_asked_in_between():
    broker = Broker()
    watch = _watch(broker)
    assert watch.missing(1.0) == [] and broker.asked == 0  # within CHECK_EVERY of expect
    watch.missing(CHECK_EVERY)
    watch.missing(CHECK_EVERY + 0.1)  # both missing from here
    broker.members = {"w0", "w0#retry-1"}
    watch.missing(2 * CHECK_EVERY)
    assert watch.missing(2 * CHECK_EVERY + 0.1) == []
    assert broker.asked == 2  # once every CHECK_EVERY
    assert watch.missing(CHECK_EVERY + MISSING_AFTER + 1) == []


def test_an_outage_or_new_consumers_start_the_count_again():
    broker = Broker()
    watch = _watch(broker)
    watch.missing(CHECK_EVERY)
    watch.missing(CHECK_EVERY + 0.1)
    watch.pause()  # the broker went away
    assert watch.missing(CHECK_EVERY + MISSING_AFTER + 1) == []
    watch.expect({"w0"}, now=100.0)
    assert watch.missing(100.0 + MISSING_AFTER + 1) == []
