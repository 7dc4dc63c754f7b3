"""Records whose writer schema an attacker chose, built byte by byte (no checked-in blobs):
each one crashed, hung or bloated every reader of its topic before the decoder had
limits. Each is a valid Order in its first three fields, so only a limit refuses it.

Containers are assembled here rather than by fastavro, whose writer recurses (and would
crash on the deep one) and would not write a block that claims 2^62 items."""

from __future__ import annotations

import bz2
import functools
import json

ORDER_FIELDS = [
    {"name": "orderId", "type": "string"},
    {"name": "product", "type": "string"},
    {"name": "price", "type": "double"},
]
SYNC = bytes(range(16))


def avro_long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(text: str) -> bytes:
    data = text.encode()
    return avro_long(len(data)) + data


def order_body(order_id: str = "hostile", product: str = "Lamp", price: float = 100.0) -> bytes:
    import struct

    return avro_string(order_id) + avro_string(product) + struct.pack("<d", price)


def container(schema: dict, block: bytes, codec: str = "null", count: int = 1) -> bytes:
    """An Avro object container file with one block (already compressed by `codec`)."""
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}
    header = b"Obj\x01" + avro_long(len(meta))
    for key, value in meta.items():
        header += avro_long(len(key)) + key.encode() + avro_long(len(value)) + value
    header += avro_long(0) + SYNC
    return header + avro_long(count) + avro_long(len(block)) + block + SYNC


def order_schema_with(*extra: dict) -> dict:
    return {"type": "record", "name": "Order", "fields": [*ORDER_FIELDS, *extra]}


def deep_recursion(depth: int = 50_000) -> bytes:
    """~650 KB: an Order whose `next` is another Order, 50,000 deep (fastavro segfaulted
    skipping it)."""
    schema = order_schema_with({"name": "next", "type": ["null", "Order"]})
    level = order_body("n", "p", 1.0)
    body = (level + avro_long(1)) * depth + level + avro_long(0)
    return container(schema, order_body() + avro_long(1) + body)


def null_array_bomb(kind: str = "array") -> bytes:
    """~300 bytes: one block that claims 2^62 `null` items, which take no bytes (fastavro
    looped for hours holding the interpreter: no signal was handled)."""
    junk = {"type": kind, "items" if kind == "array" else "values": "null"}
    schema = order_schema_with({"name": "junk", "type": junk})
    return container(schema, order_body() + avro_long(2**62) + avro_long(0))


@functools.cache
def _zeros_bz2(size: int) -> bytes:
    compressor = bz2.BZ2Compressor(9)
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()


def bzip2_bomb(expanded: int = 640 << 20) -> bytes:
    """Under 1 KB that bzip2 expands to 640 MB: an Order with a `pad` of zeros, in
    concatenated bzip2 streams as bz2.decompress reads them (fastavro took 1.8 GB)."""
    schema = order_schema_with({"name": "pad", "type": "bytes"})
    stream = 64 << 20
    head = bz2.compress(order_body() + avro_long(expanded))
    block = head + _zeros_bz2(stream) * (expanded // stream)
    return container(schema, block, codec="bzip2")


def corpus() -> dict[str, bytes]:
    """Every hostile record by name."""
    return {
        "deep recursion": deep_recursion(),
        "array<null> of 2^62": null_array_bomb("array"),
        "map<null> of 2^62": null_array_bomb("map"),
        "bzip2 bomb": bzip2_bomb(),
    }


# What each one's DLQ reason names: the limit it broke.
LIMITS = {
    "deep recursion": "nested deeper than",
    "array<null> of 2^62": "values in one record",
    "map<null> of 2^62": "values in one record",
    "bzip2 bomb": "expands past",
}
