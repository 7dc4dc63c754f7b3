"""JSON for a parser and a terminal alike: RFC 8259 only, one line, nothing a terminal
acts on.

- Python's json writes NaN and Infinity, which are not JSON (RFC 8259, section 6), and
  which strict parsers refuse. A non-finite number is written as the string "NaN",
  "Infinity" or "-Infinity", as the protobuf JSON mapping does for doubles.
- Text is kept readable (not ASCII-escaped), except the characters `visible.visible`
  shows as escapes: C1 controls, bidi overrides, invisible format characters. JSON
  escapes them (\\uNNNN), so the value parses to the same string and `jq` or a
  terminal sees no raw control character.
- Bytes are written unambiguously: {"text": ...} when they are UTF-8, else
  {"base64": ...}; absent bytes are null, distinct from {"text": ""}.
"""

from __future__ import annotations

import base64
import json
import math
import re

from orders_tui.visible import UNSEEN_CHARACTERS

NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
# Left raw by json.dumps(ensure_ascii=False) (all but C0 controls), and worth an escape.
_TO_ESCAPE = re.compile(f"[{UNSEEN_CHARACTERS}]")


def _utf16_escape(match: re.Match[str]) -> str:
    encoded = match.group().encode("utf-16-be")
    return "".join(f"\\u{encoded[i]:02x}{encoded[i + 1]:02x}" for i in range(0, len(encoded), 2))


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else NON_FINITE[value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: object) -> str:
    """`value` as one line of RFC 8259 JSON (see the module's doc)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: rare, so looked for only then
        text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)
    return _TO_ESCAPE.sub(_utf16_escape, text)


def bytes_json(data: bytes | None, as_text: bool = True) -> dict[str, str] | None:
    """Bytes as JSON, unambiguously: {"text": ...} for UTF-8 (when `as_text`), else
    {"base64": ...}; None (null) when there are none."""
    if data is None:
        return None
    if as_text:
        try:
            return {"text": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"base64": base64.b64encode(data).decode("ascii")}
