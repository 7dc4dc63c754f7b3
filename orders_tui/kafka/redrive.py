"""Bulk redrive: send the DLQ entries a filter picks back to their original topics,
once each, resumably.

A redrive has a name (by default one made from the DLQ topic and the filter). It reads
the DLQ in consumer group `orders-tui-redrive-<name>` and writes in transactions with
transactional id `orders-tui-redrive-<name>`: the records it sends and the DLQ offsets
it has read past commit together, every REDRIVE_BATCH records or COMMIT_EVERY seconds.
Killed mid-way, the open transaction is aborted when the redrive starts again (its new
producer fences the old), and it resumes after the last commit: a read_committed
consumer (the pipeline is one) sees each record once.

Within a redrive an original record (topic, partition, offset) is sent once, however
often it was dead-lettered; on resume the entries before the last commit are read
again to learn which were sent. An entry already replayed `max_replays` times is
skipped, as is one without an original topic, or whose topic does not exist. The DLQ
is read up to its end when the redrive starts: entries that come back meanwhile are
left for a later run, which, under the same name, sends only what is new.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from orders_tui import json_output
from orders_tui.domain.codec import Decoder, decode
from orders_tui.domain.dlq_filter import Filter
from orders_tui.domain.pacing import PACED_LINGER, Pace
from orders_tui.domain.replay_targets import ReplayTargets, ReplayVerdict
from orders_tui.errors import KafkaInterrupted, UserError
from orders_tui.kafka.config import KafkaSettings, make_client
from orders_tui.kafka.delivery import CallStuck, call_within
from orders_tui.kafka.dlq import (
    DlqEntry,
    ScanProgress,
    partitions_of,
    replay_headers,
    scan_dlq,
)
from orders_tui.kafka.producer import make_producer, produce_when_room
from orders_tui.kafka.redrive_log import ensure_redrive_log, read_redrive_log, redrive_log_topic
from orders_tui.kafka.status import CONTROL_TOPIC, STATUS_TOPIC
from orders_tui.visible import visible

REDRIVE_BATCH = 500  # records a transaction
COMMIT_EVERY = 0.5  # seconds: the longest a transaction stays open
TRANSACTION_TIMEOUT = 30.0
# Answers to the resume point's lookup that mean "ask again": a coordinator loading its
# groups after a (re)start, or an offset an aborting transaction still holds.
COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError._TIMED_OUT,
        KafkaError.UNSTABLE_OFFSET_COMMIT,
    }
)
CALL_TIMEOUT = 10.0  # a commit of the redrive's transaction waits this long for the broker
GIVE_UP = 15.0  # ... and is given up on after this, should it ignore that (call_within)


def replay_targets(
    settings: KafkaSettings, allowed: tuple[str, ...] = (), to: str | None = None
) -> ReplayTargets:
    """Where replays from this DLQ may go (domain/replay_targets.py); raises
    TargetRefused for a --to or --allow-topic that can never be one."""
    fleet = {
        STATUS_TOPIC,
        CONTROL_TOPIC,
        os.environ.get("ORDERS_TUI_STATUS_TOPIC", ""),
        os.environ.get("ORDERS_TUI_CONTROL_TOPIC", ""),
    } - {""}
    protected = {settings.dlq_topic, redrive_log_topic(settings.dlq_topic), *fleet}
    return ReplayTargets(settings.topic, protected, allowed, to)


def redrive_name(dlq_topic: str, where: str) -> str:
    """The default name: the same command resumes (and later sends only what is new)."""
    return hashlib.sha256(f"{dlq_topic}\0{where}".encode()).hexdigest()[:12]


@dataclass
class RedriveSummary:
    name: str
    dry_run: bool
    matched: int = 0  # entries the filter picked, this run
    sent: int = 0
    to_topics: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0  # an original record already sent by this redrive
    at_max_replays: int = 0
    no_target: int = 0  # no original topic, or one that does not exist
    # Entries whose original topic a replay may not send to, by that topic.
    not_allowed: Counter[str] = field(default_factory=Counter)
    done_before: int = 0  # sent by an earlier, interrupted run of this redrive
    cancelled: bool = False
    seconds: float = 0.0
    # Where the records it sent end, per target partition: once the pipeline's group
    # has committed past these, every one was consumed.
    target_ends: dict[tuple[str, int], int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "dry_run": self.dry_run,
            "matched": self.matched,
            "sent": self.sent,
            "to_topics": dict(self.to_topics.most_common()),
            "skipped_duplicates": self.duplicates,
            "skipped_at_max_replays": self.at_max_replays,
            "skipped_no_target": self.no_target,
            "skipped_not_allowed": sum(self.not_allowed.values()),
            "not_allowed_topics": dict(self.not_allowed.most_common()),
            "sent_before_resume": self.done_before,
            "target_ends": [[t, p, o] for (t, p), o in sorted(self.target_ends.items())],
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
        }

    def describe(self) -> str:
        """The summary as `dlq replay` prints it (the workbench shows it on one line)."""
        verb = "would send" if self.dry_run else "sent"
        targets = ", ".join(f"{visible(t)} {n:,}" for t, n in self.to_topics.most_common())
        lines = [
            f"redrive {self.name}{' (dry run)' if self.dry_run else ''}: "
            f"{self.matched:,} entries matched · {verb} {sum(self.to_topics.values()):,}"
            + (f" ({targets})" if targets else ""),
            f"skipped: {self.duplicates:,} duplicates of an original already sent · "
            f"{self.at_max_replays:,} at --max-replays · {self.no_target:,} without an "
            "existing original topic",
        ]
        if self.not_allowed:
            refused = ", ".join(f"{visible(t)} {n:,}" for t, n in self.not_allowed.most_common(5))
            more = len(self.not_allowed) - 5
            lines.append(
                f"not sent: {sum(self.not_allowed.values()):,} naming a topic the pipeline does "
                f"not read ({refused}{f', and {more} more' if more > 0 else ''}); "
                "--allow-topic TOPIC or --to TOPIC sends them"
            )
        if self.done_before:
            lines.append(f"resumed: {self.done_before:,} sent by an earlier run of this redrive")
        if self.cancelled:
            lines.append("stopped early: run the same command again to resume")
        lines.append(f"{self.seconds:.1f} s")
        return "\n".join(lines)


def _original_key(entry: DlqEntry) -> tuple[object, ...]:
    topic, partition, offset = entry.original
    if partition is None or offset is None:
        return ("dlq", entry.partition, entry.offset)  # cannot tell copies apart: its own
    return (topic, partition, offset)


class Redrive:
    def __init__(
        self,
        settings: KafkaSettings,
        where: Filter,
        name: str,
        max_replays: int,
        targets: ReplayTargets,
        rate: float | None = None,
        dry_run: bool = False,
        decoder: Decoder = decode,
        progress: ScanProgress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.where = where
        self.summary = RedriveSummary(name, dry_run)
        self.where_text = getattr(where, "text", "selection")
        self.started_ms = int(time.time() * 1000)
        self.max_replays = max_replays
        self.targets = targets
        self.rate = rate
        self.decoder = decoder
        self.progress = progress or ScanProgress()
        self.cancel = cancel or threading.Event()
        self.group = f"orders-tui-redrive-{name}"
        self._sent_keys: set[tuple[object, ...]] = set()
        self._topics: dict[str, int] = {}  # partitions by topic

    def run(self) -> RedriveSummary:
        started = time.monotonic()
        consumer = self._consumer(self.group)
        try:
            # A killed run's transaction may still be open, and the resume point waits on
            # it: fence and abort it first, or the lookup times out under load.
            producer = None if self.summary.dry_run else self._transactional_producer()
            resume = self._committed(consumer)
            if resume:
                self._learn_what_was_sent(resume)
                earlier = read_redrive_log(self.settings).get(self.summary.name)
                if earlier is not None:
                    self.started_ms = earlier.get("started", self.started_ms)
                    for topic, partition, end in earlier.get("target_ends", []):
                        self.summary.target_ends[topic, partition] = end
            if not self.summary.dry_run:
                ensure_redrive_log(self.settings)
            if self.summary.dry_run:
                self._plan(consumer, resume)
            else:
                self._send(producer, consumer, resume)
        except KafkaException as exc:  # the broker went away mid-way, say
            raise KafkaInterrupted(
                f"redrive {self.summary.name} stopped: {exc.args[0].str()}; nothing after "
                "its last commit was sent: run the same command again to resume"
            ) from None
        finally:
            consumer.close()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    # ---- reading ----

    def _consumer(self, group: str) -> Consumer:
        return make_client(
            Consumer,
            self.settings.client_config(
                **{
                    "group.id": group,
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed",
                }
            ),
        )

    def _committed(self, consumer: Consumer) -> dict[int, int]:
        topic = self.settings.dlq_topic
        partitions = [TopicPartition(topic, p) for p in partitions_of(consumer, topic)]
        if not partitions:
            raise UserError(f"topic {topic!r} does not exist (nothing dead-lettered yet?)")
        # As long as a transaction may stay open: an offset it holds is not stable.
        deadline = time.monotonic() + TRANSACTION_TIMEOUT
        while True:
            try:
                committed = consumer.committed(partitions, timeout=CALL_TIMEOUT)
                return {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
            except KafkaException as exc:
                # A broker just started or restarted answers "not coordinator" while it
                # loads its groups: ask again for a while.
                error: KafkaError = exc.args[0]
                waiting = error.retriable() or error.code() in COORDINATOR_NOT_READY
                if not waiting or time.monotonic() >= deadline:
                    raise KafkaInterrupted(
                        f"cannot read where redrive {self.summary.name} got to: {error.str()}"
                        + ("; try again once the broker answers" if waiting else "")
                    ) from None
                time.sleep(0.5)

    def _learn_what_was_sent(self, resume: dict[int, int]) -> None:
        """Entries before the resume point that this redrive would have sent: the
        originals it did send."""
        reader = self._consumer(f"orders-tui-redrive-reader-{uuid.uuid4().hex[:8]}")
        try:
            for entry in scan_dlq(reader, self.settings.dlq_topic, decoder=self.decoder):
                if entry.offset >= resume.get(entry.partition, 0):
                    continue
                if self.where(entry) and self._verdict(entry) == "send":
                    self._sent_keys.add(_original_key(entry))
                    self.summary.done_before += 1
        finally:
            reader.close()

    def _verdict(self, entry: DlqEntry) -> str:
        verdict = self.targets.verdict(
            entry.original[0], entry.replay_count, self.max_replays, exists=self._partitions
        )
        if verdict is ReplayVerdict.SEND and _original_key(entry) in self._sent_keys:
            return "duplicate"
        return verdict

    def _partitions(self, topic: str) -> int:
        """How many partitions `topic` has; 0 when it does not exist."""
        if topic not in self._topics:
            reader = self._consumer(f"orders-tui-redrive-probe-{uuid.uuid4().hex[:8]}")
            try:
                self._topics[topic] = len(partitions_of(reader, topic))
            finally:
                reader.close()
        return self._topics[topic]

    def _count(self, entry: DlqEntry) -> str:
        verdict = self._verdict(entry)
        summary = self.summary
        summary.matched += 1
        if verdict == "at_max_replays":
            summary.at_max_replays += 1
        elif verdict == "no_target":
            summary.no_target += 1
        elif verdict == "not_allowed":
            summary.not_allowed[entry.original[0]] += 1
        elif verdict == "duplicate":
            summary.duplicates += 1
        else:
            self._sent_keys.add(_original_key(entry))
            summary.to_topics[self.targets.target(entry.original[0])] += 1
        return verdict

    def _plan(self, consumer: Consumer, resume: dict[int, int]) -> None:
        for entry in scan_dlq(
            consumer, self.settings.dlq_topic, resume, self.decoder, self.progress, self.cancel
        ):
            if self.where(entry):
                self._count(entry)
        self.summary.cancelled = self.cancel.is_set()

    # ---- sending, in transactions with the DLQ offsets ----

    def _transactional_producer(self) -> Producer:
        producer = make_producer(
            self.settings,
            **{
                "transactional.id": self.group,
                "transaction.timeout.ms": int(TRANSACTION_TIMEOUT * 1000),
                # Paced, a request every tick cost more than the records (pacing).
                "linger.ms": int(PACED_LINGER * 1000) if self.rate else 20,
            },
        )
        try:
            producer.init_transactions(TRANSACTION_TIMEOUT)  # aborts what a crash left
        except KafkaException as exc:
            raise KafkaInterrupted(
                f"cannot start the redrive's transactions: {exc.args[0].str()}"
            ) from None
        return producer

    def _send(self, producer: Producer, consumer: Consumer, resume: dict[int, int]) -> None:
        topic = self.settings.dlq_topic
        positions: dict[int, int] = {}
        in_batch = 0
        batch_started = time.monotonic()
        pace = Pace(self.rate, time.monotonic()) if self.rate else None
        allowance = 0  # records the pace lets go before it is asked again
        producer.begin_transaction()
        for entry in scan_dlq(consumer, topic, resume, self.decoder, self.progress, self.cancel):
            if self.cancel.is_set():  # at once: the scan looks only between its batches
                break
            positions[entry.partition] = entry.offset + 1
            if self.where(entry) and self._count(entry) == "send":
                while pace is not None and not allowance and not self.cancel.is_set():
                    allowance = pace.owed(time.monotonic())
                    if not allowance:
                        producer.poll(pace.wait(time.monotonic()))
                if pace is not None:
                    allowance = max(0, allowance - 1)
                    pace.sent_now(1)
                self._produce(producer, entry)
                in_batch += 1
            if in_batch >= REDRIVE_BATCH or time.monotonic() - batch_started >= COMMIT_EVERY:
                self._commit(producer, consumer, positions)
                producer.begin_transaction()
                self._log(producer)  # what the last commit covered, in the next one
                in_batch, batch_started = 0, time.monotonic()
        self._commit(producer, consumer, positions)
        self.summary.cancelled = self.cancel.is_set()
        producer.begin_transaction()
        self._log(producer)
        self._commit(producer, consumer, {})

    def _delivered(self, error: KafkaError | None, msg: Message) -> None:
        if error is None:
            place = (msg.topic(), msg.partition())
            self.summary.target_ends[place] = max(
                self.summary.target_ends.get(place, 0), msg.offset() + 1
            )

    def _log(self, producer: Producer) -> None:
        """This redrive's record in the redrive log (compacted, keyed by name), which
        `dlq redrives` reads: what it sent, and where those records end."""
        summary = self.summary
        record = {
            **summary.to_dict(),
            "where": self.where_text,
            "started": self.started_ms,
            "updated": int(time.time() * 1000),
        }
        record["sent"] = summary.sent + summary.done_before
        producer.produce(
            redrive_log_topic(self.settings.dlq_topic),
            json_output.dumps(record).encode(),
            summary.name.encode(),
        )

    def _produce(self, producer: Producer, entry: DlqEntry) -> None:
        headers = replay_headers(entry, self.summary.name)
        original_topic, original_partition, _ = entry.original
        target = self.targets.target(original_topic)
        placed = self.targets.partition(
            original_topic, original_partition, self._partitions(target)
        )
        where = {} if placed is None else {"partition": placed}
        produce_when_room(
            producer,
            target,
            entry.value,
            entry.key,
            headers=headers,
            on_delivery=self._delivered,
            **where,
        )
        self.summary.sent += 1

    def _commit(self, producer: Producer, consumer: Consumer, positions: dict[int, int]) -> None:
        topic = self.settings.dlq_topic
        try:
            if positions:
                call_within(
                    GIVE_UP,
                    producer.send_offsets_to_transaction,
                    [TopicPartition(topic, p, o) for p, o in sorted(positions.items())],
                    consumer.consumer_group_metadata(),
                    CALL_TIMEOUT,
                )
            call_within(GIVE_UP, producer.commit_transaction, CALL_TIMEOUT)
        except (KafkaException, CallStuck) as exc:
            why = exc.args[0].str() if isinstance(exc, KafkaException) else str(exc)
            raise KafkaInterrupted(
                f"the redrive's transaction failed ({why}): nothing after the last commit "
                "was sent; run the same command again to resume"
            ) from None
