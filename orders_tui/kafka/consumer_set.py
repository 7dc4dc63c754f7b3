"""One group member per topic: how a fleet shares every topic evenly.

The classic protocol's incremental assignor (`cooperative-sticky`) balances the number of
partitions a member holds over all the topics it subscribes to, not each topic: with the
source and its retry topics in one subscription, of two workers on 4-partition topics
one held all 4 source partitions and the other only retry partitions. A member that
subscribes to one topic gets its share of that topic. So the pipeline runs a consumer
per level (the source; retry topic 1; retry topic 2; ...), all in the same group, each a
static member of its own (`<instance>#retry-<n>`), and reads them as one: offsets of
every level are committed in the group, in the same transaction.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

CONSUME_BATCH = 1000  # records dropped a call by release
INSTANCE_SUFFIX = "#retry-"  # a retry level's member: `<instance>#retry-<n>`


def level_instance_id(instance_id: str, level: int) -> str:
    """The group.instance.id of a level's member: the pipeline's own for the source."""
    return instance_id if level == 0 else f"{instance_id}{INSTANCE_SUFFIX}{level}"


def pipeline_instance_id(member_instance_id: str) -> str:
    """The pipeline a member belongs to (its level's suffix removed)."""
    return member_instance_id.split(INSTANCE_SUFFIX, 1)[0]


class ConsumerSet:
    """Consumers, one per level of topics, used as one: calls about a partition go to
    the consumer of its topic; `consume` takes from all."""

    def __init__(self, levels: list[list[str]], make: Callable[[int], Consumer]) -> None:
        self._levels = levels
        self._consumers = [make(level) for level in range(len(levels))]
        self._of_topic = {
            t: c for topics, c in zip(levels, self._consumers, strict=True) for t in topics
        }
        self._subscribed = [False] * len(levels)
        self._left_behind: list[Consumer] = []

    def subscribe(self, topics: list[str], **callbacks: object) -> None:
        """Each consumer subscribes to its level's topics among `topics` (a level with
        none leaves the group)."""
        wanted = set(topics)
        for index, (level, consumer) in enumerate(zip(self._levels, self._consumers, strict=True)):
            mine = [t for t in level if t in wanted]
            if mine:
                consumer.subscribe(mine, **callbacks)
            elif self._subscribed[index]:
                consumer.unsubscribe()
            self._subscribed[index] = bool(mine)

    def consume(self, count: int, timeout: float) -> list[Message]:
        """The retry levels' records (they wait at most a poll), then the source's,
        waiting `timeout` only when nothing came from them."""
        messages: list[Message] = []
        for consumer, subscribed in zip(self._consumers[1:], self._subscribed[1:], strict=True):
            if subscribed:
                messages += consumer.consume(count, 0)
        return messages + self._consumers[0].consume(count, 0 if messages else timeout)

    def consumer_group_metadata(self) -> object:
        # Every level is in the same group: the source member's metadata fences a zombie
        # of this pipeline for all of them.
        return self._consumers[0].consumer_group_metadata()

    def assignment(self) -> list[TopicPartition]:
        return [tp for c in self._consumers for tp in c.assignment()]

    def pause(self, partitions: list[TopicPartition]) -> None:
        for consumer, tps in self._by_consumer(partitions):
            consumer.pause(tps)

    def resume(self, partitions: list[TopicPartition]) -> None:
        for consumer, tps in self._by_consumer(partitions):
            consumer.resume(tps)

    def seek(self, partition: TopicPartition) -> None:
        self._of_topic[partition.topic].seek(partition)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            tp for consumer, tps in self._by_consumer(partitions) for tp in consumer.position(tps)
        ]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        # One group: any member reads every level's commits in one request.
        return self._consumers[0].committed(partitions, timeout=timeout)

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        for consumer, tps in self._by_consumer(offsets):
            consumer.store_offsets(offsets=tps)

    def commit(self, asynchronous: bool = True) -> list[TopicPartition] | None:
        """Each consumer's stored offsets; _NO_OFFSET only when none had any."""
        done: list[TopicPartition] = []
        failed: KafkaException | None = None
        nothing = True
        for consumer in self._consumers:
            try:
                done += consumer.commit(asynchronous=asynchronous) or []
                nothing = False
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._NO_OFFSET:
                    failed, nothing = failed or exc, False
        if failed is not None:
            raise failed
        if nothing:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        return None if asynchronous else done

    def get_watermark_offsets(self, partition: TopicPartition, **kwargs: object) -> tuple:
        return self._of_topic[partition.topic].get_watermark_offsets(partition, **kwargs)

    def release(self, timeout: float) -> int:
        """Before a set being replaced is closed: each consumer unsubscribes, and the
        revoke that brings is served here, while its group handler still answers.
        Returns how many still hold partitions after `timeout`: close() leaves those
        alone. A rebalance event served by close() itself can come after librdkafka's
        group handler has terminated, which drops the (un)assign call the event makes
        without an answer: the call, holding the GIL, waited for good and froze the
        whole process (py-spy, twice, after broker restarts)."""
        for consumer in self._consumers:
            with contextlib.suppress(KafkaException, RuntimeError):
                consumer.unsubscribe()
        deadline = time.monotonic() + timeout
        holding = list(self._consumers)
        while holding:
            for consumer in list(holding):
                try:
                    consumer.consume(CONSUME_BATCH, 0.01)  # serves the revoke; records dropped
                    if not consumer.assignment():
                        holding.remove(consumer)
                except (KafkaException, RuntimeError):  # failed for good: close serves nothing
                    holding.remove(consumer)
            if time.monotonic() >= deadline:
                break
        self._left_behind = holding
        return len(holding)

    def close(self) -> None:
        for consumer in self._consumers:
            if consumer not in self._left_behind:
                consumer.close()

    def _by_consumer(
        self, partitions: list[TopicPartition]
    ) -> list[tuple[Consumer, list[TopicPartition]]]:
        grouped: dict[int, tuple[Consumer, list[TopicPartition]]] = {}
        for tp in partitions:
            consumer = self._of_topic[tp.topic]
            grouped.setdefault(id(consumer), (consumer, []))[1].append(tp)
        return list(grouped.values())
