"""Untrusted text (product names, keys, headers) shown literally: never as Rich markup,
never as terminal control sequences, never reordered or hidden by invisible characters."""

from __future__ import annotations

from rich.text import Text
from textual.app import App
from textual.widget import Widget

from orders_tui.visible import visible

__all__ = ["literal", "notify_literally", "visible"]


def literal(text: str, style: str = "") -> Text:
    """A Text (never parsed as markup) with control characters made visible."""
    return Text(visible(text), style=style, end="")


def notify_literally(target: App | Widget, text: str, **options: object) -> None:
    """A toast showing `text` as written: Textual reads a notification as markup unless
    told, and a notice may quote others (a command's sender, a topic, a broker)."""
    target.notify(visible(text), markup=False, **options)
