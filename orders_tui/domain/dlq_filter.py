"""The DLQ filter language, shared by the pane's `/` line and `orders-tui dlq --where`.

    type=permanent price>1200            both hold (terms are joined by AND)
    reason~"above the .* threshold"      a regular expression (RE2: linear time)
    lamp                                 a bare word: in the reason, key, order id,
                                         product or type, case-insensitive
    type=deserialization or replays>=1   either group holds (`or` splits groups)
    header.source=fuzzer  time>=10:42    any header by name; times (see below)

A term is FIELD OP VALUE with no spaces around OP, or a bare word; quote a value with
spaces ("..." or '...'). Operators: `=` `!=` (equal as text, or as numbers for number
fields), `~` `!~` (regex search), `<` `<=` `>` `>=` (numbers and times).

Regular expressions are RE2's (google-re2), which match in time linear in the text:
Python's `re` backtracks, and `reason~(a+)+$` took it more than 30 s on one reason of 35
characters, with SIGTERM ignored. RE2 has no backreferences and no lookaround; such a
pattern is a FilterError naming the term.

Fields: `type` (error_type), `reason`, `key`, `order` (orderId), `product`, `price`,
`topic`, `partition`, `offset` (the original record's), `replays` (replay_count),
`time` (when it was dead-lettered), `dlq.partition`, `dlq.offset` (the entry's own
place), `header.NAME` (the last header of that name, as text).

Times: `2026-11-27T10:42[:05]`, `2026-11-27` (midnight), `10:42[:05]` (today), each in
local time; or relative to now: `-15m`, `-2h`, `-1d`, `-30s`.

A field that a record does not have (the price of a value that does not decode, a
header it lacks) matches only `!=` and `!~`.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import re2

from orders_tui.domain.failure import Failure, text
from orders_tui.domain.order import Order

NUMBER_FIELDS = {"price", "partition", "offset", "replays", "dlq.partition", "dlq.offset"}
TEXT_FIELDS = {"type", "reason", "key", "order", "product", "topic"}
TIME_FIELD = "time"
HEADER_PREFIX = "header."
FIELDS = [*sorted(NUMBER_FIELDS | TEXT_FIELDS | {TIME_FIELD}), "header.NAME"]
NEEDS_ORDER = {"order", "product", "price"}
# A header's name may hold anything but an operator (quote it if it has spaces).
_TERM = re.compile(r"^(header\.[^=!~<>]+|[A-Za-z][\w.]*?)(!=|!~|<=|>=|=|~|<|>)(.*)$", re.DOTALL)
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is ours to say, once, not RE2's on stderr
_RE2_OPTIONS.max_mem = 8 << 20  # bytes a compiled pattern may take


class FilterError(ValueError):
    """The filter does not parse; the message names the term and what is expected."""


class Subject(Protocol):
    """What a filter reads of a DLQ entry (kafka.dlq.DlqEntry is one)."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: list[tuple[str, bytes | None]]

    @property
    def failure(self) -> Failure: ...

    @property
    def order(self) -> Order | None: ...


def _key_text(subject: Subject) -> str | None:
    return None if subject.key is None else text(subject.key)


def _order_field(index: int) -> Callable[[Subject], object]:
    def read(subject: Subject) -> object:
        order = subject.order
        return None if order is None else order[index]

    return read


# How each field is read off an entry (header.NAME aside).
_READERS: dict[str, Callable[[Subject], object]] = {
    "type": lambda s: s.failure.error_type,
    "reason": lambda s: s.failure.reason,
    "topic": lambda s: s.failure.original_topic,
    "partition": lambda s: s.failure.original_partition,
    "offset": lambda s: s.failure.original_offset,
    "replays": lambda s: s.failure.replay_count,
    "time": lambda s: s.timestamp_ms,
    "dlq.partition": lambda s: s.partition,
    "dlq.offset": lambda s: s.offset,
    "key": _key_text,
    "order": _order_field(0),
    "product": _order_field(1),
    "price": _order_field(2),
}


def _field_value(subject: Subject, name: str) -> object:
    if name.startswith(HEADER_PREFIX):
        wanted = name[len(HEADER_PREFIX) :]
        for key, value in reversed(subject.headers):
            if key == wanted:
                return text(value)
        return None
    return _READERS[name](subject)


def parse_time(value: str, now: float | None = None) -> int:
    """A time the filter accepts, as ms since the epoch (see the module's doc)."""
    now = time.time() if now is None else now
    relative = _RELATIVE.match(value)
    if relative:
        return int((now - float(relative.group(1)) * _UNITS[relative.group(2)]) * 1000)
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
            clock = datetime.strptime(value, "%H:%M:%S" if value.count(":") == 2 else "%H:%M")
            moment = datetime.fromtimestamp(now).replace(
                hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0
            )
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(
            f"time {value!r}: expected 2026-11-27T10:42, 10:42 (today) or -15m / -2h / -1d"
        ) from None
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Term:
    name: str
    op: str
    value: str
    test: Callable[[object], bool] = field(repr=False, compare=False)

    def __call__(self, subject: Subject) -> bool:
        return self.test(_field_value(subject, self.name))


def _word_term(word: str) -> Callable[[Subject], bool]:
    lowered = word.lower()

    def test(subject: Subject) -> bool:
        failure = subject.failure
        texts = [failure.reason, failure.error_type]
        if subject.key is not None:
            texts.append(text(subject.key))
        order = subject.order
        if order is not None:
            texts += [order.orderId, order.product]
        return any(lowered in t.lower() for t in texts)

    return test


def bounded_regex(token: str, raw: str) -> re2._Regexp:  # re2 exports no public type
    """`raw` compiled by RE2 (linear-time matching), or a FilterError naming `token`."""
    try:
        return re2.compile(raw, _RE2_OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode("utf-8", "replace") if exc.args else str(exc)
        raise FilterError(
            f"{token!r}: not a regular expression orders-tui runs ({why}); the syntax is "
            "RE2's, which matches in linear time: no backreferences, no lookaround"
        ) from None


def _compile_term(token: str, now: float | None) -> tuple[Callable[[Subject], bool], bool]:
    """A predicate for one token, and whether it needs the decoded order."""
    match = _TERM.match(token)
    if match is None:
        if not token:
            raise FilterError("an empty term: quote a value with spaces")
        return _word_term(token), True
    name, op, raw = match.groups()
    if name not in NUMBER_FIELDS | TEXT_FIELDS | {TIME_FIELD} and not (
        name.startswith(HEADER_PREFIX) and len(name) > len(HEADER_PREFIX)
    ):
        raise FilterError(f"{token!r}: no field {name!r}; fields are {', '.join(FIELDS)}")
    needs_order = name in NEEDS_ORDER
    if op in ("~", "!~"):
        pattern = bounded_regex(token, raw)

        def search(value: object) -> bool:
            return value is not None and pattern.search(str(value)) is not None

        test = search if op == "~" else (lambda value: not search(value))
        return Term(name, op, raw, test), needs_order
    if name in NUMBER_FIELDS or name == TIME_FIELD:
        if name == TIME_FIELD:
            wanted = parse_time(raw, now)
        else:
            try:
                wanted = float(raw)
            except ValueError:
                raise FilterError(f"{token!r}: {name} takes a number, got {raw!r}") from None
            if not math.isfinite(wanted):
                raise FilterError(f"{token!r}: {name} takes a finite number, got {raw!r}")
        compare = _COMPARE[op]

        def numeric(value: object) -> bool:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return op == "!="
            return compare(value, wanted)

        return Term(name, op, raw, numeric), needs_order
    if op not in ("=", "!="):
        raise FilterError(f"{token!r}: {name} is text: use =, != , ~ or !~")

    def equal(value: object) -> bool:
        return (value == raw) if op == "=" else (value != raw)

    return Term(name, op, raw, equal), needs_order


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Filter:
    """A parsed filter: call it on an entry. `needs_order` says whether any term reads
    the decoded order (a scan can skip decoding otherwise)."""

    text: str
    groups: tuple[tuple[Callable[[Subject], bool], ...], ...]
    needs_order: bool

    def __call__(self, subject: Subject) -> bool:
        return any(all(term(subject) for term in group) for group in self.groups)


MATCH_ALL = Filter("", ((),), False)


def parse_filter(source: str, now: float | None = None) -> Filter:
    """Parse the filter language (see the module's doc); FilterError says what is wrong."""
    try:
        tokens = shlex.split(source)
    except ValueError as exc:
        raise FilterError(f"{source!r}: {exc} (close the quote)") from None
    if not tokens:
        return MATCH_ALL
    groups: list[list[Callable[[Subject], bool]]] = [[]]
    needs_order = False
    for token in tokens:
        if token == "or":
            if not groups[-1]:
                raise FilterError(f"{source!r}: `or` needs a term on each side")
            groups.append([])
            continue
        term, needs = _compile_term(token, now)
        groups[-1].append(term)
        needs_order = needs_order or needs
    if not groups[-1]:
        raise FilterError(f"{source!r}: `or` needs a term on each side")
    return Filter(source, tuple(tuple(g) for g in groups), needs_order)
