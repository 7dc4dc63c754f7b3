"""The routing decision for one record's attempt, with no Kafka client or stand-in: a
record's bytes, its attempt and the rules in; where it goes out. Expected values follow
the README's rules, written out here."""

from __future__ import annotations

import io
import json
import random

import fastavro
import pytest

from orders_tui.domain.codec import Decoder, WriterSchemaUnavailable
from orders_tui.domain.order import Order
from orders_tui.domain.retry import Backoff
from orders_tui.domain.routing import (
    DeadLetter,
    ErrorType,
    Processed,
    Retry,
    Routing,
    WaitForRegistry,
)
from orders_tui.domain.rules import FailureRules

SCHEMA = fastavro.parse_schema(json.load(open("schemas/order.avsc")))  # noqa: SIM115
RULES = FailureRules(max_retries=3)
BACKOFF = Backoff(base=0.5, multiplier=2.0, cap=30.0, jitter=0.0)  # no jitter: exact delays


def avro(order_id: str, price: float, product: str = "Lamp") -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, SCHEMA, {"orderId": order_id, "product": product, "price": price}
    )
    return out.getvalue()


def routing(decode=None) -> Routing:
    return Routing(decode or Decoder(), RULES, BACKOFF, random.Random(1))


def a_transient_id_failing(times: int) -> str:
    """An order id whose transient failures last `times` attempts (found by trying)."""
    return next(f"id-{n}" for n in range(1000) if RULES.failing_attempts(f"id-{n}") == times)


def test_an_order_within_the_rules_is_processed_on_its_first_attempt():
    assert routing().route(avro("a", 100.0), 1) == Processed(Order("a", "Lamp", 100.0))


def test_above_the_permanent_threshold_goes_to_the_dlq_at_once_saying_why():
    decision = routing().route(avro("b", 1500.0), 1)
    assert type(decision) is DeadLetter
    assert (decision.error_type, decision.attempt) == (ErrorType.PERMANENT, 1)
    assert "1500.00" in decision.reason and "1000.00" in decision.reason


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_transient_failure_with_attempts_left_is_retried_after_the_backoff(attempt):
    order_id = a_transient_id_failing(4)  # fails every attempt: retries run out
    decision = routing().route(avro(order_id, 20.0), attempt)
    assert type(decision) is Retry
    assert decision.attempt == attempt
    assert decision.delay == 0.5 * 2 ** (attempt - 1)  # 0.5 s, 1 s, 2 s


def test_the_last_attempt_failing_is_dead_lettered_as_retries_exhausted():
    order_id = a_transient_id_failing(4)
    decision = routing().route(avro(order_id, 20.0), 4)
    assert type(decision) is DeadLetter
    assert decision.error_type is ErrorType.RETRIES_EXHAUSTED
    assert decision.reason.startswith("retries exhausted after 4 attempts: ")
    assert decision.order == Order(order_id, "Lamp", 20.0)


def test_a_transient_order_recovers_once_its_failing_attempts_are_past():
    order_id = a_transient_id_failing(2)
    assert type(routing().route(avro(order_id, 20.0), 2)) is Retry
    assert routing().route(avro(order_id, 20.0), 3) == Processed(Order(order_id, "Lamp", 20.0))


def test_undecodable_bytes_are_dead_lettered_as_deserialization_without_an_order():
    decision = routing().route(b"\x00\x01 not avro", 2)
    assert type(decision) is DeadLetter
    assert (decision.error_type, decision.attempt, decision.order) == (
        ErrorType.DESERIALIZATION,
        2,
        None,
    )


def test_a_schema_the_registry_cannot_give_now_waits_and_is_never_dead_lettered():
    def registry_away(value: bytes | None) -> Order:
        raise WriterSchemaUnavailable("registry at http://127.0.0.1:1 refused the connection")

    decision = routing(registry_away).route(b"\x00\x00\x00\x00\x07rest", 1)
    assert decision == WaitForRegistry("registry at http://127.0.0.1:1 refused the connection")
