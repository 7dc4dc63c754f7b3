"""Durable retries: the retry topics and the retry record's format.

A transient failure is not kept in memory: the source record is copied to a retry topic
and its source offset is done. Retry *n* of an order waits in `<prefix>-<n>` (prefix
`<topic>-<group>-retry` unless `--retry-topic-prefix` says otherwise), so each topic holds
records of one delay and their due times are in order, give or take the jitter.

Retry topics belong to one consumer group: a retry is that group's job. Named after the
source topic alone (`<topic>-retry`, before 2026-12), two groups on one topic consumed
each other's retries (13 % of the orders done twice). The retry record also names its
group (`retry_group`), and a pipeline skips, counts and names any other group's records.
The pipeline consumes the retry topics in its group, and pauses a retry partition until its head
record is due (Spring Kafka's non-blocking retry topics work the same way).

A retry record keeps the source record's key and value byte for byte and its headers,
then adds these, each a UTF-8 string:

    error_reason         why the last attempt failed
    retry_attempts       attempts made so far (all failed)
    retry_due            ms since the epoch: when the next attempt is due
    retry_first_failure  ms since the epoch: when the first attempt failed
    original_topic, original_partition, original_offset, original_timestamp
                         the source record's coordinates and timestamp
    retry_group          the consumer group whose retry it is (absent in records written
                         before 2026-12)

A DLQ record made from a retry record points at the source record, not at the retry topic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from orders_tui.kafka.dlq import (
    ERROR_REASON,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TIMESTAMP,
    ORIGINAL_TOPIC,
    Headers,
)

RETRY_ATTEMPTS = "retry_attempts"
RETRY_DUE = "retry_due"
RETRY_FIRST_FAILURE = "retry_first_failure"
RETRY_GROUP = "retry_group"
MAX_TOPIC_NAME = 249  # Kafka's limit

# The names a retry record ends with, in this order.
RETRY_HEADERS = (
    ERROR_REASON,
    RETRY_ATTEMPTS,
    RETRY_DUE,
    RETRY_FIRST_FAILURE,
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ORIGINAL_TIMESTAMP,
)


def retry_topic_names(prefix: str, max_retries: int) -> list[str]:
    """The retry topics, retry 1 first: `<prefix>-1` .. `<prefix>-<max_retries>`."""
    return [f"{prefix}-{n}" for n in range(1, max_retries + 1)]


def group_retry_prefix(topic: str, group: str) -> str:
    """`<topic>-<group>-retry`: the group's own retry topics. A group name may hold
    characters a topic name may not (kept: letters, digits, `.`, `_`, `-`; others become
    `_`); a name too long for Kafka keeps its start and a hash of the whole group."""
    part = re.sub(r"[^A-Za-z0-9._-]", "_", group)
    prefix = f"{topic}-{part}-retry"
    room = MAX_TOPIC_NAME - len("-999")
    if len(prefix) > room or part != group:
        digest = hashlib.sha256(group.encode()).hexdigest()[:8]
        keep = max(1, room - len(f"{topic}--{digest}-retry"))
        prefix = f"{topic}-{part[:keep]}-{digest}-retry"
    return prefix


def shared_retry_prefix(topic: str) -> str:
    """The retry topics' prefix before they belonged to a group: `<topic>-retry`."""
    return f"{topic}-retry"


class NotARetryRecord(ValueError):
    """A record on a retry topic that this project did not write (or that was mangled)."""


@dataclass(frozen=True, slots=True)
class RetryState:
    """Where an order stands in its retries, as its retry record's headers say."""

    attempts: int
    due_ms: int
    first_failure_ms: int
    reason: str
    original_topic: str
    original_partition: int
    original_offset: int
    original_timestamp: int
    source_headers: Headers  # the source record's own headers
    group: str | None = None  # the consumer group whose retry it is; None: written earlier

    def headers(self) -> Headers:
        ours: Headers = [
            (ERROR_REASON, self.reason.encode()),
            (RETRY_ATTEMPTS, b"%d" % self.attempts),
            (RETRY_DUE, b"%d" % self.due_ms),
            (RETRY_FIRST_FAILURE, b"%d" % self.first_failure_ms),
            (ORIGINAL_TOPIC, self.original_topic.encode()),
            (ORIGINAL_PARTITION, b"%d" % self.original_partition),
            (ORIGINAL_OFFSET, b"%d" % self.original_offset),
            (ORIGINAL_TIMESTAMP, b"%d" % self.original_timestamp),
        ]
        if self.group is not None:
            ours.append((RETRY_GROUP, self.group.encode()))
        return [*self.source_headers, *ours]

    @classmethod
    def parse(cls, headers: Headers | None) -> RetryState:
        """Read a retry record's headers; NotARetryRecord when they are not ours."""
        headers = list(headers or [])
        group = None
        if headers and headers[-1][0] == RETRY_GROUP:
            group = (headers.pop()[1] or b"").decode("utf-8", "replace")
        count = len(RETRY_HEADERS)
        tail = headers[-count:] if len(headers) >= count else []
        if tuple(name for name, _ in tail) != RETRY_HEADERS:
            raise NotARetryRecord(
                "a record on a retry topic without the retry headers "
                f"({', '.join(RETRY_HEADERS)}) at its end"
            )
        values = [value or b"" for _, value in tail]
        try:
            reason = values[0].decode()
            topic = values[4].decode()
            numbers = [int(v) for v in (*values[1:4], *values[5:])]
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotARetryRecord(f"a retry record with a malformed header: {exc}") from None
        attempts, due, first, partition, offset, timestamp = numbers
        return cls(
            attempts,
            due,
            first,
            reason,
            topic,
            partition,
            offset,
            timestamp,
            headers[:-count],
            group,
        )
