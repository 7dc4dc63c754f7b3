"""The pipeline's group as the broker sees it: what it has not committed, and which member
holds which partition. Asked of an admin client of its own: on a consumer's connection
such a request waits behind the consumer's fetch (0.5 s a partition)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from orders_tui.kafka.config import KafkaSettings, make_client
from orders_tui.kafka.consumer_set import pipeline_instance_id

Committed = Callable[..., list[TopicPartition]]  # a consumer's committed(partitions, timeout=)


class GroupView:
    def __init__(self, settings: KafkaSettings, group: str) -> None:
        self._settings = settings
        self._group = group
        self._client: AdminClient | None = None

    def admin(self) -> AdminClient:
        if self._client is None:
            self._client = make_client(AdminClient, self._settings.client_config())
        return self._client

    def lag(
        self, topics: list[str], committed: Committed, committed_only: bool = False
    ) -> dict[tuple[str, int], int]:
        """Records of `topics` the group has not committed, per partition, against the end
        a read_committed reader sees (with `committed_only`, only of the partitions the
        group has committed on: those it consumed). KafkaException when the broker does
        not answer."""
        admin = self.admin()
        metadata = admin.list_topics(timeout=5).topics
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in metadata and metadata[topic].error is None
            for p in metadata[topic].partitions
        ]
        ends = admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in tps},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=5,
        )
        lag = {}
        for tp in committed(tps, timeout=5):
            if committed_only and tp.offset < 0:
                continue
            end = ends[TopicPartition(tp.topic, tp.partition)].result(timeout=5).offset
            behind = end - tp.offset if tp.offset >= 0 else end
            if behind > 0:
                lag[tp.topic, tp.partition] = behind
        return lag

    def describe(self) -> Future:
        """The broker's description of the group, asked now, answered later."""
        return self.admin().describe_consumer_groups([self._group])[self._group]

    def owners(self, except_pipeline: str) -> dict[tuple[str, int], str]:
        """Which member of another pipeline holds each partition, as `instance@host`."""
        try:
            members = self.describe().result(5).members
        except Exception:  # a description is a courtesy: without it, lag is still named
            return {}
        owners = {}
        for member in members:
            name = pipeline_instance_id(member.group_instance_id or member.member_id)
            if name == except_pipeline:
                continue
            for tp in member.assignment.topic_partitions:
                owners[tp.topic, tp.partition] = f"{name}@{member.host}"
        return owners
