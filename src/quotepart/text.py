"""Text people typed, made safe to show: names, reasons and notes reach terminals and files.

Names are refused at registration when they hold a control character (Unicode category Cc:
ESC, BEL, line breaks) or a bidirectional override or isolate (U+202A-U+202E,
U+2066-U+2069): printed raw, the first can retitle or repaint a terminal and the second
can make a name read backwards. `printable` shows any other text people wrote (a claim's
reason, a note) with those characters spelled out as escapes; each output format then
escapes what is special to it (rich markup, CSV formulas, Mermaid, DOT, HTML).
"""

from __future__ import annotations

import re

UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters (category Cc) and the bidirectional overrides and isolates."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def unsafe_character(text: str) -> tuple[int, str] | None:
    """The position and `U+XXXX` code of the first character `UNSAFE_RE` matches, if any."""
    found = UNSAFE_RE.search(text)
    return None if found is None else (found.start(), f"U+{ord(found.group()):04X}")


def _spelled(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control and bidirectional character written as `\\x1b` / `\\u202e`."""
    return UNSAFE_RE.sub(_spelled, text)


def csv_cell(text: str) -> str:
    """A text cell a spreadsheet will not run: a leading `'` before = + - @ (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text
