"""What a front end asks of an engine, as typed records: put on the engine's queue, or
sent to the engine's process."""

from __future__ import annotations

from dataclasses import dataclass

from orders_tui.kafka.dlq import DlqEntry


@dataclass(frozen=True)
class Produce:
    count: int


@dataclass(frozen=True)
class SetStreaming:
    on: bool


@dataclass(frozen=True)
class SetPaused:
    paused: bool


@dataclass(frozen=True)
class Replay:
    entry: DlqEntry


@dataclass(frozen=True)
class Stop:
    pass


EngineCommand = Produce | SetStreaming | SetPaused | Replay | Stop
