"""Server-side syntax highlighting of a structured diff, with Pygments.

Each hunk is highlighted as two coherent texts, its old side (context and deleted
lines) and its new side (context and added lines), so multi-line strings and comments
colour right; the result is split back into lines. Output carries Pygments' CSS
classes, never inline styles; `stylesheet()` gives the light and the dark theme.
Whatever cannot be highlighted safely (unknown type, huge hunks, line endings the
lexer would rewrite) is escaped as plain text.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from pygments import lex
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

SCOPE = ".hl"
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
# Beyond this many characters on one side of a hunk, plain text: highlighting must never stall a diff.
SIDE_CHAR_LIMIT = 400_000
LINE_CHAR_LIMIT = 4_000

_FORMATTER = HtmlFormatter(nowrap=True)


@functools.lru_cache(maxsize=256)
def lexer_for(path: str) -> Lexer:
    name = path.rsplit("/", 1)[-1]
    try:
        return get_lexer_for_filename(name, stripnl=False, stripall=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def _plain(lines: list[str]) -> list[str]:
    return [html.escape(line, quote=False) for line in lines]


class _Sink:
    """A file-like that collects what the formatter writes."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _format(lexer: Lexer, lines: list[str]) -> list[str]:
    sink = _Sink()
    _FORMATTER.format(lex("\n".join(lines) + "\n", lexer), sink)
    fragments = sink.text.split("\n")
    if fragments and fragments[-1] == "":
        fragments.pop()
    return fragments


def highlight_hunk(lexer: Lexer, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hunk's lines with `html` in place of `text`."""
    old_index = [i for i, line in enumerate(lines) if line["kind"] in ("context", "delete")]
    new_index = [i for i, line in enumerate(lines) if line["kind"] in ("context", "add")]
    rendered: dict[int, str] = {}
    old_html = highlight_side(lexer, [lines[i]["text"] for i in old_index])
    new_html = highlight_side(lexer, [lines[i]["text"] for i in new_index])
    for i, fragment in zip(old_index, old_html, strict=True):
        rendered[i] = fragment
    for i, fragment in zip(new_index, new_html, strict=True):
        rendered[i] = fragment  # context lines: the new side wins
    result = []
    for i, line in enumerate(lines):
        out = {k: v for k, v in line.items() if k != "text"}
        out["html"] = rendered.get(i) or html.escape(line["text"], quote=False)
        result.append(out)
    return result


def highlight_side(lexer: Lexer, lines: list[str]) -> list[str]:
    if not lines:
        return []
    if isinstance(lexer, TextLexer) or sum(len(x) for x in lines) > SIDE_CHAR_LIMIT \
            or any(len(x) > LINE_CHAR_LIMIT or "\r" in x for x in lines):
        return _plain(lines)
    fragments = _format(lexer, lines)
    return fragments if len(fragments) == len(lines) else _plain(lines)


def highlight_diff(diff: dict[str, Any]) -> dict[str, Any]:
    """A copy of the structured diff (`Review.diff`) whose lines carry `html` instead of `text`."""
    files = []
    for file in diff["files"]:
        lexer = lexer_for(file["path"])
        files.append({
            **file,
            "language": None if isinstance(lexer, TextLexer) else lexer.name,
            "hunks": [{**hunk, "lines": highlight_hunk(lexer, hunk["lines"])} for hunk in file["hunks"]],
        })
    return {**diff, "files": files, "format": "html"}


def _rules(style: str) -> list[str]:
    """Token rules only: the page draws its own backgrounds."""
    defs = HtmlFormatter(style=style).get_style_defs(SCOPE)
    return [line for line in defs.splitlines() if line.startswith(SCOPE + " .") and ".hll" not in line]


@functools.lru_cache(maxsize=1)
def stylesheet() -> str:
    light = "\n".join(_rules(LIGHT_STYLE))
    dark = "\n".join("  " + rule for rule in _rules(DARK_STYLE))
    return (f"/* Pygments: {LIGHT_STYLE} (light), {DARK_STYLE} (dark) */\n{light}\n"
            f"@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n")
