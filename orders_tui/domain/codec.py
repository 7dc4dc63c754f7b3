"""Decoding of the three wire formats seen on `orders` (encoding: encoding.py).

- schemaless: the Avro binary body alone (~55 bytes an order), with the schema from
  `schemas/order.avsc`. What `orders-tui produce` writes by default.
- container: a one-record Avro object container file (starts with ``Obj\\x01``), read
  with the writer schema it embeds. What the original demo wrote for every message.
- confluent: Confluent's framing, byte 0 then a 4-byte schema id, then the schemaless
  body. Decoding never guesses a writer schema: a body is read only when its schema id
  is one whose writer schema is known. Without a schema registry those are the ids
  orders-tui writes with `schemas/order.avsc` (DEFAULT_SCHEMA_ID, or --schema-id); any
  other id is a DecodeError naming it. A `lookup` (a registry) may supply more.

A writer schema other than our own (a container's, or one looked up) is read with Avro's
schema resolution against `schemas/order.avsc`: the record's name must match (its
unqualified name, or an alias), fields are matched by name, extra writer fields are
skipped, int/long/float promote to double, and a reader field the writer lacks needs a
default. Anything else, another record type included, is a DecodeError saying which.
Whoever writes to the topic chooses that schema, so such records are read within limits
(untrusted_avro.py), never by fastavro.
"""

from __future__ import annotations

import enum
import io
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

import fastavro
from fastavro.schema import parse_schema

from orders_tui.domain.order import Order
from orders_tui.domain.schema import order_schema
from orders_tui.domain.untrusted_avro import (
    Node,
    OrderFieldsReader,
    SchemaMismatch,
    Truncated,
    UntrustedAvroError,
    compile_schema,
    parse_schema_text,
    read_container,
    read_long,
)

CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER = struct.Struct(">bI")
# The schema id `--format confluent` writes, and the one the decoder reads as
# schemas/order.avsc, unless --schema-id says another. Registries number from 1.
DEFAULT_SCHEMA_ID = 1


class WireFormat(enum.StrEnum):
    SCHEMALESS = "schemaless"
    CONTAINER = "container"
    CONFLUENT = "confluent"


class DecodeError(ValueError):
    """The bytes are not an Order in any wire format we read; the message says why."""


_PARSED = parse_schema(order_schema())
_DOUBLE = struct.Struct("<d")
# The field layout the direct decoder below reads. If schemas/order.avsc ever differs,
# decoding falls back to fastavro, so the schema file stays the one source of truth.
_DIRECT_LAYOUT = [("orderId", "string"), ("product", "string"), ("price", "double")]


def _fields(schema: dict) -> list[tuple[str, object]]:
    return [(f["name"], f["type"]) for f in schema.get("fields", [])]


_DIRECT = _fields(_PARSED) == _DIRECT_LAYOUT


def _decode_direct(data: bytes, pos: int) -> Order | None:
    """The Order record read directly (3x faster than fastavro's schemaless_reader), or
    None for anything irregular, which then goes to fastavro for its verdict and message.
    Tests check it against fastavro on valid and mangled inputs."""
    try:
        size, pos = read_long(data, pos)
        if size < 0:
            return None
        end = pos + size
        order_id = data[pos:end].decode()
        size, pos = read_long(data, end)
        if size < 0:
            return None
        end = pos + size
        product = data[pos:end].decode()
        if end + 8 != len(data):
            return None
        (price,) = _DOUBLE.unpack_from(data, end)
    except (IndexError, ValueError, struct.error):  # UnicodeDecodeError is a ValueError
        return None
    return Order(order_id, product, price)


def _decode_common(data: bytes) -> Order | None:
    """The common case read in a few steps (2.5x faster than `_decode_direct`): a
    schemaless order whose two strings are under 64 bytes, so each length is one byte
    (zigzag: even and below 0x80). None for anything else, which takes the full path.
    A leading 0 (Confluent's magic) and "O" (the container's, odd) never match."""
    try:
        id_size = data[0]
        if id_size & 0x81 or not id_size:
            return None
        id_end = 1 + (id_size >> 1)
        product_size = data[id_end]
        if product_size & 0x81:
            return None
        product_end = id_end + 1 + (product_size >> 1)
        if product_end + 8 != len(data):
            return None
        return _new_order(
            Order,
            (
                data[1:id_end].decode(),
                data[id_end + 1 : product_end].decode(),
                _unpack_double(data, product_end)[0],
            ),
        )
    except (IndexError, UnicodeDecodeError):
        return None


_new_order = tuple.__new__  # Order(...) without the NamedTuple's Python-level __new__
_unpack_double = _DOUBLE.unpack_from


def detect_format(data: bytes) -> WireFormat:
    if data.startswith(CONTAINER_MAGIC):
        return WireFormat.CONTAINER
    # A schemaless order starts with the orderId's length; only an empty orderId gives a
    # 0 byte, so a leading 0 is read as Confluent's magic byte.
    if data[:1] == b"\x00":
        return WireFormat.CONFLUENT
    return WireFormat.SCHEMALESS


class WriterSchema(NamedTuple):
    """A writer schema a schema id stands for, and where it is registered."""

    schema: dict
    subject: str | None = None
    version: int | None = None

    def describe(self, schema_id: int) -> str:
        where = f", subject {self.subject} v{self.version}" if self.subject else ""
        return f"schema id {schema_id}{where}"


class WriterSchemaUnavailable(Exception):
    """The schema id's writer schema could not be fetched now (the registry does not
    answer): the record is neither an Order nor undecodable yet, it must wait."""


class WriterSchemaSource(Protocol):
    """Where writer schemas come from by id: a schema registry."""

    name: str  # for messages: "the schema registry at http://..."
    last_answer: float  # time.monotonic() of its last answer: a pipeline waiting sees it back

    def writer_schema(self, schema_id: int) -> WriterSchema | None:
        """The id's writer schema, None when there is no such id; raises
        WriterSchemaUnavailable when it cannot tell now."""
        ...


class Decoder:
    """Decodes an order in any supported wire format, or raises DecodeError saying why.

    `schema_ids`: the Confluent schema ids whose writer schema is schemas/order.avsc.
    `source`: where another id's writer schema comes from (a schema registry); without
    one, another id is not read. An id whose writer schema is ours (same canonical form)
    joins `schema_ids`, so it takes the fast path. `seen` counts the records read per
    Confluent schema id."""

    def __init__(
        self,
        schema_ids: Iterable[int] = (DEFAULT_SCHEMA_ID,),
        source: WriterSchemaSource | None = None,
    ) -> None:
        self.schema_ids = set(schema_ids)
        self.source = source
        self.seen: Counter[int] = Counter()
        self._writers: dict[int, tuple[WriterSchema, ForeignReader]] = {}

    def __call__(self, data: bytes | None) -> Order:
        if not data:
            raise DecodeError("empty value: no bytes to decode")
        if _DIRECT:
            order = _decode_common(data)
            if order is not None:
                return order
        wire_format = detect_format(data)
        try:
            if wire_format is WireFormat.CONTAINER:
                return _decode_container(data)
            if wire_format is WireFormat.CONFLUENT:
                return self._decode_confluent(data)
            return _decode_schemaless(data, 0, "schemaless Avro")
        except (DecodeError, WriterSchemaUnavailable):
            raise
        except EOFError:
            raise DecodeError(
                f"truncated or not an Order ({wire_format} Avro): the value ends mid-record"
            ) from None
        except UnicodeDecodeError:
            raise DecodeError(
                f"not an Order ({wire_format}): a string field is not UTF-8"
            ) from None
        except Exception as exc:  # fastavro raises many types on garbage; all mean "not ours"
            raise DecodeError(
                f"not an Order ({wire_format}): {type(exc).__name__}: {_short(exc)}"
            ) from None

    def _decode_confluent(self, data: bytes) -> Order:
        if len(data) < CONFLUENT_HEADER.size:
            raise DecodeError(
                f"truncated Confluent frame: {len(data)} bytes, the header alone is 5"
            )
        _, schema_id = CONFLUENT_HEADER.unpack_from(data)
        found = None
        if schema_id not in self.schema_ids:
            found = self._writer_schema(schema_id)  # if it is ours, it joins schema_ids
            if found is None:
                raise DecodeError(self._unknown(schema_id))
        if schema_id in self.schema_ids:
            self.seen[schema_id] += 1
            order = _decode_common(data[CONFLUENT_HEADER.size :]) if _DIRECT else None
            if order is not None:
                return order
            return _decode_schemaless(data, CONFLUENT_HEADER.size, "Confluent-framed Avro")
        writer, reader = found
        order, end = reader(data, CONFLUENT_HEADER.size, writer.describe(schema_id))
        if end != len(data):
            raise DecodeError(
                f"not an Order ({writer.describe(schema_id)}): {len(data) - end} bytes left "
                "over after the record"
            )
        self.seen[schema_id] += 1
        return order

    def _unknown(self, schema_id: int) -> str:
        if self.source is not None:
            return (
                f"Confluent-framed record with schema id {schema_id}, which "
                f"{self.source.name} does not know"
            )
        known = ", ".join(str(i) for i in sorted(self.schema_ids)) or "none"
        return (
            f"Confluent-framed record with schema id {schema_id}, whose writer schema is "
            f"unknown: orders-tui reads schema id {known} as its Order schema (--schema-id), "
            "and without a schema registry (--schema-registry) cannot read another id"
        )

    def _writer_schema(self, schema_id: int) -> tuple[WriterSchema, ForeignReader] | None:
        if schema_id not in self._writers:
            found = self.source.writer_schema(schema_id) if self.source is not None else None
            if found is None:
                return None
            reader = ForeignReader(found.schema, found.describe(schema_id))
            if reader.is_ours:
                self.schema_ids.add(schema_id)
            self._writers[schema_id] = (found, reader)
        return self._writers[schema_id]

    def sharing_schemas(self) -> Decoder:
        """A decoder with this one's ids and fetched schemas, counting `seen` its own."""
        twin = Decoder((), self.source)
        twin.schema_ids, twin._writers = self.schema_ids, self._writers
        return twin

    def writer_of(self, data: bytes | None) -> tuple[int, WriterSchema | None] | None:
        """For a Confluent-framed value: its schema id, and the writer schema already
        known for it (None when not looked up, or unknown). Never fetches."""
        if (
            not data
            or len(data) < CONFLUENT_HEADER.size
            or detect_format(data) is not (WireFormat.CONFLUENT)
        ):
            return None
        _, schema_id = CONFLUENT_HEADER.unpack_from(data)
        found = self._writers.get(schema_id)
        return schema_id, found[0] if found else None

    def seen_labels(self) -> dict[str, int]:
        """Records read per schema id, labelled with its subject and version first."""
        labels = {}
        for schema_id, count in sorted(self.seen.items()):
            found = self._writers.get(schema_id)
            subject = found[0].subject if found else None
            where = f"{subject} v{found[0].version} " if subject else ""
            labels[f"{where}(id {schema_id})"] = count
        return labels


decode = Decoder()


def _decode_schemaless(data: bytes, start: int, what: str) -> Order:
    if _DIRECT:
        order = _decode_direct(data, start)
        if order is not None:
            return order
    buf = io.BytesIO(data)
    buf.seek(start)
    record = fastavro.schemaless_reader(buf, _PARSED, None)
    if buf.tell() != len(data):
        raise DecodeError(
            f"not an Order ({what}): {len(data) - buf.tell()} bytes left over after the record"
        )
    return _to_order(record)


def _decode_container(data: bytes) -> Order:
    try:
        container = read_container(data)
    except Truncated:
        raise DecodeError("not an Order (container): truncated Avro container file") from None
    except UntrustedAvroError as exc:
        raise DecodeError(f"not an Order (container): {exc}") from None
    if container.record_count != 1:
        raise DecodeError(f"Avro container file holds {container.record_count} records, expected 1")
    block = next(block for count, block in container.blocks if count)
    order, _ = _container_reader(container.schema_text)(block, 0, "container")
    return order


_READER_NAME = _PARSED["name"]  # full name, orders_tui.Order
_READER_NAMES = {_READER_NAME.rpartition(".")[2], *_PARSED.get("aliases", [])}
_WANTED = {"orderId": "string", "product": "string", "price": "double"}
_OUR_LAYOUT = _fields(_PARSED)


class ForeignReader:
    """Reads orders written with a writer schema someone else chose, within the limits of
    untrusted_avro.py. A schema that cannot be read as ours is refused when first used,
    with the reason; one laid out as ours takes the fast decoder."""

    def __init__(self, schema: object, what: str) -> None:
        self.refusal: str | None = None
        self.is_ours = False
        self._fields: OrderFieldsReader | None = None
        of = f" ({what})"
        try:
            root = compile_schema(schema)
        except UntrustedAvroError as exc:
            self.refusal = f"not an Order{of}: {exc}"
            return
        if root.kind != "record":
            self.refusal = f"not an Order{of}: its writer schema is {root.kind}, not a record"
            return
        if root.name.rpartition(".")[2] not in _READER_NAMES and root.name not in _READER_NAMES:
            self.refusal = (
                f"not an Order{of}: written as record {root.name!r}, which is not "
                f"{_READER_NAME} or an alias of it"
            )
            return
        self.is_ours = _layout(root) == _OUR_LAYOUT and _DIRECT
        try:
            self._fields = OrderFieldsReader(root, _WANTED, _READER_NAME)
        except SchemaMismatch as exc:
            self.refusal = (
                f"not an Order{of}: its writer schema {root.name} cannot be read "
                f"as {_READER_NAME} ({exc})"
            )

    def __call__(self, data: bytes, start: int, what: str) -> tuple[Order, int]:
        """The order at `start`, and the position after it."""
        if self.refusal is not None:
            raise DecodeError(self.refusal)
        if self.is_ours:
            order = _decode_direct(data, start)  # None unless the record ends the data
            if order is not None:
                return order, len(data)
        try:
            values, end = self._fields(data, start)
        except SchemaMismatch as exc:
            raise DecodeError(
                f"not an Order ({what}): its writer schema cannot be read as {_READER_NAME} ({exc})"
            ) from None
        except Truncated:
            raise DecodeError(
                f"truncated or not an Order ({what}): the value ends mid-record"
            ) from None
        except UntrustedAvroError as exc:
            raise DecodeError(f"not an Order ({what}): {exc}") from None
        return _to_order(values), end


def _layout(root: Node) -> list[tuple[str, str]]:
    return [(name, node.kind) for name, node in root.fields]


_CONTAINER_READERS: dict[str, ForeignReader] = {}
_MAX_CONTAINER_READERS = 64


def _container_reader(schema_text: str) -> ForeignReader:
    """The reader for a container's writer schema, compiled once per schema text."""
    reader = _CONTAINER_READERS.get(schema_text)
    if reader is None:
        try:
            reader = ForeignReader(parse_schema_text(schema_text), "container")
        except UntrustedAvroError as exc:
            raise DecodeError(f"not an Order (container): {exc}") from None
        if len(_CONTAINER_READERS) >= _MAX_CONTAINER_READERS:
            _CONTAINER_READERS.pop(next(iter(_CONTAINER_READERS)))
        _CONTAINER_READERS[schema_text] = reader
    return reader


def _short(detail: object, limit: int = 160) -> str:
    text = str(detail)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _to_order(record: object) -> Order:
    if not isinstance(record, Mapping):
        raise DecodeError(f"not an Order: the record is a {type(record).__name__}")
    order_id, product, price = (record.get(f) for f in ("orderId", "product", "price"))
    if not isinstance(order_id, str) or not isinstance(product, str):
        raise DecodeError("not an Order: orderId and product must be strings")
    if not isinstance(price, int | float) or isinstance(price, bool):
        raise DecodeError("not an Order: price must be a number")
    return Order(orderId=order_id, product=product, price=float(price))
