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


def test_a_retry_record_names_its_group_last_and_one_written_before_reads_without():
    state = RetryState(1, 5, 4, "slow", "orders", 0, 7, 3, [("trace", b"t")], "billing")
    headers = state.headers()
    assert headers[-1] == ("retry_group", b"billing")
    assert RetryState.parse(headers) == state
    before = RetryState(1, 5, 4, "slow", "orders", 0, 7, 3, [("trace", b"t")])
    assert before.headers() == headers[:-1]  # what a retry record was before 2026-12
    assert RetryState.parse(headers[:-1]).group is None


def test_a_groups_retry_topics_are_named_after_the_topic_and_the_group():
    from orders_tui.kafka.retry_topics import group_retry_prefix, shared_retry_prefix

    assert group_retry_prefix("orders", "billing") == "orders-billing-retry"
    assert shared_retry_prefix("orders") == "orders-retry"
    # Characters a topic name cannot hold: replaced, and a hash keeps "a/b" and "a_b" apart.
    odd, plain = group_retry_prefix("orders", "team a/b"), group_retry_prefix("orders", "team_a_b")
    assert odd != plain and odd.startswith("orders-team_a_b-") and odd.endswith("-retry")
    assert all(c.isalnum() or c in "._-" for c in odd)
    long = group_retry_prefix("orders", "g" * 400)
    assert len(f"{long}-999") <= 249 and long.startswith("orders-ggg")
