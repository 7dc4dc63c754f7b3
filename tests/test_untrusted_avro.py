"""Records whose writer schema an attacker chose: each is refused quickly, in bounded
memory, with a reason naming the limit it broke; from a container or from a registry.
(tests/test_poison_records.py feeds the same corpus to every reader on the real broker.)"""

from __future__ import annotations

import bz2
import lzma
import time
import tracemalloc
import zlib

import pytest

from orders_tui.domain.codec import DecodeError, Decoder, decode
from orders_tui.domain.order import Order
from orders_tui.domain.untrusted_avro import MAX_DECOMPRESSED, MAX_DEPTH, MAX_VALUES
from tests.hostile_records import (
    LIMITS,
    avro_long,
    container,
    corpus,
    deep_recursion,
    order_body,
    order_schema_with,
)
from tests.test_codec import Registered

CORPUS = corpus()


@pytest.mark.parametrize("name", CORPUS)
def test_a_hostile_container_is_refused_quickly_in_bounded_memory_naming_the_limit(name):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DecodeError, match=LIMITS[name]):
            decode(CORPUS[name])
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert took < 1.0
    assert peak < 3 * MAX_DECOMPRESSED  # the bzip2 bomb expands to 640 MB


def test_the_same_records_under_a_registry_schema_are_refused_the_same_way():
    """A Confluent-framed body whose writer schema the registry hands out: the schema is
    whoever registered it, so it goes through the same limits."""
    schema = order_schema_with({"name": "next", "type": ["null", "Order"]})
    level = order_body("n", "p", 1.0) + avro_long(1)
    body = level * 5_000 + order_body() + avro_long(0)
    decoder = Decoder([1], Registered({2: schema}))
    with pytest.raises(DecodeError, match=f"schema id 2.*nested deeper than {MAX_DEPTH}"):
        decoder(b"\x00\x00\x00\x00\x02" + body)
    shallow = level * 3 + order_body() + avro_long(0)
    assert decoder(b"\x00\x00\x00\x00\x02" + shallow) == Order("n", "p", 1.0)


def test_recursive_data_within_the_depth_limit_is_read():
    assert decode(deep_recursion(MAX_DEPTH - 3)) == Order("hostile", "Lamp", 100.0)


def test_a_small_schema_whose_records_multiply_fields_is_stopped_by_the_values_limit():
    """Five levels of 40 fields of the level below, all `null`: 10^8 values in 0 bytes."""
    inner: object = "null"
    for level in range(5):
        below = [inner] + [f"L{level - 1}" if level else "null"] * 39  # defined once, then named
        inner = {"type": "record", "name": f"L{level}",
                 "fields": [{"name": f"f{i}", "type": t} for i, t in enumerate(below)]}  # fmt: skip
    data = container(order_schema_with({"name": "wide", "type": inner}), order_body())
    started = time.perf_counter()
    with pytest.raises(DecodeError, match=f"more than {MAX_VALUES:,} values"):
        decode(data)
    assert time.perf_counter() - started < 2.0


def test_a_block_that_claims_more_items_than_its_bytes_can_hold_is_refused():
    schema = order_schema_with({"name": "ids", "type": {"type": "array", "items": "long"}})
    data = container(schema, order_body() + avro_long(5_000) + b"\x02" * 10 + avro_long(0))
    with pytest.raises(DecodeError, match="a block of 5000 items, which the 11 bytes left"):
        decode(data)


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("codec", "compress"),
    [("deflate", _deflate), ("xz", lzma.compress), ("bzip2", bz2.compress)],
)
def test_every_codec_stops_decompressing_at_the_limit(codec, compress):
    schema = order_schema_with({"name": "pad", "type": "bytes"})
    size = MAX_DECOMPRESSED + 1_000
    bomb = container(schema, compress(order_body() + avro_long(size) + bytes(size)), codec)
    with pytest.raises(DecodeError, match=f"a {codec} block that expands past"):
        decode(bomb)
    fits = container(schema, compress(order_body() + avro_long(1_000) + bytes(1_000)), codec)
    assert decode(fits) == Order("hostile", "Lamp", 100.0)


def test_a_schema_that_defines_a_name_twice_is_refused():
    """Compiling a writer schema stays linear in its size: each name is compiled once."""
    twice = {"type": "record", "name": "Twin", "fields": []}
    data = container(order_schema_with({"name": "a", "type": twice}, {"name": "b", "type": twice}),
                     order_body())  # fmt: skip
    with pytest.raises(DecodeError, match="defines Twin twice"):
        decode(data)


def test_a_codec_we_do_not_read_is_named():
    data = container(order_schema_with(), order_body(), codec="snappy")
    with pytest.raises(DecodeError, match="codec 'snappy', which orders-tui does not read"):
        decode(data)
