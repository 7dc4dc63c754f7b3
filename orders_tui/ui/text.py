"""Untrusted text (product names, keys, headers) shown literally: never as Rich markup,
never as terminal control sequences."""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 control characters and DEL: an ESC among them would start a terminal escape
# sequence. Each is shown as a visible \\xNN instead.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def literal(text: str, style: str = "") -> Text:
    """A Text (never parsed as markup) with control characters made visible."""
    return Text(visible(text), style=style, end="")
