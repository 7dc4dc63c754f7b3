"""The redrive log (`<dlq-topic>-redrives`, compacted: each redrive's latest totals by
name), and what became of each redrive's records, as `dlq redrives` shows it."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from orders_tui.errors import KafkaInterrupted
from orders_tui.kafka.config import KafkaSettings, make_client
from orders_tui.kafka.dlq import REDRIVE_ID, dlq_reader, scan_dlq
from orders_tui.visible import visible


def redrive_log_topic(dlq_topic: str) -> str:
    return f"{dlq_topic}-redrives"


def ensure_redrive_log(settings: KafkaSettings) -> None:
    """The redrive log: compacted, one record per redrive name (its latest totals)."""
    from confluent_kafka.admin import NewTopic

    from orders_tui.kafka.topics import admin_client, create_when_ready

    topic = redrive_log_topic(settings.dlq_topic)
    admin, _ = admin_client(settings)
    if topic in admin.list_topics(timeout=10).topics:
        return
    log = NewTopic(topic, 1, settings.replication_factor, config={"cleanup.policy": "compact"})
    for error in create_when_ready(admin, [log], timeout=10).values():
        raise KafkaInterrupted(f"cannot create the redrive log {topic!r}: {error.str()}")


def read_redrive_log(settings: KafkaSettings) -> dict[str, dict]:
    """Each redrive's latest record from the redrive log, by name (empty without one)."""
    topic = redrive_log_topic(settings.dlq_topic)
    reader = dlq_reader(settings)
    latest: dict[str, dict] = {}
    try:
        for entry in scan_dlq(reader, topic):
            if entry.key is not None and entry.value:
                with contextlib.suppress(ValueError):
                    latest[entry.key.decode("utf-8", "replace")] = json.loads(entry.value)
    finally:
        reader.close()
    return latest


@dataclass
class RedriveOutcome:
    """What became of a redrive's records: sent, back on the DLQ (their entries carry its
    redrive_id), and processed: the rest, once `group` has committed past every one."""

    name: str
    where: str
    started_ms: int
    sent: int
    dead_lettered_again: int
    group: str
    pending_partitions: int

    @property
    def processed(self) -> int:
        return self.sent - self.dead_lettered_again

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "where": self.where,
            "started": self.started_ms,
            "sent": self.sent,
            "dead_lettered_again": self.dead_lettered_again,
            "consumed": self.pending_partitions == 0,
            "processed": self.processed if self.pending_partitions == 0 else None,
            "group": self.group,
        }

    def describe(self) -> str:
        """One line, as `dlq redrives` prints it."""
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_ms / 1000))
        line = (
            f"redrive {started} {visible(self.name)}"
            + (f" ({visible(self.where)})" if self.where else "")
            + f": {self.sent:,} sent · {self.dead_lettered_again:,} dead-lettered again"
        )
        if self.pending_partitions:
            return line + (
                f" · not all consumed yet by {visible(self.group)} "
                f"({self.pending_partitions} target partitions behind)"
            )
        return line + f" · {self.processed:,} processed"


def redrive_outcomes(settings: KafkaSettings, group: str) -> list[RedriveOutcome]:
    """Every redrive of the DLQ in its log, oldest first. Records a redrive sent that
    failed again and now wait in a retry topic count as processed until they come back."""
    log = read_redrive_log(settings)
    if not log:
        return []
    back: Counter[str] = Counter()
    reader = dlq_reader(settings)
    try:
        for entry in scan_dlq(reader, settings.dlq_topic):
            name = entry.header(REDRIVE_ID)
            if name in log:
                back[name] += 1
    finally:
        reader.close()
    places = {(t, p) for record in log.values() for t, p, _ in record.get("target_ends", [])}
    committed: dict[tuple[str, int], int] = {}
    if places:
        member = make_client(
            Consumer, settings.client_config(**{"group.id": group, "enable.auto.commit": False})
        )
        try:
            found = member.committed([TopicPartition(t, p) for t, p in sorted(places)], 10)
            committed = {(tp.topic, tp.partition): tp.offset for tp in found}
        finally:
            member.close()
    outcomes = [
        RedriveOutcome(
            name,
            record.get("where", ""),
            record.get("started", 0),
            record.get("sent", 0),
            back[name],
            group,
            sum(
                1 for t, p, end in record.get("target_ends", []) if committed.get((t, p), -1) < end
            ),
        )
        for name, record in log.items()
    ]
    return sorted(outcomes, key=lambda o: o.started_ms)
