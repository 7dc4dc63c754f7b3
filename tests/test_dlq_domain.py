"""The DLQ workbench's domain: failure conventions, the filter language, triage."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from orders_tui.domain.dlq_filter import FilterError, parse_filter, parse_time
from orders_tui.domain.failure import Convention, Failure, read_failure
from orders_tui.domain.order import Order
from orders_tui.domain.triage import Triage, normalised_reason

# ---- conventions, built byte for byte from each project's documented format ----

LISTENER_FAILED = b"org.springframework.kafka.listener.ListenerExecutionFailedException"
SPRING = [
    ("kafka_dlt-original-topic", b"payments"),
    ("kafka_dlt-original-partition", struct.pack(">i", 7)),  # Java int, big-endian
    ("kafka_dlt-original-offset", struct.pack(">q", 1234567890123)),  # Java long
    ("kafka_dlt-original-timestamp", struct.pack(">q", 1795800000000)),
    ("kafka_dlt-original-timestamp-type", b"CreateTime"),
    ("kafka_dlt-exception-fqcn", LISTENER_FAILED),
    ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
    ("kafka_dlt-exception-message", b"Listener failed; amount must be positive"),
    ("kafka_dlt-exception-stacktrace", b"java.lang.IllegalStateException: ...\n\tat ..."),
]  # fmt: skip
CONNECT = [
    ("__connect.errors.topic", b"inventory"),
    ("__connect.errors.partition", b"2"),
    ("__connect.errors.offset", b"99"),
    ("__connect.errors.connector.name", b"jdbc-sink"),
    ("__connect.errors.task.id", b"0"),
    ("__connect.errors.stage", b"VALUE_CONVERTER"),
    ("__connect.errors.class.name", b"io.confluent.connect.avro.AvroConverter"),
    ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
    ("__connect.errors.exception.message", b"Unknown magic byte!"),
]  # fmt: skip
STREAMS = [
    ("__streams.errors.exception", b"org.apache.kafka.common.errors.SerializationException"),
    ("__streams.errors.message", b"Size of data received by IntegerDeserializer is not 4"),
    ("__streams.errors.stacktrace", b"..."),
    ("__streams.errors.topic", b"clicks"),
    ("__streams.errors.partition", b"3"),
    ("__streams.errors.offset", b"2"),
]  # fmt: skip
OURS = [
    ("source", b"web"),
    ("error_reason", b"price 1374.34 is above the permanent-failure threshold 1000.00"),
    ("error_type", b"permanent"),
    ("original_topic", b"orders"),
    ("original_partition", b"1"),
    ("original_offset", b"42"),
    ("original_timestamp", b"1795800000123"),
    ("replay_count", b"2"),
]


def test_spring_headers_read_with_binary_int_and_long_and_the_cause_as_the_type():
    """Spring's listener container wraps every listener exception in a
    ListenerExecutionFailedException: the class that says what failed is the cause."""
    failure = read_failure(SPRING)
    assert failure == Failure(
        Convention.SPRING,
        "java.lang.IllegalStateException",
        "Listener failed; amount must be positive",
        "payments", 7, 1234567890123, 1795800000000, 0,
    )  # fmt: skip


def test_spring_3_3_naming_the_exception_its_own_cause_and_a_blank_message_read_clean():
    """Spring 3.3 writes -cause-fqcn even when the cause is the exception itself; an
    exception without a message leaves a leading space. Neither shows in the reason."""
    own_cause = [*SPRING[:5], ("kafka_dlt-exception-fqcn", b"java.lang.IllegalArgumentException"),
                 ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalArgumentException"),
                 ("kafka_dlt-exception-message", b" bad amount \n")]  # fmt: skip
    failure = read_failure(own_cause)
    assert (failure.error_type, failure.reason) == (
        "java.lang.IllegalArgumentException", "bad amount"
    )  # fmt: skip
    wrapper = b"org.springframework.kafka.listener.TimestampedException"
    timestamped = [*SPRING[:5], ("kafka_dlt-exception-fqcn", wrapper),
                   ("kafka_dlt-exception-cause-fqcn", b"com.example.PaymentDeclined"),
                   ("kafka_dlt-exception-message", b"")]  # fmt: skip
    assert read_failure(timestamped).error_type == "com.example.PaymentDeclined"


def test_spring_binary_numbers_are_shown_as_numbers_everywhere_and_kept_raw_in_json():
    from orders_tui.cli.dlq_commands import format_dlq_line
    from orders_tui.domain.failure import short_type
    from orders_tui.kafka.dlq import DlqEntry

    entry = DlqEntry("orders-dlq", 0, 5, 0, b"k", b"v", SPRING)
    shown = dict(entry.decoded_headers())
    assert shown["kafka_dlt-original-partition"] == "7"
    assert shown["kafka_dlt-original-offset"] == "1234567890123"
    assert shown["kafka_dlt-original-timestamp"] == "1795800000000"
    line = format_dlq_line(entry)
    assert "kafka_dlt-original-partition=7 " in line and "\\x00" not in line
    headers = {h["name"]: h for h in entry.to_json()["headers"]}
    partition = headers["kafka_dlt-original-partition"]
    assert partition["number"] == 7 and partition["value"] == {"text": "\x00\x00\x00\x07"}
    assert "number" not in headers["kafka_dlt-original-topic"]
    assert short_type("java.lang.IllegalStateException") == "IllegalStateException"
    assert short_type("permanent") == "permanent"


def test_connect_and_streams_headers_read_as_text():
    connect = read_failure(CONNECT)
    assert (connect.convention, connect.original) == (Convention.CONNECT, ("inventory", 2, 99))
    assert connect.error_type == "org.apache.kafka.connect.errors.DataException"
    assert connect.reason == "Unknown magic byte!"
    streams = read_failure(STREAMS)
    assert (streams.convention, streams.original) == (Convention.STREAMS, ("clicks", 3, 2))
    assert streams.reason.startswith("Size of data received")


def test_our_headers_and_the_last_of_a_name_wins():
    failure = read_failure([("error_type", b"retries_exhausted"), *OURS])
    assert failure.original == ("orders", 1, 42)
    assert (failure.error_type, failure.replay_count) == ("permanent", 2)
    assert failure.original_timestamp == 1795800000123


@pytest.mark.parametrize(
    "headers",
    [
        [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-partition", b"\x00\x01")],
        [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-offset", b"\xff" * 3)],
        [("original_topic", b"t"), ("original_partition", b"one"), ("original_offset", None)],
        [("__connect.errors.topic", b"\xff\xfe"), ("__connect.errors.partition", b"\xff")],
        [("something", None)],
        [],
    ],
)
def test_malformed_or_unknown_headers_read_as_unknown_never_raise(headers):
    failure = read_failure(headers)
    assert failure.original_partition is None or isinstance(failure.original_partition, int)
    assert failure.original_offset is None


def test_spring_digits_as_text_are_accepted():
    failure = read_failure([("kafka_dlt-original-topic", b"t"),
                            ("kafka_dlt-original-partition", b"12"),
                            ("kafka_dlt-original-offset", b"345")])  # fmt: skip
    assert failure.original == ("t", 12, 345)


# ---- the filter language ----


@dataclass
class Entry:
    """A DLQ entry as the filter sees it (kafka.dlq.DlqEntry has the same shape)."""

    headers: list
    order: Order | None = None
    key: bytes | None = b"k-1"
    partition: int = 0
    offset: int = 5
    timestamp_ms: int = 1795800000000
    failure: Failure = field(init=False)

    def __post_init__(self) -> None:
        self.failure = read_failure(self.headers)


LAMP = Entry(OURS, Order("id-lamp", "Teal Lamp", 1374.34), key=b"id-lamp")
CHAIR = Entry(
    [("error_type", b"deserialization"), ("error_reason", b"not an Order"),
     ("original_topic", b"orders"), ("original_partition", b"0"),
     ("original_offset", b"7"), ("source", b"fuzzer")],
    None, key=None, partition=2, offset=9, timestamp_ms=1795800600000,
)  # fmt: skip
SPRING_ENTRY = Entry(SPRING)


def picks(where: str) -> list[str]:
    matches = parse_filter(where, now=1795800900.0)
    names = {"lamp": LAMP, "chair": CHAIR, "spring": SPRING_ENTRY}
    return [name for name, entry in names.items() if matches(entry)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("", ["lamp", "chair", "spring"]),
        ("type=permanent", ["lamp"]),
        ("type!=permanent", ["chair", "spring"]),
        ("price>1300", ["lamp"]),
        ("price<=1374.34 price>=1374.34", ["lamp"]),
        ("price!=5", ["lamp", "chair", "spring"]),  # no price: only != holds
        ("reason~threshold", ["lamp"]),
        ('reason~"amount must"', ["spring"]),
        ("reason!~threshold", ["chair", "spring"]),
        ("lamp", ["lamp"]),  # a bare word: product, case-insensitive
        ("LISTENER", ["spring"]),
        ("topic=payments", ["spring"]),
        ("partition=7 offset=1234567890123", ["spring"]),
        ("partition<2", ["lamp", "chair"]),
        ("replays>=2", ["lamp"]),
        ("replays=0", ["chair", "spring"]),
        ("header.source=fuzzer", ["chair"]),
        ("header.source~^w", ["lamp"]),
        ("header.missing=x", []),
        ("header.missing!=x", ["lamp", "chair", "spring"]),
        ("key=id-lamp", ["lamp"]),
        ("order=id-lamp product='Teal Lamp'", ["lamp"]),
        ("dlq.partition=2 dlq.offset=9", ["chair"]),
        ("type=deserialization or price>1000", ["lamp", "chair"]),
        ("time>=2026-11-27T00:00 time<-10m", ["lamp", "spring"]),
        ("time>-10m", ["chair"]),
    ],
)
def test_the_filter_picks_what_its_terms_say(where, expected):
    assert picks(where) == expected


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("colour=red", "no field 'colour'"),
        ("price>cheap", "price takes a number"),
        ("price>nan", "finite number"),
        ("reason~(", "not a regular expression"),
        ("type>permanent", "type is text"),
        ("time>yesterday", "time 'yesterday'"),
        ("or type=x", "`or` needs a term on each side"),
        ("type=x or", "`or` needs a term on each side"),
        ('reason~"unclosed', "close the quote"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(where, why):
    with pytest.raises(FilterError, match=why.replace("(", r"\(")):
        parse_filter(where)


def test_a_regex_that_backtracks_in_python_matches_in_linear_time():
    """`(a+)+$` took Python's re more than 30 s on a reason of 35 characters, with
    SIGTERM ignored; RE2 answers at once, on a reason of 35 and of 100,000."""
    for size in (35, 100_000):
        entry = Entry([("error_type", b"permanent"), ("error_reason", b"a" * size + b"!")])
        started = time.perf_counter()
        assert not parse_filter("reason~(a+)+$")(entry)
        assert parse_filter("reason~(a+)+!$")(entry)
        assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("pattern", "why"),
    [("(a)\\1", "invalid escape sequence"), ("(?=a)", "invalid perl operator"),
     ("((a{1000}){1000}){1000}", "invalid repetition size")],
)  # fmt: skip
def test_a_regex_re2_cannot_run_in_linear_time_is_refused_naming_the_term(pattern, why, capfd):
    with pytest.raises(FilterError, match=rf"'reason~.*'.*{why}.*no backreferences"):
        parse_filter(f"reason~'{pattern}'")
    assert capfd.readouterr().err == ""  # said once, by us: RE2 logs nothing


def test_times_are_local_iso_clock_or_relative():
    now = datetime(2026, 11, 27, 14, 30, 15).timestamp()
    assert parse_time("10:42", now) == datetime(2026, 11, 27, 10, 42).timestamp() * 1000
    assert parse_time("10:42:05", now) == datetime(2026, 11, 27, 10, 42, 5).timestamp() * 1000
    assert parse_time("2026-11-26", now) == datetime(2026, 11, 26).timestamp() * 1000
    assert parse_time("-15m", now) == (now - 900) * 1000
    assert parse_time("-1.5h", now) == (now - 5400) * 1000
    assert abs(parse_time("-1d") - (time.time() - 86400) * 1000) < 5000


def test_needs_order_only_when_a_term_reads_the_order():
    assert not parse_filter("type=permanent header.x=1 time>-1h").needs_order
    assert parse_filter("price>5").needs_order and parse_filter("lamp").needs_order


# ---- triage ----


def test_reasons_fold_their_numbers():
    assert normalised_reason("price 1374.34 is above the threshold 1000.00") == (
        "price # is above the threshold #"
    )
    assert normalised_reason("transient band 5.00-50.00: attempt 4 of 4") == (
        "transient band #-#: attempt # of #"
    )
    assert normalised_reason("bad byte 0xff at offset -3.") == "bad byte # at offset -#."


def test_triage_counts_by_type_reason_partition_and_time():
    triage = Triage()
    reasons = ["price 1200.00 is above 1000.00", "price 1300.50 is above 1000.00"]
    for i in range(10):
        failure = read_failure([("error_type", b"permanent"),
                                ("error_reason", reasons[i % 2].encode()),
                                ("original_topic", b"orders"),
                                ("original_partition", str(i % 3).encode())])  # fmt: skip
        triage.add(failure, 1795800000000 + i * 60_000)
    triage.add(read_failure(SPRING), 1795800000000 + 30 * 60_000)
    assert triage.total.count == 11
    assert triage.by_type["permanent"].count == 10
    assert triage.by_type["permanent"].last_ms == 1795800000000 + 9 * 60_000
    assert triage.by_reason["permanent", "price # is above #"].count == 10
    assert triage.by_partition == {"orders[0]": 4, "orders[1]": 3, "orders[2]": 3,
                                   "payments[7]": 1}  # fmt: skip
    counts, start, end = triage.over_time(buckets=31)
    assert sum(counts) == 11 and counts[:10] == [1] * 10 and counts[30] == 1
    assert (end - start) == 31 * 60_000
