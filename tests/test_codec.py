import io
import struct

import fastavro
import pytest

from orders_tui.domain.codec import DecodeError, WireFormat, decode, detect_format, encode
from orders_tui.domain.order import MAX_PRICE, MIN_PRICE, Order, OrderFactory

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
    "confluent header only": (struct.pack(">bI", 0, 1), "truncated Confluent frame"),
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
    from orders_tui.domain import codec

    factory = OrderFactory(11)
    orders = [factory() for _ in range(2000)]
    orders += [
        Order("", "", 0.0),
        Order("ü" * 70, "名前 [bold]x[/] \x1b[31m", -1.5),
        Order("a" * 5000, "b" * 64, 1e308),
    ]
    assert codec.encode_schemaless is codec._encode_direct
    for order in orders:
        assert codec._encode_direct(order) == codec._encode_fastavro(order)


@pytest.mark.parametrize("path", ["_decode_direct", "_decode_common"])
def test_direct_decoders_agree_with_fastavro_on_valid_and_mangled_bytes(path):
    import random

    from orders_tui.domain import codec

    rng = random.Random(4)
    factory = OrderFactory(12)
    samples = [codec.encode(factory()) for _ in range(300)]
    samples.append(codec.encode(Order("x" * 300, "ü" * 100, 7.5)))  # multi-byte lengths
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
            consumed_all = len(codec._encode_fastavro(reference)) == len(data)
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
