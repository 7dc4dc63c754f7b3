"""A fleet over Kafka: each pipeline publishes its status record twice a second, and obeys
the group's fleet commands (pause, resume) that `orders-tui watch` writes.

Both topics are compacted with one partition: the status topic keeps each member's
latest record (key `group/member`), the control topic each group's latest command (key
`group`), so a member that starts late obeys it too. A command is JSON:
`{"seq": n, "paused": true, "by": "host"}`; a member says which `seq` it obeyed in its
status (`control_seq`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer, TopicPartition

from orders_tui import __version__
from orders_tui.domain.member_status import (
    MemberStatus,
    encode_status,
)
from orders_tui.kafka.config import KafkaSettings, plain_reader
from orders_tui.kafka.producer import make_producer
from orders_tui.kafka.topics import ensure_topics

STATUS_TOPIC = "orders-tui-status"
CONTROL_TOPIC = "orders-tui-control"
STATUS_EVERY = 0.5  # seconds between two status records of a member (figures fresh each second)
COMPACTED = {"cleanup.policy": "compact", "segment.ms": "600000"}
HOST = socket.gethostname()


def ensure_fleet_topics(settings: KafkaSettings, status_topic: str, control_topic: str) -> None:
    ensure_topics(settings, [status_topic, control_topic], 1, config=COMPACTED)


@dataclass(frozen=True)
class Command:
    """A fleet command: what every member of `group` should be doing."""

    seq: int
    paused: bool
    by: str = HOST

    def encode(self) -> bytes:
        return json.dumps({"seq": self.seq, "paused": self.paused, "by": self.by}).encode()

    @classmethod
    def decode(cls, value: bytes) -> Command:
        """ValueError when `value` is not a command."""
        record = json.loads(value)
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("seq"), int)
            or not isinstance(record.get("paused"), bool)
        ):
            raise ValueError("a command is an object with an integer seq and a boolean paused")
        return cls(record["seq"], record["paused"], str(record.get("by", "")))


class StatusPublisher:
    """Writes a member's status records; used from the pipeline's thread only."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self._producer: Producer = make_producer(settings, **{"linger.ms": 0})

    def publish(self, status: MemberStatus) -> None:
        # The broker away and the queue full: the next second says it again.
        with contextlib.suppress(BufferError):
            self._producer.produce(self.topic, encode_status(status), status.key)
        self._producer.poll(0)

    def close(self, timeout: float) -> None:
        self._producer.flush(timeout)


def new_status(group: str, member: str, **figures: object) -> MemberStatus:
    return MemberStatus(
        group=group,
        member=member,
        host=HOST,
        pid=os.getpid(),
        version=__version__,
        updated_ms=time.time_ns() // 1_000_000,
        **figures,
    )  # type: ignore[arg-type]


class ControlFollower:
    """Follows the control topic on a thread of its own and hands each new command for
    `group` to `obey` (the latest one first, at start). `caught_up` is set once the
    commands already there have been obeyed."""

    def __init__(
        self, settings: KafkaSettings, topic: str, group: str, obey: Callable[[Command], None]
    ) -> None:
        self._settings, self._topic, self._group = settings, topic, group.encode()
        self._obey = obey
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orders-tui-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        reader = plain_reader(self._settings, **{"enable.partition.eof": True})
        try:
            reader.assign([TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
            last_seq = -1
            while not self._stop.is_set():
                # consume() returns at 100 records or at its timeout, end of partition or
                # not: while a member waits to start (join), a short one (it waited 0.5 s,
                # 1.4 s in all, for a topic of a few records).
                timeout = 0.5 if self.caught_up.is_set() else 0.02
                try:
                    messages = reader.consume(100, timeout)
                except KafkaException:
                    continue
                latest = None
                for msg in messages:
                    if msg.error() is None and msg.key() == self._group and msg.value():
                        try:
                            latest = Command.decode(msg.value())
                        except ValueError:
                            continue  # not ours to read: someone else's record
                if latest is not None and latest.seq > last_seq:
                    last_seq = latest.seq
                    self._obey(latest)
                if any(
                    msg.error() is not None and msg.error().code() == KafkaError._PARTITION_EOF
                    for msg in messages
                ):
                    self.caught_up.set()
        finally:
            reader.close()
