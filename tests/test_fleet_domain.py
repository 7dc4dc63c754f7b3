"""The status record's format and what a watcher makes of a group's records (no Kafka)."""

from __future__ import annotations

import dataclasses
import io
import json

import fastavro
import pytest

from orders_tui.domain.member_status import (
    Fleet,
    MemberStatus,
    StatusFormatError,
    decode_status,
    encode_status,
    member_state,
)
from orders_tui.kafka.status import Command
from orders_tui.ui.panes.aggregates import lag_bars, lag_line

NOW = 1_800_000_000.0


def status(member: str, age: float = 0.5, state: str = "running", **figures) -> MemberStatus:
    values = dict(
        group="g", member=member, host="h", pid=1, version="0.1.0", state=state,
        updated_ms=int((NOW - age) * 1000), paused=False, control_seq=-1, partitions=[0],
        retry_partitions=3, lag=0, retries_pending=0, orders_per_second=10.0, consumed=0,
        processed=0, retry_attempts=0, recovered=0, dead_lettered={}, total_price=0.0,
        min_price=None, max_price=None,
    )  # fmt: skip
    values.update(figures)
    return MemberStatus(**values)


def test_a_status_record_survives_the_wire_and_is_read_by_plain_fastavro():
    sent = status("h-0", consumed=12, processed=10, dead_lettered={"permanent": 2},
                  total_price=1234.5, min_price=5.5, max_price=999.0,
                  partitions=[0, 2])  # fmt: skip
    value = encode_status(sent)
    assert decode_status(value) == sent
    # Any Avro reader with the published schema reads it after the format byte.
    with open("schemas/member_status.avsc") as schema_file:
        schema = fastavro.parse_schema(json.load(schema_file))
    assert value[0] == 1
    record = fastavro.schemaless_reader(io.BytesIO(value[1:]), schema, schema)
    assert record["processed"] == 10 and record["dead_lettered"] == {"permanent": 2}
    assert len(value) < 200


@pytest.mark.parametrize("value", [b"", b"\x02whatever", b"\x01\xff\xff\xff"])
def test_a_record_of_another_format_or_broken_is_refused(value):
    with pytest.raises(StatusFormatError):
        decode_status(value)


def test_the_fleet_sums_live_members_only_and_names_stale_and_stopped_ones():
    fleet = Fleet("g")
    fleet.update(status("a", processed=100, consumed=110, total_price=1000.0, min_price=5.0,
                        max_price=900.0, dead_lettered={"permanent": 10}, retry_attempts=4,
                        recovered=1))  # fmt: skip
    fleet.update(status("b", processed=50, consumed=60, total_price=600.0, min_price=7.0,
                        max_price=990.0, dead_lettered={"permanent": 8, "deserialization": 2},
                        retry_attempts=3, recovered=2))  # fmt: skip
    fleet.update(status("c", age=3.5, processed=1_000))  # silent for 3.5 s: stale
    fleet.update(status("d", state="stopped", processed=2_000))
    fleet.update(dataclasses.replace(status("x", processed=7), group="other"))  # not ours

    totals = fleet.totals(NOW)
    assert (totals.processed, totals.consumed) == (150, 170)
    assert totals.total_price == 1600.0 and totals.average_price == pytest.approx(1600 / 150)
    assert (totals.min_price, totals.max_price) == (5.0, 990.0)
    assert totals.dead_lettered_by_type == {"permanent": 18, "deserialization": 2}
    assert (totals.retry_attempts, totals.recovered) == (7, 3)
    assert fleet.orders_per_second(NOW) == 20.0
    assert [(m.member, member_state(m, NOW)) for m in fleet.rows(NOW)] == [
        ("a", "running"), ("b", "running"), ("c", "stale"), ("d", "stopped"),
    ]  # fmt: skip


def test_lag_reads_on_one_line_at_24_partitions_worst_first():
    lag = {p: p * 10 for p in range(24)}  # p23 is furthest behind
    line = lag_line(lag).plain
    assert "\n" not in line
    assert line.startswith(f"lag {sum(lag.values()):,}")
    assert "worst p23 230, p22 220, p21 210" in line and "(24 partitions)" in line
    bars = lag_bars(lag).plain.split("\n")
    assert bars[0] == "lag by partition"
    assert [row.split()[0] for row in bars[1:]] == [f"p{p}" for p in range(23, -1, -1)]
    assert bars[1].count("█") == 12 and "█" not in bars[-1]  # scaled to the worst


@pytest.mark.parametrize("value", [b"[1, 2]", b'"paused"', b"\xff\xfe", b"{}", b'{"seq": 1}',
                                   b'{"seq": "1", "paused": true}'])  # fmt: skip
def test_anything_but_a_fleet_command_on_the_control_topic_is_refused_as_such(value):
    """Others may write to the control topic: what is not a command is skipped
    (ValueError), never a crash of the thread that follows it."""
    with pytest.raises(ValueError):
        Command.decode(value)
    assert Command.decode(b'{"seq": 3, "paused": true, "by": "h"}') == Command(3, True, "h")
