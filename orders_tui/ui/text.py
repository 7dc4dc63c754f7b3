"""Untrusted text (product names, keys, headers) shown literally: never as Rich markup,
never as terminal control sequences, never reordered or hidden by invisible characters."""

from __future__ import annotations

from rich.text import Text

from orders_tui.visible import visible

__all__ = ["literal", "visible"]


def literal(text: str, style: str = "") -> Text:
    """A Text (never parsed as markup) with control characters made visible."""
    return Text(visible(text), style=style, end="")
