"""The status record a pipeline publishes every second (`schemas/member_status.avsc`),
and what a watcher makes of a group's records: the fleet.

The value is one format byte, then the record as schemaless Avro (about 150 bytes). A
reader refuses a format byte it does not know rather than misread a newer writer: the
byte changes only when the record does in a way an older reader cannot resolve.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import cache

import fastavro

from orders_tui.domain.schema import member_status_schema
from orders_tui.domain.stats import PipelineStats

FORMAT = 1
STALE_AFTER = 3.0  # seconds without a record (six missed): the member may be gone
RUNNING, STALE, STOPPED = "running", "stale", "stopped"


class StatusFormatError(ValueError):
    """Not a status record this version reads."""


@dataclass(frozen=True)
class MemberStatus:
    group: str
    member: str
    host: str
    pid: int
    version: str
    state: str
    updated_ms: int
    paused: bool
    control_seq: int
    partitions: list[int]
    retry_partitions: int
    lag: int
    retries_pending: int
    orders_per_second: float
    consumed: int
    processed: int
    retry_attempts: int
    recovered: int
    dead_lettered: dict[str, int]
    total_price: float
    min_price: float | None = None
    max_price: float | None = None

    @property
    def key(self) -> bytes:
        return status_key(self.group, self.member)

    def age(self, now: float) -> float:
        return now - self.updated_ms / 1000


def status_key(group: str, member: str) -> bytes:
    return f"{group}/{member}".encode()


@cache
def _parsed() -> dict:
    return fastavro.parse_schema(member_status_schema())


def encode_status(status: MemberStatus) -> bytes:
    out = io.BytesIO()
    out.write(bytes([FORMAT]))
    fastavro.schemaless_writer(out, _parsed(), status.__dict__)
    return out.getvalue()


def decode_status(value: bytes) -> MemberStatus:
    if not value or value[0] != FORMAT:
        got = f"format byte {value[0]}" if value else "an empty value"
        raise StatusFormatError(f"not a status record of format {FORMAT} ({got})")
    try:
        record = fastavro.schemaless_reader(io.BytesIO(value[1:]), _parsed(), _parsed())
    except Exception as exc:  # fastavro raises many kinds on bad bytes
        raise StatusFormatError(f"a status record that does not decode: {exc}") from None
    return MemberStatus(**record)


@dataclass
class Fleet:
    """A group's members as their latest status records say. Live members (running, a
    record within STALE_AFTER seconds) make the totals; the others are listed as stale
    or stopped."""

    group: str
    members: dict[str, MemberStatus] = field(default_factory=dict)

    def update(self, status: MemberStatus) -> None:
        if status.group == self.group:
            self.members[status.member] = status

    def live(self, now: float) -> list[MemberStatus]:
        return [m for m in self.members.values() if member_state(m, now) == RUNNING]

    def totals(self, now: float) -> PipelineStats:
        """The live members' figures summed, as one pipeline's (its rate excepted)."""
        stats = PipelineStats()
        for m in self.live(now):
            stats.consumed += m.consumed
            stats.processed += m.processed
            stats.retry_attempts += m.retry_attempts
            stats.recovered += m.recovered
            stats.total_price += m.total_price
            if m.min_price is not None:
                stats.min_price = min(stats.min_price, m.min_price)
            if m.max_price is not None:
                stats.max_price = max(stats.max_price, m.max_price)
            stats.dead_lettered_by_type.update(m.dead_lettered)
        return stats

    def orders_per_second(self, now: float) -> float:
        return math.fsum(m.orders_per_second for m in self.live(now))

    def rows(self, now: float) -> list[MemberStatus]:
        """Every member known, live first, then by name."""
        return sorted(
            self.members.values(), key=lambda m: (member_state(m, now) != RUNNING, m.member)
        )


def member_state(status: MemberStatus, now: float) -> str:
    """running, stopped (it said so), or stale (silent for STALE_AFTER seconds)."""
    if status.state == STOPPED:
        return STOPPED
    return STALE if status.age(now) > STALE_AFTER else RUNNING
