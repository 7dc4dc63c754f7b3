"""Property tests of the decoder and the failure rules: random bytes, mangled orders and
records written by random other schemas. No exception but DecodeError escapes, every
record ends processed or dead-lettered with a reason, and whatever decodes is what
fastavro reads with Avro schema resolution against schemas/order.avsc."""

from __future__ import annotations

import io
import json
import math
import struct

import fastavro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_tui.domain.codec import DecodeError, Decoder, WireFormat
from orders_tui.domain.encoding import encode
from orders_tui.domain.order import Order
from orders_tui.domain.rules import FailureRules, Outcome
from orders_tui.domain.schema import schema_path

READER = fastavro.parse_schema(json.loads(schema_path().read_text()))
OWN_ID = 1
decode = Decoder([OWN_ID])
RULES = FailureRules()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fastavro_reads(data: bytes) -> Order | None:
    """The reference: what fastavro reads, with schema resolution, or None."""
    try:
        if data.startswith(b"Obj\x01"):
            records = list(fastavro.reader(io.BytesIO(data), reader_schema=READER))
            if len(records) != 1:
                return None
            record = records[0]
        else:
            start = 0
            if data[:1] == b"\x00":
                if len(data) < 5 or struct.unpack(">I", data[1:5])[0] != OWN_ID:
                    return None
                start = 5
            buf = io.BytesIO(data)
            buf.seek(start)
            record = fastavro.schemaless_reader(buf, READER, None)
            if buf.tell() != len(data):
                return None
    except Exception:
        return None
    return Order(record["orderId"], record["product"], float(record["price"]))


def same(a: Order, b: Order) -> bool:
    """Field by field; a NaN price equals a NaN price (bit for bit)."""
    return (a.orderId, a.product, struct.pack("<d", a.price)) == (
        b.orderId,
        b.product,
        struct.pack("<d", b.price),
    )


def final_outcome(data: bytes) -> tuple[str, str]:
    """Where the pipeline's rules send a record in the end, with the reason."""
    try:
        order = decode(data)
    except DecodeError as exc:
        return "dead_lettered", str(exc)
    for attempt in range(1, RULES.max_attempts + 1):
        verdict = RULES.check(order, attempt)
        if verdict.outcome is Outcome.OK:
            return "processed", ""
        if verdict.outcome is Outcome.PERMANENT:
            return "dead_lettered", verdict.reason
        assert verdict.reason, "a transient failure says why"
    return "dead_lettered", verdict.reason


def check(data: bytes) -> None:
    try:
        order = decode(data)
    except DecodeError as exc:
        assert str(exc), "a decode error says why"
        assert fastavro_reads(data) is None, f"fastavro reads what we refused: {exc}"
    else:
        expected = fastavro_reads(data)
        assert expected is not None, "we decoded what fastavro cannot read"
        assert same(order, expected)
    outcome, reason = final_outcome(data)
    assert outcome == "processed" or reason


orders = st.builds(
    Order,
    st.text(max_size=80),
    st.text(max_size=80),
    st.floats(allow_nan=True, allow_infinity=True),
)


@PROPERTY
@given(st.binary(max_size=300))
def test_random_bytes(data):
    check(data)


@PROPERTY
@given(orders, st.sampled_from(list(WireFormat)))
def test_every_order_round_trips_in_every_format(order, wire_format):
    data = encode(order, wire_format)
    if wire_format is WireFormat.SCHEMALESS and order.orderId == "":
        return  # a leading 0 byte is Confluent's magic: see codec.detect_format
    assert same(decode(data), order)
    check(data)


@PROPERTY
@given(
    orders,
    st.sampled_from(list(WireFormat)),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    st.integers(0, 400),
)
def test_mangled_orders(order, wire_format, flips, cut):
    data = bytearray(encode(order, wire_format))
    for position, byte in flips:
        if data:
            data[position % len(data)] = byte
    check(bytes(data[: max(1, len(data) - cut % 8)]))


AVRO_TYPES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
NAMES = ["Order", "Refund", "LegacyOrder", "Order"]  # Order twice: matches are common
FIELD_NAMES = ["orderId", "product", "price", "currency", "reason"]


@st.composite
def writer_schemas_and_records(draw):
    """A record schema with some of the Order's fields (any type) and others, in any
    order, under one of several names and namespaces, with a record of it."""
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=5))
    fields = [{"name": n, "type": draw(st.sampled_from(AVRO_TYPES))} for n in names]
    namespace = draw(st.sampled_from([None, "orders_tui", "billing"]))
    schema = {"type": "record", "name": draw(st.sampled_from(NAMES)), "fields": fields}
    if namespace:
        schema["namespace"] = namespace
    values = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "bytes": st.binary(max_size=20),
        "string": st.text(max_size=20),
    }
    record = {f["name"]: draw(values[f["type"]]) for f in fields}
    return schema, record


@PROPERTY
@given(writer_schemas_and_records())
def test_containers_written_by_other_schemas(schema_and_record):
    schema, record = schema_and_record
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [record])
    check(buf.getvalue())


@PROPERTY
@given(writer_schemas_and_records(), st.integers(0, 2**31 - 1))
def test_confluent_bodies_of_other_schemas_are_read_only_under_a_known_id(case, schema_id):
    schema, record = case
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    data = b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue()
    check(data)
    if schema_id != OWN_ID:
        try:
            decode(data)
        except DecodeError as exc:
            assert f"schema id {schema_id}" in str(exc)
        else:
            raise AssertionError("a body under an unknown schema id was read")


def test_nan_and_infinite_prices_are_dead_lettered_with_a_reason():
    for price in (math.nan, math.inf, -math.inf):
        outcome, reason = final_outcome(encode(Order("a", "b", price)))
        if price == -math.inf:
            assert outcome == "dead_lettered" and "not a finite number" in reason
        else:
            assert outcome == "dead_lettered" and reason


@st.composite
def nested_types(draw, depth: int = 0, names: list | None = None):
    """A random Avro type: primitives, enums, fixed, arrays, maps, ["null", T] unions and
    records, nested up to 3 deep; `names` keeps the named types' names unique."""
    names = names if names is not None else []
    leaves = [*AVRO_TYPES, "enum", "fixed"]
    composite = ["array", "map", "union", "record"] if depth < 3 else []
    kind = draw(st.sampled_from(leaves + composite))
    if kind in AVRO_TYPES:
        return kind
    if kind in ("enum", "fixed", "record"):
        names.append(f"T{len(names)}")
    if kind == "enum":
        symbols = ["A", "B", "C"][: draw(st.integers(1, 3))]
        return {"type": "enum", "name": names[-1], "symbols": symbols}
    if kind == "fixed":
        return {"type": "fixed", "name": names[-1], "size": draw(st.integers(0, 4))}
    if kind == "array":
        return {"type": "array", "items": draw(nested_types(depth + 1, names))}
    if kind == "map":
        return {"type": "map", "values": draw(nested_types(depth + 1, names))}
    if kind == "union":
        inner = draw(nested_types(depth + 1, names))
        return ["null", inner] if inner != "null" and not isinstance(inner, list) else ["null"]
    name = names[-1]
    count = draw(st.integers(0, 3))
    return {"type": "record", "name": name,
            "fields": [{"name": f"f{i}", "type": draw(nested_types(depth + 1, names))}
                       for i in range(count)]}  # fmt: skip


@st.composite
def nested_fields(draw):
    names: list[str] = []  # one list: named types are named once in a schema
    return [{"name": f"x{i}", "type": draw(nested_types(0, names))}
            for i in range(draw(st.integers(1, 3)))]  # fmt: skip


@PROPERTY
@given(
    nested_fields(),
    st.permutations(range(4)),
    st.sampled_from(["null", "deflate", "bzip2", "xz"]),
    st.randoms(use_true_random=False),
)
def test_containers_with_nested_fields_read_as_fastavro_reads_them(extra_fields, order, codec, rng):
    """What the bounded reader of foreign writer schemas skips and reads, against
    fastavro on data it wrote itself (nothing hostile): the same order or the same refusal."""
    import fastavro.utils

    fields = [
        {"name": "orderId", "type": "string"},
        {"name": "product", "type": ["null", "string"]},
        {"name": "price", "type": "float"},
        {"name": "nested", "type": {"type": "record", "name": "Extra", "fields": extra_fields}},
    ]
    schema = fastavro.parse_schema(
        {"type": "record", "name": "Order", "fields": [fields[i] for i in order]}
    )
    import random as random_module

    state = random_module.getstate()
    random_module.seed(rng.random())
    try:
        record = next(iter(fastavro.utils.generate_many(schema, 1)))
    finally:
        random_module.setstate(state)
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [record], codec=codec, sync_interval=1 << 30)
    check(buf.getvalue())
