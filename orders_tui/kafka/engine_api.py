"""The one interface a front end talks to: what the dashboard reads and asks of an
engine. Three implement it: `Engine` (the pipeline on the dashboard's threads),
`EngineProcess` (the same in a child process) and `Observer` (a fleet that consumes
elsewhere, watched without joining its group)."""

from __future__ import annotations

from typing import Protocol

from orders_tui.domain.member_status import Fleet
from orders_tui.domain.stats import PipelineStats
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.events import EventQueue


class EngineApi(Protocol):
    settings: KafkaSettings
    config: EngineConfig
    batch_size: int
    rate: float
    max_replays: int
    events: EventQueue  # drained by the front end at its own pace
    lag: dict[int, int]  # per source partition, from the group's committed offsets
    connected: bool
    streaming: bool
    stream_waiting: bool
    produced: int
    ended: str | None  # why the engine ended unasked (a crash, a kill); None while it runs

    @property
    def stats(self) -> PipelineStats: ...

    @property
    def paused(self) -> bool:
        """Pause requested (the header shows it at once)."""

    @property
    def pipeline_paused(self) -> bool:
        """Pause in effect."""

    @property
    def fleet(self) -> Fleet | None:
        """The group's members as their status records say; None for a local engine."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> None:
        """Stop; a pipeline commits what is done."""

    def produce_batch(self, count: int | None = None) -> None: ...

    def toggle_stream(self) -> None: ...

    def toggle_pause(self) -> bool:
        """Pause or resume consumption; True when now paused."""

    def replay(self, entry: DlqEntry) -> bool:
        """Queue a replay of `entry`; False (with a notice) when refused."""
