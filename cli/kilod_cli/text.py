"""Showing text the agent wrote on a person's terminal without letting it drive the terminal.

Diff lines, paths and tool output come from the agent. An escape sequence in them could
recolour, hide or rewrite what a reviewer sees (or set the clipboard, or a window title);
a bidi override could make code read differently from what it does. Such characters are
shown as visible stand-ins instead: C0 controls as their Unicode control pictures
(ESC → ␛), the rest as `<U+202E>`. Tabs stay tabs.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidi formatting characters.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def stand_in(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def visible(text: str) -> str:
    """`text` with every unsafe character replaced by its stand-in (tabs and newlines kept)."""
    return UNSAFE.sub(lambda match: stand_in(match.group()), text)


def pieces(text: str) -> list[tuple[str, bool]]:
    """`text` split into (piece, unsafe) runs, unsafe pieces already replaced by stand-ins."""
    found: list[tuple[str, bool]] = []
    position = 0
    for match in UNSAFE.finditer(text):
        if match.start() > position:
            found.append((text[position:match.start()], False))
        found.append((stand_in(match.group()), True))
        position = match.end()
    if position < len(text):
        found.append((text[position:], False))
    return found
