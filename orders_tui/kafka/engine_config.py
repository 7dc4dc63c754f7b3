"""How a pipeline is set up: its group, rules, guarantee and topics. Its own module, so
that the front ends, the observer and the commands set one up without importing the
pipeline's."""

from __future__ import annotations

from dataclasses import dataclass, field

from orders_tui.domain.codec import DEFAULT_SCHEMA_ID
from orders_tui.domain.retry import Backoff
from orders_tui.domain.rules import FailureRules
from orders_tui.kafka.config import DEFAULT_GROUP
from orders_tui.kafka.retry_topics import group_retry_prefix, retry_topic_names, shared_retry_prefix
from orders_tui.kafka.status import CONTROL_TOPIC, STATUS_TOPIC


@dataclass
class EngineConfig:
    group: str = DEFAULT_GROUP
    rules: FailureRules = field(default_factory=FailureRules)
    backoff: Backoff = field(default_factory=Backoff)
    exactly_once: bool = True
    retry_topic_prefix: str = ""  # "" means `<topic>-<group>-retry`
    instance_id: str = ""  # "" means a slot of this host (see membership)
    schema_id: int = DEFAULT_SCHEMA_ID  # the Confluent schema id read as schemas/order.avsc
    status_topic: str = STATUS_TOPIC  # where the member's status goes every second
    control_topic: str = CONTROL_TOPIC  # fleet commands it obeys

    def retry_topics(self, source_topic: str) -> list[str]:
        """Where retry n of `source_topic`'s orders waits (see retry_topics)."""
        prefix = self.retry_topic_prefix or group_retry_prefix(source_topic, self.group)
        return retry_topic_names(prefix, self.rules.max_retries)

    def shared_retry_topics(self, source_topic: str) -> list[str]:
        """The retry topics every group shared before they were named per group, which a
        group drains of its own retries; none when --retry-topic-prefix names them."""
        if self.retry_topic_prefix:
            return []
        return retry_topic_names(shared_retry_prefix(source_topic), self.rules.max_retries)


@dataclass
class EngineOptions:
    """What the dashboard's flags set, besides the connection."""

    config: EngineConfig = field(default_factory=EngineConfig)
    batch_size: int = 15
    rate: float = 10.0
    max_replays: int = 3
    partitions: int | None = None  # for topics it creates (DEFAULT_PARTITIONS); given: checked
    seed: int | None = None
