"""The dead-letter record: its headers going in, and reading them back out.

A DLQ record keeps the source record's key and value byte for byte and its headers,
then adds these, each a UTF-8 string so any Kafka tool prints them:

    error_reason        a sentence: what failed, with the value and the threshold
    error_type          permanent | retries_exhausted | deserialization
    original_topic, original_partition, original_offset
    original_timestamp  ms since the epoch (the source record's timestamp)
    timestamp           ms since the epoch, when it was dead-lettered
    attempts            how many times it was tried
    consumer_group      the group that gave up on it

A replayed record (see `replay_headers`) also carries `replay_count`,
`replayed_from_partition` and `replayed_from_offset` (its DLQ coordinates), and
`redrive_id` when a bulk redrive sent it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from orders_tui.domain.codec import DecodeError, Decoder, WriterSchemaUnavailable, decode
from orders_tui.domain.failure import (
    FAILURE_HEADER_PREFIXES,
    Failure,
    header_number,
    read_failure,
    shown_header,
    text,
)
from orders_tui.domain.order import Order
from orders_tui.domain.routing import ErrorType
from orders_tui.errors import KafkaInterrupted
from orders_tui.json_output import bytes_json
from orders_tui.kafka.config import KafkaSettings, plain_reader
from orders_tui.kafka.topics import watermarks

Headers = list[tuple[str, bytes | None]]


ERROR_REASON = "error_reason"
ERROR_TYPE = "error_type"
ORIGINAL_TOPIC = "original_topic"
ORIGINAL_PARTITION = "original_partition"
ORIGINAL_OFFSET = "original_offset"
ORIGINAL_TIMESTAMP = "original_timestamp"
TIMESTAMP = "timestamp"
ATTEMPTS = "attempts"
CONSUMER_GROUP = "consumer_group"
REPLAY_COUNT = "replay_count"
REPLAYED_FROM_OFFSET = "replayed_from_offset"
REPLAYED_FROM_PARTITION = "replayed_from_partition"
REDRIVE_ID = "redrive_id"

FAILURE_HEADERS = (
    ERROR_REASON,
    ERROR_TYPE,
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ORIGINAL_TIMESTAMP,
    TIMESTAMP,
    ATTEMPTS,
    CONSUMER_GROUP,
)


class FailureHeaders:
    """Builds a DLQ record's headers: the source record's own, then the failure's.

    A third of a backlog can end in the DLQ, so this is written for speed: the group,
    topic and error-type bytes are encoded once, and the dead-letter time is taken once
    per batch (`stamp`), not once per record. Every source record comes from `topic`."""

    def __init__(self, group: str, topic: str) -> None:
        self._group = group.encode()
        self._topic = topic.encode()
        self._types = {error_type: error_type.value.encode() for error_type in ErrorType}
        self.stamp()

    def stamp(self) -> None:
        """Take the `timestamp` header's value (ms since the epoch) from the clock."""
        self._now = b"%d" % (time.time_ns() // 1_000_000)

    def __call__(
        self,
        own: Headers | None,
        partition: int,
        offset: int,
        timestamp: int,
        reason: str,
        error_type: ErrorType,
        attempts: int,
        topic: bytes | None = None,
    ) -> Headers:
        """The source record's own headers, then the failure's; `topic` when the source
        is not the pipeline's topic (a retry record names its own)."""
        failure: Headers = [
            (ERROR_REASON, reason.encode()),
            (ERROR_TYPE, self._types[error_type]),
            (ORIGINAL_TOPIC, topic or self._topic),
            (ORIGINAL_PARTITION, b"%d" % partition),
            (ORIGINAL_OFFSET, b"%d" % offset),
            (ORIGINAL_TIMESTAMP, b"%d" % timestamp),
            (TIMESTAMP, self._now),
            (ATTEMPTS, b"%d" % attempts),
            (CONSUMER_GROUP, self._group),
        ]
        return own + failure if own else failure


def replay_headers(entry: DlqEntry, redrive: str = "") -> Headers:
    """Headers for sending a DLQ entry back to its original topic: the source's own
    headers (the failure's are dropped, in any convention: it is a fresh attempt), then
    `replay_count`, `replayed_from_partition`, `replayed_from_offset` and, for a bulk
    redrive, `redrive_id`. Should it fail again, its next DLQ record carries them on."""
    dropped = {
        *FAILURE_HEADERS,
        REPLAY_COUNT,
        REPLAYED_FROM_OFFSET,
        REPLAYED_FROM_PARTITION,
        REDRIVE_ID,
    }
    headers: Headers = [
        (k, v)
        for k, v in entry.headers
        if k not in dropped and not k.startswith(FAILURE_HEADER_PREFIXES)
    ]
    headers.append((REPLAY_COUNT, str(entry.replay_count + 1).encode()))
    headers.append((REPLAYED_FROM_PARTITION, str(entry.partition).encode()))
    headers.append((REPLAYED_FROM_OFFSET, str(entry.offset).encode()))
    if redrive:
        headers.append((REDRIVE_ID, redrive.encode()))
    return headers


header_text = text  # a header value as text: UTF-8 when it is, else 0x-hex


@dataclass
class DlqEntry:
    """One record of the DLQ topic, with its failure read from the headers in any of
    the conventions `domain.failure` knows."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    decoder: Decoder = field(default=decode, compare=False, repr=False)

    @classmethod
    def from_message(cls, msg: Message, decoder: Decoder = decode) -> DlqEntry:
        return cls(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            msg.timestamp()[1],
            msg.key(),
            msg.value(),
            list(msg.headers() or []),
            decoder,
        )

    def header(self, name: str, default: str = "") -> str:
        """The last header of that name (a replayed record may carry older copies)."""
        for key, value in reversed(self.headers):
            if key == name:
                return header_text(value)
        return default

    @cached_property
    def failure(self) -> Failure:
        return read_failure(self.headers)

    @cached_property
    def order(self) -> Order | None:
        """The value decoded, or None when it does not decode."""
        decoded = self.decoded(self.decoder)
        return decoded if isinstance(decoded, Order) else None

    @property
    def error_type(self) -> str:
        return self.failure.error_type

    @property
    def reason(self) -> str:
        return self.failure.reason

    @property
    def original(self) -> tuple[str, int | None, int | None]:
        return self.failure.original

    @property
    def replay_count(self) -> int:
        return self.failure.replay_count

    def decoded(self, decoder: Decoder | None = None) -> Order | DecodeError:
        try:
            return (decoder or self.decoder)(self.value)
        except DecodeError as exc:
            return exc
        except WriterSchemaUnavailable as exc:
            return DecodeError(f"not decoded now: its writer schema cannot be fetched ({exc})")

    def schema(self, decoder: Decoder | None = None) -> dict[str, object] | None:
        """For a Confluent-framed value: its schema id, and the subject and version the
        registry has it under (once decoded; None where unknown)."""
        found = (decoder or self.decoder).writer_of(self.value)
        if found is None:
            return None
        schema_id, writer = found
        return {
            "id": schema_id,
            "subject": writer.subject if writer else None,
            "version": writer.version if writer else None,
        }

    def decoded_headers(self) -> list[tuple[str, str]]:
        """Each header as a person reads it: Spring's binary numbers as digits."""
        return [(name, shown_header(name, value)) for name, value in self.headers]

    def to_json(self, decoder: Decoder | None = None) -> dict[str, object]:
        """The entry, losslessly, for `orders-tui dlq --json` (shape in the README):
        headers as an ordered list (names may repeat), bytes as {"text"} or {"base64"},
        null distinct from empty."""
        order = self.decoded(decoder)
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
            "key": bytes_json(self.key),
            "value": bytes_json(self.value, as_text=False),
            "headers": [_header_json(name, value) for name, value in self.headers],
            "order": order.to_dict() if isinstance(order, Order) else None,
            "decode_error": str(order) if isinstance(order, DecodeError) else None,
            "schema": self.schema(decoder),
        }


def _header_json(name: str, value: bytes | None) -> dict[str, object]:
    """A header losslessly, and a binary number's value beside its bytes."""
    shown: dict[str, object] = {"name": name, "value": bytes_json(value)}
    number = header_number(name, value)
    if number is not None:
        shown["number"] = number
    return shown


def dlq_reader(settings: KafkaSettings, **overrides: object) -> Consumer:
    """A plain reader that says when it reaches the end of a partition."""
    return plain_reader(settings, **{"enable.partition.eof": True, **overrides})


@dataclass
class ScanProgress:
    """How far a scan is: records read of about `total` (transaction markers count in
    the total, so it can end a little short of it)."""

    read: int = 0
    total: int = 0
    ends: dict[int, int] = field(default_factory=dict)  # where it stops, per partition


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return []
    return sorted(found.partitions)


def scan_dlq(
    consumer: Consumer,
    topic: str,
    start: dict[int, int] | None = None,
    decoder: Decoder = decode,
    progress: ScanProgress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 10.0,
) -> Iterator[DlqEntry]:
    """Every entry on the DLQ topic, from `start` (a partition's next offset; default
    the beginning) to its end as it was when the scan began, each partition in offset
    order. Entries written meanwhile are left for the next scan, so a scan ends even
    while the topic grows (a redrive's records may come back to it). `progress` is kept
    up to date; setting `cancel` ends the scan early."""
    begin: dict[int, int] = {}
    ends: dict[int, int] = {}
    for partition in partitions_of(consumer, topic, timeout):
        low, high = watermarks(consumer, TopicPartition(topic, partition), timeout)
        begin[partition] = max(low, (start or {}).get(partition, low))
        ends[partition] = high
    remaining = {p for p in begin if begin[p] < ends[p]}
    if progress is not None:
        progress.total = sum(ends[p] - begin[p] for p in remaining)
        progress.ends = dict(ends)
    if not remaining:
        return
    consumer.assign([TopicPartition(topic, p, begin[p]) for p in sorted(remaining)])
    idle_deadline = time.monotonic() + timeout
    while remaining:
        if cancel is not None and cancel.is_set():
            return
        messages: Sequence[Message] = consumer.consume(1000, 0.2)
        if not messages and time.monotonic() > idle_deadline:
            raise KafkaInterrupted(
                f"reading {topic!r}: no answer from Kafka for {timeout:g} "
                "s; check that the broker is up, then run it again"
            )
        for msg in messages:
            partition = msg.partition()
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # the readable end (LSO)
                    remaining.discard(partition)
                    continue
                raise KafkaInterrupted(f"reading {topic!r}: {error.str()}")
            if partition not in remaining:
                continue
            idle_deadline = time.monotonic() + timeout
            offset = msg.offset()
            if offset >= ends[partition]:
                remaining.discard(partition)
                continue
            if offset + 1 >= ends[partition]:
                remaining.discard(partition)
            if progress is not None:
                progress.read += 1
            yield DlqEntry.from_message(msg, decoder)
