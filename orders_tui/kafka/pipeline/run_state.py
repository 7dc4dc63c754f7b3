"""What the roles of one pipeline run share. Owned by the pipeline's thread: other
threads only set `want_paused`, `stopping` and `interrupt`."""

from __future__ import annotations

import threading
import time

from confluent_kafka import TopicPartition

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.domain.stats import PipelineStats
from orders_tui.errors import KafkaRefused, UserError
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.consumer_set import ConsumerSet
from orders_tui.kafka.delivery import Delivery
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.membership import MemberSlot
from orders_tui.kafka.pipeline.records import Letter
from orders_tui.kafka.pipeline.reports import Reports
from orders_tui.kafka.pipeline.tuning import CAREFUL_SECONDS

Key = tuple[str, int]  # (topic, partition)


class RunState:
    def __init__(self, settings: KafkaSettings, config: EngineConfig, reports: Reports) -> None:
        self.settings = settings
        self.config = config
        self.reports = reports
        self.stats = PipelineStats()
        self.retry_topics = config.retry_topics(settings.topic)
        self.draining: list[str] = []  # old shared retry topics with this group's retries
        # Per partition held: which offsets are done, what was stored or committed, and
        # a retry head (or a record waiting for the registry) with when it is due.
        self.trackers: dict[str, dict[int, PartitionOffsets]] = {t: {} for t in self.topics}
        self.stored: dict[Key, int] = {}
        self.committed: dict[Key, int] = {}
        self.waiting: dict[Key, tuple[float, int]] = {}  # due (epoch s), head offset
        self.letters: list[Letter] = []  # written, not yet durable
        self.consumer: ConsumerSet | None = None
        self.delivery: Delivery | None = None
        self.slot: MemberSlot | None = None
        self.paused = False
        self.want_paused = False
        self.stopping = threading.Event()
        # Cuts short a transactional call that hangs; cleared for the last checkpoint,
        # which has its own bound.
        self.interrupt = threading.Event()
        self.fatal: UserError | None = None
        self.producer_broken = ""  # set mid-batch: the producer must be replaced
        self.fenced = ""  # set by an error callback: the consumer must be replaced
        # KIP-848: since when our instance id has been refused as still held, and when
        # the current consumer joined (a rejoin waits INSTANCE_HELD_RETRY after it).
        self.held_since: float | None = None
        self.held_said = False
        self.joined_at = 0.0
        self.joined = False  # holds an assignment (possibly empty) from the group
        self.cooperative = True  # incremental (un)assignment
        self.down_since: float | None = None  # Kafka unreachable since (monotonic)
        self.careful_until = 0.0  # monotonic time until which transactions stay small
        self.last_activity = time.monotonic()

    @property
    def topics(self) -> list[str]:
        """Every topic the pipeline consumes: the source, its retry topics, and the old
        shared retry topics while they hold retries of this group."""
        return [self.settings.topic, *self.retry_topics, *self.draining]

    @property
    def instance_id(self) -> str:
        return self.slot.instance_id if self.slot else ""

    def held(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, parts in self.trackers.items() for p in parts]

    def forget_all(self) -> None:
        """Nothing held: what follows starts from the group's commits."""
        self.trackers = {t: {} for t in self.topics}
        self.stored, self.waiting = {}, {}

    def be_careful(self) -> None:
        self.careful_until = time.monotonic() + CAREFUL_SECONDS

    def refuse(self, exc: KafkaRefused) -> None:
        """The run ends with `exc`, its line said once."""
        if self.fatal is None:
            self.fatal = exc
            self.reports.notice(str(exc), error=True)
        self.stopping.set()
