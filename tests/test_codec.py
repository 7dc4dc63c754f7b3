import io
import json
import struct

import fastavro
import pytest

from orders_tui.domain.codec import (
    DEFAULT_SCHEMA_ID,
    DecodeError,
    Decoder,
    WireFormat,
    WriterSchema,
    WriterSchemaUnavailable,
    decode,
    detect_format,
)
from orders_tui.domain.encoding import encode
from orders_tui.domain.order import MAX_PRICE, MIN_PRICE, Order, OrderFactory
from orders_tui.domain.schema import order_schema

ORDER = Order("0d5f3c8e-8a4e-4c1e-9a37-5b7f0e2a9c11", "Teal Lamp", 123.45)


@pytest.mark.parametrize("wire_format", list(WireFormat))
def test_round_trip_in_every_wire_format(wire_format):
    data = encode(ORDER, wire_format)
    assert detect_format(data) is wire_format
    assert decode(data) == ORDER


def test_schemaless_is_compact():
    assert len(encode(ORDER)) < 60


def test_container_written_by_another_writer_schema_still_decodes():
    """The original demo wrote a container per message with its own schema copy."""
    schema = {
        "type": "record",
        "name": "Order",
        "fields": [
            {"name": "orderId", "type": "string"},
            {"name": "product", "type": "string"},
            {"name": "price", "type": "double"},
        ],
    }
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [ORDER.to_dict()])
    assert decode(buf.getvalue()) == ORDER


def _other_schema_container() -> bytes:
    schema = {"type": "record", "name": "User", "fields": [{"name": "age", "type": "int"}]}
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [{"age": 3}])
    return buf.getvalue()


def _other_schema_schemaless() -> bytes:
    schema = {
        "type": "record",
        "name": "Payment",
        "fields": [{"name": "amount", "type": "long"}, {"name": "ok", "type": "boolean"}],
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), {"amount": 7, "ok": True})
    return buf.getvalue()


BAD_INPUTS = {
    "empty": (b"", "empty value"),
    "none": (None, "empty value"),
    "truncated schemaless": (encode(ORDER)[:-3], "truncated"),
    "trailing bytes": (encode(ORDER) + b"\x00\x01", "left over"),
    "truncated container": (encode(ORDER, WireFormat.CONTAINER)[:-20], "truncated"),
    "container magic only": (b"Obj\x01", r"not an Order \(container\)"),
    "confluent header only": (struct.pack(">bI", 0, 1), "ends mid-record"),
    "truncated confluent header": (b"\x00\x00\x01", "truncated Confluent frame"),
    "truncated confluent": (encode(ORDER, WireFormat.CONFLUENT)[:-4], "truncated"),
    "not utf-8": (b"\x04\xff\xfe\x02a" + b"\x00" * 8, "not UTF-8"),
    "json text": (b'{"orderId": "x", "price": 1}', "ends mid-record"),
    "random bytes": (bytes(range(200, 256)) * 3, "not an Order"),
    "another schema, container": (_other_schema_container(), "not an Order"),
    "another schema, schemaless": (_other_schema_schemaless(), "ends mid-record"),
    "negative length": (b"\x01abc", "ends mid-record"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_raises_a_decode_error_saying_why(name):
    data, why = BAD_INPUTS[name]
    with pytest.raises(DecodeError, match=why):
        decode(data)


def test_factory_is_deterministic_per_seed_and_in_range():
    first = [OrderFactory(7)() for _ in range(1)]
    a, b = OrderFactory(7), OrderFactory(7)
    orders_a = [a() for _ in range(500)]
    assert orders_a == [b() for _ in range(500)]
    assert orders_a[0] == first[0]
    assert len({o.orderId for o in orders_a}) == 500
    assert all(MIN_PRICE <= o.price <= MAX_PRICE for o in orders_a)
    assert all(round(o.price, 2) == o.price for o in orders_a)
    assert len({o.product for o in orders_a}) > 100
    assert OrderFactory(8)() != orders_a[0]


def test_order_ids_are_valid_version_4_uuids():
    import random
    import uuid

    from orders_tui.domain.order import random_uuid4

    rng = random.Random(3)
    for _ in range(200):
        text = random_uuid4(rng)
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_direct_encoder_writes_what_fastavro_writes():
    from orders_tui.domain import encoding

    factory = OrderFactory(11)
    orders = [factory() for _ in range(2000)]
    orders += [
        Order("", "", 0.0),
        Order("ü" * 70, "名前 [bold]x[/] \x1b[31m", -1.5),
        Order("a" * 5000, "b" * 64, 1e308),
    ]
    assert encoding.encode_schemaless is encoding._encode_direct
    for order in orders:
        assert encoding._encode_direct(order) == encoding._encode_fastavro(order)


@pytest.mark.parametrize("path", ["_decode_direct", "_decode_common"])
def test_direct_decoders_agree_with_fastavro_on_valid_and_mangled_bytes(path):
    import random

    from orders_tui.domain import codec, encoding

    rng = random.Random(4)
    factory = OrderFactory(12)
    samples = [encoding.encode(factory()) for _ in range(300)]
    samples.append(encoding.encode(Order("x" * 300, "ü" * 100, 7.5)))  # multi-byte lengths
    mangled = []
    for data in samples:
        for _ in range(10):
            b = bytearray(data)
            b[rng.randrange(len(b))] = rng.randrange(256)
            mangled.append(bytes(b))
        mangled.append(data[: rng.randrange(len(data))])
        mangled.append(data + bytes([rng.randrange(256)]))
    direct_decode = getattr(codec, path)
    for data in samples + mangled:
        direct = direct_decode(data, 0) if path == "_decode_direct" else direct_decode(data)
        try:
            reference = codec._to_order(
                fastavro.schemaless_reader(io.BytesIO(data), codec._PARSED, None)
            )
            consumed_all = len(encoding._encode_fastavro(reference)) == len(data)
        except Exception:
            reference, consumed_all = None, False
        if direct is not None:
            # Whatever the direct path accepts, fastavro reads the same way, to the byte.
            assert consumed_all
            assert direct == reference or (direct.price != direct.price)  # NaN != NaN
    # ...and the fast paths do take the common case.
    assert all(
        direct_decode(d, 0) if path == "_decode_direct" else direct_decode(d) for d in samples[:300]
    )


def _schemaless(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def _container(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [record])
    return buf.getvalue()


def _confluent(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def _order_schema(fields: list[dict], name: str = "Order", **extra) -> dict:
    return {"type": "record", "name": name, "fields": fields, **extra}


STRING = "string"
SWAPPED = _order_schema(
    [{"name": "product", "type": STRING}, {"name": "orderId", "type": STRING},
     {"name": "price", "type": "double"}]
)  # fmt: skip
V2 = _order_schema(
    [{"name": "orderId", "type": STRING}, {"name": "product", "type": STRING},
     {"name": "price", "type": "double"},
     {"name": "currency", "type": STRING, "default": "EUR"}],
    namespace="orders_tui",
)  # fmt: skip
REFUND = _order_schema(
    [{"name": "orderId", "type": STRING}, {"name": "product", "type": STRING},
     {"name": "price", "type": "long"}, {"name": "reason", "type": STRING}],
    name="Refund", namespace="billing",
)  # fmt: skip
RECORD = {"orderId": "id-1", "product": "Teal Lamp", "price": 12.5}


def test_a_confluent_record_of_an_unknown_schema_id_is_refused_naming_the_id():
    # Written with the fields in another order: read with our schema, orderId and
    # product would come out swapped.
    data = _confluent(999, _schemaless(SWAPPED, RECORD))
    with pytest.raises(DecodeError, match="schema id 999") as refused:
        decode(data)
    assert "schema id 1 as its Order schema" in str(refused.value)


def test_a_v2_writer_schema_under_a_new_id_is_refused_not_misread():
    data = _confluent(2, _schemaless(V2, {**RECORD, "currency": "USD"}))
    with pytest.raises(DecodeError, match="schema id 2, whose writer schema is unknown"):
        decode(data)


def test_the_schema_ids_read_as_our_own_are_the_configured_ones():
    body = encode(ORDER)
    assert Decoder([7])(_confluent(7, body)) == ORDER
    with pytest.raises(DecodeError, match="schema id 1"):
        Decoder([7])(_confluent(1, body))
    assert encode(ORDER, WireFormat.CONFLUENT, schema_id=7) == _confluent(7, body)
    assert DEFAULT_SCHEMA_ID == 1 and decode(encode(ORDER, WireFormat.CONFLUENT)) == ORDER


class Registered:
    """Writer schemas by id, as a registry holds them; ids in `down` cannot be fetched."""

    name = "the test's registry"

    def __init__(self, schemas: dict[int, dict], down: bool = False) -> None:
        self.schemas, self.down, self.asked = schemas, down, []

    def writer_schema(self, schema_id: int) -> WriterSchema | None:
        self.asked.append(schema_id)
        if self.down:
            raise WriterSchemaUnavailable("connection refused")
        schema = self.schemas.get(schema_id)
        return WriterSchema(schema, "orders-value", schema_id) if schema else None


def test_a_looked_up_writer_schema_is_resolved_against_ours():
    """Where a registry slots in: a source gives an id's writer schema."""
    decoder = Decoder([1], Registered({2: V2, 3: SWAPPED, 4: REFUND}))
    assert decoder(_confluent(2, _schemaless(V2, {**RECORD, "currency": "USD"}))) == Order(
        "id-1", "Teal Lamp", 12.5
    )
    assert decoder(_confluent(3, _schemaless(SWAPPED, RECORD))) == Order("id-1", "Teal Lamp", 12.5)
    refund = {**RECORD, "price": 12, "reason": "broken"}
    with pytest.raises(
        DecodeError,
        match=r"schema id 4, subject orders-value v4\): written as record 'billing\.Refund'",
    ):
        decoder(_confluent(4, _schemaless(REFUND, refund)))
    with pytest.raises(DecodeError, match="schema id 5, which the test's registry does not know"):
        decoder(_confluent(5, _schemaless(V2, {**RECORD, "currency": "USD"})))
    assert decoder.seen == {2: 1, 3: 1}  # what was read, not what was refused
    assert decoder.seen_labels() == {
        "orders-value v2 (id 2)": 1,
        "orders-value v3 (id 3)": 1,
    }


def test_an_id_whose_writer_schema_is_ours_is_fetched_once_then_read_as_ours():
    ours = json.loads(json.dumps(order_schema()))
    ours["doc"] = "the same schema, with other docs: the same canonical form"
    registry = Registered({9: ours})
    decoder = Decoder([1], registry)
    for _ in range(3):
        assert decoder(encode(ORDER, WireFormat.CONFLUENT, schema_id=9)) == ORDER
    assert registry.asked == [9] and 9 in decoder.schema_ids
    assert decoder.writer_of(encode(ORDER, WireFormat.CONFLUENT, schema_id=9)) == (
        9, WriterSchema(ours, "orders-value", 9)
    )  # fmt: skip
    assert decoder.writer_of(encode(ORDER)) is None  # schemaless: no id


def test_a_registry_that_cannot_answer_is_not_a_decode_error_and_is_asked_again():
    registry = Registered({2: V2}, down=True)
    decoder = Decoder([1], registry)
    data = _confluent(2, _schemaless(V2, {**RECORD, "currency": "USD"}))
    with pytest.raises(WriterSchemaUnavailable):
        decoder(data)
    registry.down = False
    assert decoder(data) == Order("id-1", "Teal Lamp", 12.5)
    assert registry.asked == [2, 2]


def test_a_container_of_another_record_type_is_refused_naming_it():
    data = _container(REFUND, {**RECORD, "price": 12, "reason": "broken"})
    with pytest.raises(DecodeError, match=r"written as record 'billing\.Refund'"):
        decode(data)


def test_an_evolved_order_container_is_read_by_name_with_promotion_and_defaults_skipped():
    evolved = _order_schema(
        [{"name": "currency", "type": STRING, "default": "EUR"},
         {"name": "price", "type": "float"},
         {"name": "product", "type": STRING},
         {"name": "orderId", "type": STRING},
         {"name": "tags", "type": {"type": "array", "items": STRING}}],
        namespace="shop.v2",
    )  # fmt: skip
    data = _container(evolved, {**RECORD, "price": 12.5, "currency": "USD", "tags": ["a", "b"]})
    assert decode(data) == Order("id-1", "Teal Lamp", 12.5)
    as_int = _order_schema(
        [{"name": "orderId", "type": STRING}, {"name": "product", "type": STRING},
         {"name": "price", "type": "int"}]
    )  # fmt: skip
    assert decode(_container(as_int, {**RECORD, "price": 40})) == Order("id-1", "Teal Lamp", 40.0)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ([{"name": "orderId", "type": STRING}, {"name": "price", "type": "double"}],
         "cannot be read as orders_tui.Order"),
        ([{"name": "orderId", "type": STRING}, {"name": "product", "type": STRING},
          {"name": "price", "type": STRING}], "cannot be read as orders_tui.Order"),
    ],
)  # fmt: skip
def test_an_order_container_that_cannot_be_resolved_says_so(fields, why):
    record = {f["name"]: RECORD[f["name"]] if f["type"] != STRING or f["name"] != "price"
              else "12.5" for f in fields}  # fmt: skip
    with pytest.raises(DecodeError, match=why):
        decode(_container(_order_schema(fields), record))
