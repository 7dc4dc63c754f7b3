"""The transactional checkpoint's own logic, with a stand-in producer: a stop that
interrupts a transactional call must not issue a second one while the first runs
(librdkafka refuses it, and the transaction stays open). What Kafka then holds is
tested on the real broker in test_crash_safety.py."""

from __future__ import annotations

import threading

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.delivery import Transactional


class SlowProducer:
    """Records the transactional calls; send_offsets_to_transaction waits for `release`
    and, like librdkafka, refuses to run twice at once."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()
        self._sending = False

    def send_offsets_to_transaction(self, offsets, metadata, timeout) -> None:
        if self._sending:
            raise AssertionError("simultaneous send_offsets_to_transaction calls")
        self._sending = True
        self.calls.append("send_offsets")
        self.release.wait(10)
        self._sending = False

    def commit_transaction(self, timeout) -> None:
        self.calls.append("commit")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def poll(self, timeout) -> int:
        return 0


class GroupMember:
    def consumer_group_metadata(self) -> object:
        return object()


def test_a_stop_mid_commit_completes_the_same_call_instead_of_starting_another():
    producer = SlowProducer()
    interrupt = threading.Event()
    txn = Transactional(KafkaSettings("unused:9092"), "txn", print, print, interrupt,
                        new_producer=lambda *args, **kwargs: producer)  # fmt: skip
    threading.Timer(0.2, interrupt.set).start()

    assert txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5) is False
    assert txn.blocked  # nothing may be written before this commit completes
    assert txn.abort(1) is False  # nor aborted while its call runs

    interrupt.clear()  # the last checkpoint of a stop
    producer.release.set()
    assert txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5) is True
    assert producer.calls == ["send_offsets", "commit", "begin"]
    assert not txn.blocked
