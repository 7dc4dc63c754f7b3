"""What the pipeline keeps about a record between reading it and its checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.domain.order import Order
from orders_tui.domain.routing import ErrorType
from orders_tui.kafka.dlq import Headers
from orders_tui.kafka.events import OrderState


@dataclass(frozen=True, slots=True)
class Finished:
    """What happened to one order, for an outcome log (`--outcomes`). The coordinates
    are the source record's, also for an order finished from a retry topic."""

    partition: int
    offset: int
    order_id: str
    outcome: OrderState  # processed | dead_lettered
    attempts: int
    price: float | None
    error_type: str = ""
    product: str | None = None  # None when the value did not decode


class Letter(NamedTuple):
    """A retry or DLQ record on its way: what finishing its order needs once it is
    durable. No headers: held until the checkpoint, they cost garbage-collector time."""

    tracker: PartitionOffsets
    offset: int  # in the topic it was consumed from
    error_type: ErrorType | None  # None: a retry record
    attempts: int
    order: Order | None
    key: bytes | None
    partition: int  # the source record's coordinates
    source_offset: int


# tuple.__new__ skips the NamedTuple's Python-level __new__ (a hot path)
new_letter = tuple.__new__


class Failed(NamedTuple):
    """A record whose attempt failed, and where it came from."""

    tracker: PartitionOffsets
    offset: int  # in the topic it was consumed from
    value: bytes | None
    key: bytes | None
    own_headers: Headers
    topic: str  # the source record's coordinates
    partition: int
    source_offset: int
    timestamp: int
    first_failure_ms: int
