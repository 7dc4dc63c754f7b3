"""Untrusted text shown as it is: every character a terminal would act on, or a reader
could not see, written as an escape. Used by the panes, the CLI's lines and its JSON."""

from __future__ import annotations

import re

# Shown as an escape (\\xNN, \\uNNNN, \\UNNNNNNNN) instead of sent to the terminal:
# - C0 and C1 control characters and DEL: an ESC or a CSI starts a terminal escape
#   sequence (\x1b]0;...\x07 sets the window title);
# - bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C): an RLO makes
#   "gpj.exe" read as "exe.jpg" (the "Trojan Source" trick);
# - zero-width and other invisible format characters, and the Unicode tag block: text a
#   reader cannot see, e.g. two order ids that look the same and are not;
# - the line and paragraph separators, which break a line where none is shown;
# - the backslash itself, so an escape seen always stands for one character.
UNSEEN_CHARACTERS = (
    "\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001bca0-\U0001bca3\U000e0000-\U000e0fff"
)
_UNSEEN = re.compile(f"[\\\\{UNSEEN_CHARACTERS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x5C:
        return "\\\\"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """`text` with every character a terminal would act on, or a reader could not see,
    written as an escape."""
    return _UNSEEN.sub(_escape, text)
