"""The transactional checkpoint's own logic, with a stand-in producer: a stop that
interrupts a transactional call must not issue a second one while the first runs
(librdkafka refuses it, and the transaction stays open). What Kafka then holds is
tested on the real broker in test_crash_safety.py."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.delivery import IN_FLIGHT_MAX, TransactionAborted, Transactional


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


class RecordingProducer(SlowProducer):
    """Also keeps what is produced, in call order with the transactional calls."""

    def produce(self, topic, value, key, headers=None) -> None:
        self.calls.append(f"produce {value.decode()}")


def test_writes_made_while_a_commit_runs_wait_for_the_next_transaction():
    """The loop goes on while a commit runs (settle without waiting): what it writes
    meanwhile is not produced into the transaction being committed, whose offsets do
    not cover it, but into the next one, once the commit has completed."""
    producer = RecordingProducer()
    txn = Transactional(KafkaSettings("unused:9092"), "txn", print, print, threading.Event(),
                        new_producer=lambda *args, **kwargs: producer)  # fmt: skip
    txn.write("dlq", b"before", b"k", [])
    assert txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5, wait=False) is False
    assert txn.in_flight and not txn.blocked  # the loop reads and routes meanwhile
    txn.write("dlq", b"during", b"k", [])
    assert producer.calls == ["produce before", "send_offsets"]
    time.sleep(IN_FLIGHT_MAX + 0.1)
    assert txn.blocked  # a commit this slow is waited for: little to redo if it fails

    producer.release.set()
    while txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5, wait=False) is False:
        assert txn.in_flight
    assert producer.calls == [
        "produce before", "send_offsets", "commit", "begin", "produce during"
    ]  # fmt: skip


def test_writes_held_during_a_commit_that_is_aborted_are_dropped_with_it():
    """An aborted transaction is redone from the committed offsets, and what was held
    for the next transaction with it: never produced."""
    producer = RecordingProducer()

    def commit_fails(timeout) -> None:
        producer.calls.append("commit")
        raise KafkaException(KafkaError(KafkaError._STATE, "aborted", txn_requires_abort=True))

    producer.commit_transaction = commit_fails
    producer.abort_transaction = lambda timeout: producer.calls.append("abort")
    txn = Transactional(KafkaSettings("unused:9092"), "txn", print, print, threading.Event(),
                        new_producer=lambda *args, **kwargs: producer)  # fmt: skip
    txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5, wait=False)
    txn.write("dlq", b"during", b"k", [])
    producer.release.set()
    with pytest.raises(TransactionAborted):
        while not txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5, wait=False):
            assert txn.in_flight
    txn.write("dlq", b"redone", b"k", [])
    producer.commit_transaction = lambda timeout: producer.calls.append("commit")
    assert txn.settle(["offsets"], GroupMember(), timeout=5, give_up=5) is True
    assert producer.calls == [
        "send_offsets", "commit", "abort", "begin",
        "produce redone", "send_offsets", "commit", "begin",
    ]  # fmt: skip
