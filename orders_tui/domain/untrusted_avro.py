"""Avro whose writer schema someone else chose: a container file's, or a registry's.

Whoever can write to a topic chooses these schemas, and fastavro trusts them: a
recursive schema's data nested 50,000 deep overflows its C stack (a segfault), an
`array<null>` block of 2^62 items loops for hours holding the interpreter (no signal is
handled), and a bzip2 block of a few hundred bytes expands to gigabytes. So records
written with a foreign schema are read here, in plain Python, within limits that keep
each decode to a bounded time and memory, whatever the bytes say:

- data nests at most MAX_DEPTH levels (records, arrays, maps);
- a block of n items needs n times (the item's smallest encoding) bytes left;
- a record holds at most MAX_VALUES values (array and map items, record fields), which
  bounds the time a decode takes: items that take no bytes (`null`, an empty record) and
  a small schema whose records nest many fields in many fields give no other bound;
- a string, bytes or fixed is no longer than the bytes left;
- a container block decompresses to at most MAX_DECOMPRESSED bytes, and decompression
  stops there.

Breaking a limit is an UntrustedAvroError naming it. Only what an Order needs is read:
orderId, product and price, resolved as Avro's schema resolution says; every other field
is skipped. Records written with our own schema keep the fast decoder (codec.py).
"""

from __future__ import annotations

import bz2
import json
import lzma
import struct
import zlib
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64
MAX_VALUES = 1_000_000  # values in one record: bounds the time a decode takes (~0.2 s)
# Eight times the broker's default message.max.bytes (1,048,588): a record that expands
# further is not an order, and reading it would cost every reader of the topic again.
MAX_DECOMPRESSED = 8 * 1_048_588

CONTAINER_MAGIC = b"Obj\x01"
SYNC_SIZE = 16


class UntrustedAvroError(ValueError):
    """The bytes or the writer schema break a limit, or are not Avro; says which."""


class Truncated(UntrustedAvroError):
    """The bytes end before what they announce."""


class SchemaMismatch(UntrustedAvroError):
    """The writer schema cannot be read as the reader's (Avro schema resolution)."""


_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_NAMED = {"record", "error", "enum", "fixed"}
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro long (zigzag varint) at pos, and the position after it."""
    try:
        byte = data[pos]
        pos += 1
        n = byte & 0x7F
        shift = 7
        while byte & 0x80:
            if shift > 63:
                raise UntrustedAvroError("a varint longer than 10 bytes")
            byte = data[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            shift += 7
    except IndexError:
        raise Truncated("the value ends mid-record") from None
    return (n >> 1) ^ -(n & 1), pos


class Node:
    """One type of a writer schema, compiled; named types are shared, so a recursive
    schema is a cyclic graph of nodes, read with an explicit depth."""

    __slots__ = ("branches", "fields", "items", "kind", "min_size", "name", "size", "symbols")

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind, self.name = kind, name
        self.fields: list[tuple[str, Node]] = []
        self.items: Node | None = None
        self.branches: list[Node] = []
        self.size = 0
        self.symbols = 0
        self.min_size = 0


def compile_schema(schema: Any) -> Node:
    """The writer schema (parsed JSON) as nodes; UntrustedAvroError if it is not one."""
    named: dict[str, Node] = {}
    try:
        root = _compile(schema, "", named)
    except RecursionError:
        raise UntrustedAvroError("the writer schema is nested too deeply") from None
    _settle_min_sizes([*named.values(), root])
    return root


def _full_name(name: Any, namespace: str) -> str:
    if not isinstance(name, str) or not name:
        raise UntrustedAvroError(f"a named type without a valid name ({name!r:.60})")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _compile(schema: Any, namespace: str, named: dict[str, Node]) -> Node:
    if isinstance(schema, list):
        node = Node("union")
        node.branches = [_compile(branch, namespace, named) for branch in schema]
        if not node.branches:
            raise UntrustedAvroError("an empty union in the writer schema")
        return node
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return Node(schema)
        for candidate in (_full_name(schema, namespace), schema):
            if candidate in named:
                return named[candidate]
        raise UntrustedAvroError(f"the writer schema names an unknown type {schema!r:.60}")
    if not isinstance(schema, dict):
        raise UntrustedAvroError(f"not an Avro schema: {schema!r:.60}")
    kind = schema.get("type")
    if kind in _PRIMITIVES:
        return Node(kind)
    if kind in ("array", "map"):
        node = Node(kind)
        node.items = _compile(
            schema.get("items" if kind == "array" else "values"), namespace, named
        )
        return node
    if kind not in _NAMED:
        if isinstance(kind, dict | list | str):  # {"type": {"type": "array", ...}}
            return _compile(kind, namespace, named)
        raise UntrustedAvroError(f"not an Avro schema: type {kind!r:.60}")
    name = _full_name(schema.get("name"), schema.get("namespace") or namespace)
    if name in named:  # also what keeps compiling linear in the schema's size
        raise UntrustedAvroError(f"the writer schema defines {name} twice")
    node = Node("record" if kind == "error" else kind, name)
    named[name] = node  # before the fields: a field may refer to its own record
    if kind == "fixed":
        size = schema.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UntrustedAvroError(f"fixed {name} has no valid size")
        node.size = size
    elif kind == "enum":
        symbols = schema.get("symbols")
        if not isinstance(symbols, list) or not symbols:
            raise UntrustedAvroError(f"enum {name} has no symbols")
        node.symbols = len(symbols)
    else:
        fields = schema.get("fields")
        if not isinstance(fields, list):
            raise UntrustedAvroError(f"record {name} has no list of fields")
        inner = name.rpartition(".")[0]
        for field in fields:
            if not isinstance(field, dict) or not isinstance(field.get("name"), str):
                raise UntrustedAvroError(f"record {name} has a field without a name")
            node.fields.append((field["name"], _compile(field.get("type"), inner, named)))
    return node


_FIXED_SIZES = {
    "boolean": 1,
    "int": 1,
    "long": 1,
    "float": 4,
    "double": 8,
    "bytes": 1,
    "string": 1,
    "enum": 1,
    "array": 1,
    "map": 1,
    "union": 1,
}


def _settle_min_sizes(roots: list[Node]) -> None:
    """Each node's smallest encoding in bytes. A record's is the sum of its fields', found
    by iterating to a fixed point from 0, so a recursive record gets a lower bound."""
    nodes, stack, seen = [], list(roots), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(child for _, child in node.fields)
        stack.extend(node.branches)
        if node.items is not None:
            stack.append(node.items)
    for node in nodes:
        node.min_size = node.size if node.kind == "fixed" else _FIXED_SIZES.get(node.kind, 0)
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if node.kind == "record":
                size = sum(child.min_size for _, child in node.fields)
                if size != node.min_size:
                    node.min_size, changed = size, True


class _Reading:
    """One decode's position and budget."""

    __slots__ = ("data", "pos", "values")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos, self.values = data, pos, 0

    def count_values(self, count: int) -> None:
        self.values += count
        if self.values > MAX_VALUES:
            raise UntrustedAvroError(f"more than {MAX_VALUES:,} values in one record")

    def long(self) -> int:
        value, self.pos = read_long(self.data, self.pos)
        return value

    def take(self, size: int) -> bytes:
        if size < 0:
            raise UntrustedAvroError(f"a negative length ({size})")
        if size > len(self.data) - self.pos:
            raise Truncated(f"a length of {size} where {len(self.data) - self.pos} bytes are left")
        start = self.pos
        self.pos += size
        return self.data[start : self.pos]

    def block_count(self, item_size: int, skipping: bool) -> int:
        """The next block's item count (0 at the end), for items of at least `item_size`
        bytes. A block that says its size in bytes is jumped over whole when skipping; its
        count is then -1: no item to read."""
        count = self.long()
        if count < 0:
            count = -count
            size = self.long()
            if skipping:
                self.take(size)
                return -1
        self.count_values(count)
        if item_size and count > (len(self.data) - self.pos) // item_size:
            raise UntrustedAvroError(
                f"a block of {count} items, which the {len(self.data) - self.pos} bytes left "
                "cannot hold"
            )
        return count


def _skip(node: Node, reading: _Reading, depth: int) -> None:
    kind = node.kind
    if kind in ("int", "long"):
        reading.long()
    elif kind == "enum":
        if not 0 <= reading.long() < node.symbols:
            raise UntrustedAvroError(f"an index out of enum {node.name}'s symbols")
    elif kind in ("string", "bytes"):
        reading.take(reading.long())
    elif kind in ("double", "float", "boolean", "fixed"):
        reading.take(node.min_size)
    elif kind == "null":
        pass
    else:
        if depth >= MAX_DEPTH:
            raise UntrustedAvroError(f"data nested deeper than {MAX_DEPTH} levels")
        if kind == "record":
            reading.count_values(len(node.fields))
            for _, child in node.fields:
                _skip(child, reading, depth + 1)
        elif kind == "union":  # a choice, not a level of nesting
            _skip(_branch(node, reading), reading, depth)
        else:  # array, map
            items = node.items
            entry_size = items.min_size + (kind == "map")  # a map's key takes a byte at least
            while count := reading.block_count(entry_size, skipping=True):
                for _ in range(max(count, 0)):
                    if kind == "map":
                        reading.take(reading.long())
                    _skip(items, reading, depth + 1)


def _branch(union: Node, reading: _Reading) -> Node:
    index = reading.long()
    if not 0 <= index < len(union.branches):
        raise UntrustedAvroError(f"union branch {index} of {len(union.branches)}")
    return union.branches[index]


def _read_string(node: Node, reading: _Reading) -> str:
    return reading.take(reading.long()).decode()


def _read_number(node: Node, reading: _Reading) -> float:
    if node.kind in ("int", "long"):
        return float(reading.long())
    if node.kind == "float":
        return _FLOAT.unpack(reading.take(4))[0]
    return _DOUBLE.unpack(reading.take(8))[0]


# What a reader type accepts from a writer type (Avro's promotions), and how to read it.
_READERS: dict[str, tuple[set[str], Callable[[Node, _Reading], Any]]] = {
    "string": ({"string", "bytes"}, _read_string),
    "double": ({"int", "long", "float", "double"}, _read_number),
}


class OrderFieldsReader:
    """Reads the named primitive fields of a record written with `writer`, resolved by
    name; every other field is skipped within the limits."""

    def __init__(self, writer: Node, wanted: dict[str, str], reader_name: str) -> None:
        self.writer, self.wanted = writer, wanted
        missing = [name for name in wanted if name not in dict(writer.fields)]
        if missing:
            raise SchemaMismatch(
                f"the writer schema has no field {missing[0]!r} and "
                f"{reader_name} gives it no default"
            )
        for name, child in writer.fields:
            if name in wanted and not self._resolvable(child, wanted[name]):
                raise SchemaMismatch(
                    f"field {name!r} is written as {_describe(child)}, which cannot be read "
                    f"as {wanted[name]}"
                )

    @staticmethod
    def _resolvable(node: Node, reader_type: str) -> bool:
        accepted = _READERS[reader_type][0]
        if node.kind == "union":
            return any(branch.kind in accepted for branch in node.branches)
        return node.kind in accepted

    def __call__(self, data: bytes, pos: int = 0) -> tuple[dict[str, Any], int]:
        """The wanted fields' values, and the position after the record."""
        reading = _Reading(data, pos)
        values: dict[str, Any] = {}
        try:
            for name, child in self.writer.fields:
                reader_type = self.wanted.get(name)
                if reader_type is None:
                    _skip(child, reading, 1)
                    continue
                if child.kind == "union":
                    child = _branch(child, reading)
                    if child.kind not in _READERS[reader_type][0]:
                        raise SchemaMismatch(
                            f"field {name!r} holds a {_describe(child)}, which cannot be "
                            f"read as {reader_type}"
                        )
                values[name] = _READERS[reader_type][1](child, reading)
        except UnicodeDecodeError:
            raise UntrustedAvroError("a string field is not UTF-8") from None
        return values, reading.pos


def _describe(node: Node) -> str:
    if node.kind == "union":
        return "[" + ", ".join(_describe(branch) for branch in node.branches) + "]"
    return node.name or node.kind


# Container files ---------------------------------------------------------------------


def _decompress_bounded(codec: str, block: bytes) -> bytes:
    """The block decompressed, refusing one that expands past MAX_DECOMPRESSED without
    ever holding more than that."""
    if codec == "null":
        return block
    limit = MAX_DECOMPRESSED + 1
    out: list[bytes] = []
    produced = 0
    try:
        if codec == "deflate":
            inflater = zlib.decompressobj(-15)
            chunk = inflater.decompress(block, limit)
            out.append(chunk)
            produced = len(chunk)
        elif codec in ("bzip2", "xz"):
            # Several streams may follow each other, as bz2.decompress and
            # lzma.decompress read them.
            rest = block
            while rest and produced < limit:
                unpacker = bz2.BZ2Decompressor() if codec == "bzip2" else lzma.LZMADecompressor()
                chunk = unpacker.decompress(rest, limit - produced)
                out.append(chunk)
                produced += len(chunk)
                if not unpacker.eof:
                    if produced < limit:
                        raise UntrustedAvroError(f"a truncated {codec} block")
                    break
                rest = unpacker.unused_data
        else:
            raise UntrustedAvroError(f"codec {codec!r:.40}, which orders-tui does not read")
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise UntrustedAvroError(f"a {codec} block that does not decompress ({exc})") from None
    if produced > MAX_DECOMPRESSED:
        raise UntrustedAvroError(
            f"a {codec} block that expands past {MAX_DECOMPRESSED:,} bytes (the limit on "
            "a decompressed record)"
        )
    return b"".join(out)


class Container:
    """A container file's writer schema (JSON text) and its blocks, decompressed."""

    def __init__(self, schema_text: str, blocks: list[tuple[int, bytes]]) -> None:
        self.schema_text = schema_text
        self.blocks = blocks  # (record count, decompressed bytes)

    @property
    def record_count(self) -> int:
        return sum(count for count, _ in self.blocks)


def parse_schema_text(text: str) -> Any:
    """A schema's JSON text parsed, as an UntrustedAvroError if it is not JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UntrustedAvroError("the writer schema is nested too deeply") from None
    except ValueError as exc:
        raise UntrustedAvroError(f"the writer schema is not JSON ({exc})") from None


def read_container(data: bytes) -> Container:
    """The header and blocks of an Avro object container file, within the limits."""
    if not data.startswith(CONTAINER_MAGIC):
        raise UntrustedAvroError("not an Avro container file")
    reading = _Reading(data, len(CONTAINER_MAGIC))
    metadata: dict[str, bytes] = {}
    while count := reading.long():
        if count < 0:
            count = -count
            reading.long()
        if count > (len(data) - reading.pos) // 2:  # a key and a value: 1 byte each at least
            raise UntrustedAvroError(f"a header of {count} entries in {len(data)} bytes")
        for _ in range(count):
            try:
                key = reading.take(reading.long()).decode()
            except UnicodeDecodeError:
                raise UntrustedAvroError("a header key that is not UTF-8") from None
            metadata[key] = reading.take(reading.long())
    sync = reading.take(SYNC_SIZE)
    if "avro.schema" not in metadata:
        raise UntrustedAvroError("a container file without a writer schema")
    codec = metadata.get("avro.codec", b"null").decode("utf-8", "replace")
    blocks = []
    decompressed = 0
    while reading.pos < len(data):
        count = reading.long()
        block = _decompress_bounded(codec, reading.take(reading.long()))
        decompressed += len(block)
        if decompressed > MAX_DECOMPRESSED:
            raise UntrustedAvroError(
                f"blocks that expand past {MAX_DECOMPRESSED:,} bytes (the limit on a "
                "decompressed record)"
            )
        if reading.take(SYNC_SIZE) != sync:
            raise UntrustedAvroError("a block that does not end with the file's sync marker")
        if count < 0:
            raise UntrustedAvroError(f"a block of {count} records")
        blocks.append((count, block))
    try:
        return Container(metadata["avro.schema"].decode(), blocks)
    except UnicodeDecodeError:
        raise UntrustedAvroError("the writer schema is not UTF-8") from None
