"""The one boundary between an engine and a front end. The front end reads `view()`, an
immutable snapshot the engine's side builds from state its threads own, drains `events`
at its own pace, and asks with typed commands (`send`, commands.py); it never reads an
engine's live state. Three engines implement it: `Engine` (the pipeline on the
dashboard's threads), `EngineProcess` (the same in a child process) and `Observer` (a
fleet that consumes elsewhere, watched without joining its group)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from orders_tui.domain.member_status import Fleet
from orders_tui.domain.stats import PipelineStats
from orders_tui.kafka.commands import EngineCommand
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.engine_config import EngineOptions
from orders_tui.kafka.events import EventQueue


@dataclass(frozen=True)
class EngineView:
    """An engine at one moment. Its parts are copies, never changed after it is made."""

    stats: PipelineStats = field(default_factory=PipelineStats)
    lag: Mapping[int, int] = field(default_factory=dict)  # per source partition, committed
    connected: bool = False
    streaming: bool = False  # the `P` stream is on
    stream_waiting: bool = False  # ... and waits for Kafka
    produced: int = 0
    paused: bool = False  # pause requested: the header shows it at once
    pipeline_paused: bool = False  # pause in effect
    fleet: Fleet | None = None  # the group's members as their status records say
    ended: str | None = None  # why the engine ended unasked (a crash, a kill)


class EngineApi(Protocol):
    settings: KafkaSettings
    options: EngineOptions
    events: EventQueue  # drained by the front end at its own pace

    def view(self) -> EngineView: ...

    def send(self, command: EngineCommand) -> None:
        """Ask; never waits on Kafka."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> None:
        """Stop; a pipeline commits what is done."""
