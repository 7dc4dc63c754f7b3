"""The retry record's format: what a retry topic holds, read back (no broker)."""

from __future__ import annotations

import pytest

from orders_tui.kafka.retry_topics import NotARetryRecord, RetryState, retry_topic_names


def test_one_retry_topic_per_retry_named_after_the_prefix():
    assert retry_topic_names("orders-retry", 3) == [
        "orders-retry-1",
        "orders-retry-2",
        "orders-retry-3",
    ]
    assert retry_topic_names("x", 0) == []


def test_a_retry_record_keeps_the_source_headers_then_says_where_it_stands():
    source_headers = [("trace", b"abc"), ("error_reason", b"a source header of that name")]
    state = RetryState(2, 1_700_000_000_123, 1_700_000_000_000, "downstream unavailable",
                       "orders", 1, 42, 1_699_999_999_999, source_headers)  # fmt: skip
    headers = state.headers()
    assert headers[:2] == source_headers
    assert headers[2:] == [
        ("error_reason", b"downstream unavailable"),
        ("retry_attempts", b"2"),
        ("retry_due", b"1700000000123"),
        ("retry_first_failure", b"1700000000000"),
        ("original_topic", b"orders"),
        ("original_partition", b"1"),
        ("original_offset", b"42"),
        ("original_timestamp", b"1699999999999"),
    ]
    assert RetryState.parse(headers) == state


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("trace", b"abc")],
        # the right names, a value that is not a number
        [("error_reason", b"x"), ("retry_attempts", b"two"), ("retry_due", b"1"),
         ("retry_first_failure", b"1"), ("original_topic", b"o"),
         ("original_partition", b"0"), ("original_offset", b"0"),
         ("original_timestamp", b"0")],
        # the right names in another order
        [("retry_attempts", b"1"), ("error_reason", b"x"), ("retry_due", b"1"),
         ("retry_first_failure", b"1"), ("original_topic", b"o"),
         ("original_partition", b"0"), ("original_offset", b"0"),
         ("original_timestamp", b"0")],
    ],
)  # fmt: skip
def test_records_not_written_as_retries_are_refused_with_a_reason(headers):
    with pytest.raises(NotARetryRecord, match="retry"):
        RetryState.parse(headers)
