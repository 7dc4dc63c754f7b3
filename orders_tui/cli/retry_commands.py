"""`orders-tui retries`: what waits on a group's retry topics, and on the old shared ones
it drains after an upgrade, read from the group's committed offsets (nothing joins it)."""

from __future__ import annotations

import argparse

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from orders_tui import json_output
from orders_tui.kafka.config import KafkaSettings, make_client
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.topics import cluster_metadata
from orders_tui.visible import visible

TIMEOUT = 10.0


def waiting(
    settings: KafkaSettings, group: str, topics: list[str], committed_only: bool
) -> dict[str, int]:
    """Records of each existing topic the group has not consumed: every record of a
    partition it never committed on, unless `committed_only` (a shared topic, where only
    the partitions it consumed are its)."""
    existing = cluster_metadata(settings).topics
    tps = [TopicPartition(t, p) for t in topics if t in existing for p in existing[t].partitions]
    if not tps:
        return {}
    admin: AdminClient = make_client(AdminClient, settings.client_config())
    committed_future = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, tps)], request_timeout=TIMEOUT
    )[group]
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in committed_future.result(TIMEOUT).topic_partitions
    }
    ends = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in tps},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=TIMEOUT,
    )
    left = {t: 0 for t in topics if t in existing}
    for tp, future in ends.items():
        end = future.result(TIMEOUT).offset
        done = committed.get((tp.topic, tp.partition), -1)
        if done < 0 and committed_only:
            continue
        left[tp.topic] += end - max(done, 0)
    return left


def run_retries(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from orders_tui.domain.rules import FailureRules

    config = EngineConfig(
        group=args.group,
        rules=FailureRules(max_retries=args.max_retries),
        retry_topic_prefix=args.retry_topic_prefix,
    )
    own = waiting(settings, args.group, config.retry_topics(settings.topic), False)
    shared = waiting(settings, args.group, config.shared_retry_topics(settings.topic), True)
    if args.json:
        print(
            json_output.dumps(
                {"group": args.group, "retry_topics": own, "shared_retry_topics": shared}
            )
        )
        return 0
    print(f"group {visible(args.group)}: its retry topics")
    for topic in config.retry_topics(settings.topic):
        count = own.get(topic)
        print(
            f"  {visible(topic)}  " + ("not created yet" if count is None else f"{count:,} waiting")
        )
    if shared:
        print("old shared retry topics (before retry topics were named per group)")
        for topic, count in shared.items():
            note = "drained" if count == 0 else "drained by this group's next consume"
            print(f"  {visible(topic)}  {count:,} waiting ({note})")
    return 0
