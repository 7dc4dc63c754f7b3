"""`orders-tui dlq` and the JSON the CLI writes, on the real broker: every field from a
record printed escaped, JSON a strict parser takes, lossless, and a closed pipe ends it
quietly."""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from confluent_kafka import Producer

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from tests.kafka_helpers import cli

pytestmark = pytest.mark.kafka

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title when printed raw
RLO = "\u202e"  # right-to-left override
ZWSP = "\u200b"  # zero-width space
CSI = "\x9b"  # a C1 control: some terminals start an escape sequence on it
RAW = (TITLE, "\x1b", "\x07", RLO, ZWSP, CSI)


def write(settings, records: list[tuple[bytes | None, bytes | None, list]]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for key, value, headers in records:
        producer.produce(settings.dlq_topic, value, key, partition=0, headers=headers)
    assert producer.flush(10) == 0


def strict_json(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not RFC 8259 JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def from_json(data: dict | None) -> bytes | None:
    if data is None:
        return None
    if "text" in data:
        return data["text"].encode()
    return base64.b64decode(data["base64"], validate=True)


def test_text_mode_escapes_every_field_from_a_record(settings):
    hostile_id = f"id{TITLE}{RLO}gpj.exe"
    order = Order(hostile_id, f"Lamp{ZWSP}{CSI}", 20.0)
    write(settings, [
        (hostile_id.encode(), encode(order),
         [(f"evil{TITLE}", b"x"), ("error_reason", f"why{RLO}{ZWSP}".encode())]),
        (None, b"\x00\x01\xff", [("binary", b"\xff\x00"), ("looks-binary", b"0xff00"),
                                 ("null", None), ("empty", b"")]),
    ])  # fmt: skip
    result = cli(settings, "dlq")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for raw in RAW:
        assert raw not in out
    first, second = out.splitlines()
    assert "key='id\\x1b]0;pwned\\x07\\u202egpj.exe'" in first
    assert "order 'id\\x1b]0;pwned\\x07\\u202egpj.exe' 'Lamp\\u200b\\x9b' 20.00" in first
    assert "evil\\x1b]0;pwned\\x07='x'" in first
    assert "error_reason='why\\u202e\\u200b'" in first
    assert "key=null undecodable value 0x0001ff" in second
    # Bytes, text that looks like bytes, null and empty all print differently.
    assert "binary=0xff00 looks-binary='0xff00' null=null empty=''" in second


def test_json_is_strict_and_lossless(settings):
    records = [
        (None, encode(Order("nan-price", "Lamp", math.nan)),
         [("error_reason", b"source's own"), ("dup", b"1"), ("dup", b"2"),
          ("error_reason", b"the failure's")]),
        (b"", b"", [("empty", b""), ("null", None)]),
        (b"\xff\xfe", None, [("binary", b"\xff\x00"), ("looks-binary", b"0xff00"),
                             ("evil", f"{TITLE}{RLO}{CSI}".encode())]),
        (b"k", encode(Order("inf-price", "Lamp", -math.inf)), []),
    ]  # fmt: skip
    write(settings, records)
    result = cli(settings, "dlq", "--json")
    assert result.returncode == 0, result.stderr
    for raw in RAW:
        assert raw not in result.stdout  # escaped as \\uNNNN, so a terminal is safe too
    lines = [strict_json(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(records)
    for line, (key, value, headers) in zip(lines, records, strict=True):
        assert from_json(line["key"]) == key
        assert from_json(line["value"]) == value
        assert [(h["name"], from_json(h["value"])) for h in line["headers"]] == headers
    assert lines[0]["order"]["price"] == "NaN"
    assert lines[3]["order"]["price"] == "-Infinity"
    assert lines[1]["key"] == {"text": ""} and lines[1]["headers"][1]["value"] is None
    assert lines[2]["headers"][0]["value"] == {"base64": "/wA="}
    assert lines[2]["headers"][1]["value"] == {"text": "0xff00"}
    assert lines[2]["value"] is None and lines[1]["value"] == {"base64": ""}
    assert lines[1]["decode_error"] and lines[1]["order"] is None


def test_outcomes_and_the_summary_are_strict_json_with_a_nan_price(settings, group, tmp_path):
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(settings.topic, encode(Order("nan", "Lamp", math.nan)), b"nan")
    producer.produce(settings.topic, encode(Order("ok", "Lamp", 100.0)), b"ok")
    assert producer.flush(10) == 0
    outcomes = tmp_path / "outcomes.jsonl"
    result = cli(settings, "consume", "--headless", "--group", group, "--idle-exit", "1",
                 "--json", "--outcomes", str(outcomes))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = strict_json(result.stdout)
    assert summary["consumed"] == 2 and summary["dead_lettered"] == 1
    by_id = {r["order_id"]: r for r in map(strict_json, outcomes.read_text().splitlines())}
    assert by_id["nan"]["price"] == "NaN" and by_id["nan"]["outcome"] == "dead_lettered"
    assert by_id["ok"]["price"] == 100.0


def test_a_closed_pipe_ends_dlq_quietly(settings):
    line = b"x" * 400  # ~170 KB of output in all: more than a pipe holds
    write(settings, [(b"k", line, [("n", str(i).encode())]) for i in range(400)])
    reader = subprocess.Popen(
        [sys.executable, "-m", "orders_tui", "dlq", "-b", settings.bootstrap_servers,
         "--topic", settings.topic, "--dlq-topic", settings.dlq_topic],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    first = reader.stdout.readline()
    reader.stdout.close()  # what `| head -1` does after its line
    assert reader.wait(timeout=60) == 141
    assert first.startswith(f"{settings.dlq_topic}[0]@0 ".encode())
    assert reader.stderr.read() == b""


def test_limit_stops_after_n_entries_and_aborted_records_never_show(settings):
    """Four committed entries and two written in a transaction that was aborted: a
    read_committed reader sees the four, in order; --limit 3 prints three."""
    aborting = Producer({"bootstrap.servers": settings.bootstrap_servers,
                         "transactional.id": f"{settings.dlq_topic}-aborting"})  # fmt: skip
    aborting.init_transactions(10)
    aborting.begin_transaction()
    for n in range(2):
        aborting.produce(settings.dlq_topic, b"aborted", f"aborted-{n}".encode(), partition=0)
    aborting.flush(10)  # on the topic, uncommitted
    aborting.abort_transaction(10)
    write(settings, [(f"kept-{n}".encode(), b"v", []) for n in range(4)])

    every = cli(settings, "dlq").stdout.splitlines()
    assert [line.split()[1] for line in every] == [f"key='kept-{n}'" for n in range(4)]
    limited = cli(settings, "dlq", "--limit", "3").stdout.splitlines()
    assert limited == every[:3]


class _SilentBroker:
    """A consumer whose broker went quiet after telling it the topic's size."""

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def get_watermark_offsets(self, tp, timeout: float) -> tuple[int, int]:
        return 0, 5

    def assign(self, partitions) -> None:
        pass

    def consume(self, count: int, timeout: float) -> list:
        time.sleep(0.01)
        return []


def test_a_scan_the_broker_stops_answering_ends_with_one_line_saying_what_to_check():
    from orders_tui.errors import UserError
    from orders_tui.kafka.dlq import scan_dlq

    started = time.monotonic()
    with pytest.raises(UserError) as ended:
        list(scan_dlq(_SilentBroker(), "orders-dlq", timeout=0.3))
    assert time.monotonic() - started < 2
    assert ended.value.exit_code == 1  # Kafka's doing, not a bad flag (2)
    assert str(ended.value) == ("reading 'orders-dlq': no answer from Kafka for 0.3 s; check "
                                "that the broker is up, then run it again")  # fmt: skip
