"""Where the pipeline gets its Kafka clients and sets up its topics.

`KafkaClients` makes the real ones. A unit test of the pipeline's own logic (retries,
offsets, what goes to the DLQ) passes stand-ins, so that logic is tested in milliseconds
without a broker; what Kafka does with the records is tested on the real broker.
"""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings, make_client
from orders_tui.kafka.consumer_set import ConsumerSet, level_instance_id
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.producer import make_producer
from orders_tui.kafka.topics import cluster_metadata, ensure_topics


class KafkaClients:
    fleet = True  # publish status records and obey fleet commands

    def consumer(self, config: dict[str, object]) -> Consumer:
        return make_client(Consumer, config)

    def consumers(self, config: dict[str, object], levels: list[list[str]]) -> ConsumerSet:
        """A consumer per level of topics (see consumer_set), each its own static member."""
        instance_id = str(config["group.instance.id"])
        return ConsumerSet(
            levels,
            lambda level: self.consumer(
                {**config, "group.instance.id": level_instance_id(instance_id, level)}
            ),
        )

    def producer(self, settings: KafkaSettings, **overrides: object) -> Producer:
        return make_producer(settings, **overrides)

    def create_retry_topics(self, settings: KafkaSettings, names: list[str]) -> list[str]:
        """The retry topics, created when missing with the source's partition count (a
        retry topic spreads like its source); a line for each that exists with another.
        The source and DLQ topics are the front end's to create."""
        source = cluster_metadata(settings).topics.get(settings.topic)
        if source is None:
            raise UserError(f"topic {settings.topic!r} does not exist")
        differ: list[str] = []
        ensure_topics(settings, names, len(source.partitions), on_mismatch=differ.append)
        return [f"{line}: retries of a partition spread over fewer members" for line in differ]

    def shared_retry_topics(self, settings: KafkaSettings, config: EngineConfig) -> list[str]:
        """The old shared retry topics of this source topic that exist (never created)."""
        names = config.shared_retry_topics(settings.topic)
        if not names:
            return []
        existing = cluster_metadata(settings).topics
        return [name for name in names if name in existing]
