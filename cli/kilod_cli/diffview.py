"""An attempt's diff for people: file headers with risk flags, hunks highlighted in each file's language.

Used only when stdout is a terminal (or FORCE_COLOR asks for one); piped output is the
daemon's own unified text. Each side of a hunk (old: context + deleted lines, new:
context + added lines) is highlighted as one block with the lexer for the file's name,
so strings and comments that span lines come out right; then every line gets a gutter
(old and new line numbers, the +/- sign) and added or deleted lines a green or red
background across the whole width. Everything the agent wrote goes through
`kilod_cli.text`: control characters and bidi overrides are shown, never obeyed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename, guess_lexer
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.syntax import ANSISyntaxTheme, Syntax, SyntaxTheme
from rich.text import Text

from kilod_cli.text import pieces, visible

STATUS_STYLES = {"added": "bold green", "deleted": "bold red", "modified": "bold yellow", "renamed": "bold cyan"}
RISK_STYLE = Style.parse("bold yellow")
UNSAFE_STYLE = Style.parse("reverse")
TINTS = {"add": Style.parse("on #113d1c"), "delete": Style.parse("on #4a1518")}
SIGN_STYLES = {"add": Style.parse("bold green"), "delete": Style.parse("bold red")}
SIGNS = {"add": "+", "delete": "-", "context": " ", "note": " "}
GUTTER_STYLE = Style.parse("dim")
HUNK_STYLE = Style.parse("cyan")
NOTE_STYLE = Style.parse("dim italic")
# Enough of a file for pygments to pick between lexers that claim the same name.
LEXER_SAMPLE_CHARS = 4096
# Below this many columns for code the line numbers are left out.
MIN_CODE_WIDTH = 30
TAB_SIZE = 8


def default_theme() -> SyntaxTheme:
    """The terminal's own 16 colours: readable on light and dark backgrounds alike."""
    theme = Syntax.get_theme("ansi_dark")
    assert isinstance(theme, ANSISyntaxTheme)
    return theme


def lexer_for(path: str, sample: str) -> Lexer:
    """The lexer for a file's name; a `#!` line decides for files without a known name."""
    name = path.rsplit("/", 1)[-1]
    options = {"stripnl": False, "ensurenl": False}
    try:
        return get_lexer_for_filename(name, sample, **options)
    except ClassNotFound:
        pass
    if sample.startswith("#!"):
        try:
            return guess_lexer(sample.split("\n", 1)[0], **options)
        except ClassNotFound:
            pass
    return TextLexer(**options)


def append_visible(text: Text, value: str, style: Style | str | None = None) -> None:
    """Append agent-written `value` with every unsafe character shown as a (reversed) stand-in."""
    for piece, unsafe in pieces(value):
        start = len(text)
        text.append(piece, style)
        if unsafe:
            text.stylize(UNSAFE_STYLE, start, len(text))


def highlight_block(lines: list[str], lexer: Lexer, theme: SyntaxTheme) -> list[Text]:
    """Each of `lines` highlighted, lexed together so multi-line tokens keep their colour."""
    if not lines:
        return []
    # pygments reads a lone \r as a line break: show it instead, which also keeps the line count
    source = "\n".join(line.replace("\r", "\u240d") for line in lines) + "\n"
    block = Text()
    for token_type, value in lexer.get_tokens(source):
        append_visible(block, value, theme.get_style_for_token(token_type))
    highlighted = list(block.split("\n", allow_blank=True))[: len(lines)]
    if len(highlighted) != len(lines):  # a lexer that changed the text: show it plain rather than misaligned
        highlighted = []
        for line in lines:
            plain = Text()
            append_visible(plain, line.replace("\r", "\u240d"))
            highlighted.append(plain)
    return highlighted


def highlight_hunk(lines: list[dict[str, Any]], lexer: Lexer, theme: SyntaxTheme) -> list[Text]:
    """One highlighted Text per diff line, in order; each side of the hunk lexed as one block."""
    old = highlight_block([str(line["text"]) for line in lines if line["kind"] in ("context", "delete")],
                          lexer, theme)
    new = highlight_block([str(line["text"]) for line in lines if line["kind"] in ("context", "add")],
                          lexer, theme)
    old_lines, new_lines = iter(old), iter(new)
    result: list[Text] = []
    for line in lines:
        kind = line["kind"]
        if kind == "note":
            note = Text()
            append_visible(note, "\\ " + str(line["text"]), NOTE_STYLE)
            result.append(note)
        elif kind == "delete":
            result.append(next(old_lines))
        elif kind == "add":
            result.append(next(new_lines))
        else:
            next(old_lines)
            result.append(next(new_lines))
    return result


def mode_text(file: dict[str, Any]) -> str | None:
    old, new = file.get("old_mode"), file.get("new_mode")
    if file.get("status") == "added":
        return f"new file, mode {new}" if new and new != "100644" else None
    if file.get("status") == "deleted":
        return None
    if old and new and old != new:
        return f"mode {old} → {new}"
    return None


def file_header(file: dict[str, Any]) -> Text:
    status = str(file.get("status") or "modified")
    header = Text()
    header.append(f"{status:<9}", STATUS_STYLES.get(status, "bold"))
    header.append(" ")
    if file.get("old_path") and file.get("old_path") != file.get("path"):
        append_visible(header, str(file["old_path"]), "bold")
        header.append(" → ")
    append_visible(header, str(file["path"]), "bold")
    if file.get("binary"):
        header.append("  binary", "dim")
    else:
        header.append("  ")
        header.append(f"+{file.get('additions', 0)}", "green")
        header.append(" ")
        header.append(f"-{file.get('deletions', 0)}", "red")
    mode = mode_text(file)
    if mode:
        header.append(f"\n  {mode}", "magenta")
    for risk in file.get("risks") or []:
        header.append("\n  ⚠ ", RISK_STYLE)
        append_visible(header, str(risk), RISK_STYLE)
    return header


class HunkLines:
    """A hunk's lines with a gutter, folded to the width, tinted across it; yields segments directly
    (a Table per hunk would take seconds on a large diff)."""

    def __init__(self, lines: list[dict[str, Any]], code: list[Text], number_width: int) -> None:
        self.lines = lines
        self.code = code
        self.number_width = number_width

    def _gutter(self, line: dict[str, Any], numbers: bool) -> Text:
        kind = str(line["kind"])
        gutter = Text()
        if numbers:
            width = self.number_width
            old = "" if line.get("old") is None else str(line["old"])
            new = "" if line.get("new") is None else str(line["new"])
            gutter.append(f"{old:>{width}} {new:>{width}} ", GUTTER_STYLE)
        gutter.append(SIGNS.get(kind, " "), SIGN_STYLES.get(kind))
        gutter.append(" ")
        return gutter

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        numbers = width - (2 * self.number_width + 2) - 2 >= MIN_CODE_WIDTH
        for line, code in zip(self.lines, self.code, strict=True):
            gutter = self._gutter(line, numbers)
            code_width = max(1, width - gutter.cell_len)
            code = code.copy()
            code.expand_tabs(TAB_SIZE)
            parts: Iterable[Text] = ([code] if cell_len(code.plain) <= code_width
                                     else code.wrap(console, code_width, overflow="fold", no_wrap=False))
            tint = TINTS.get(str(line["kind"]))
            for index, part in enumerate(parts):
                row = gutter.copy() if index == 0 else Text(" " * gutter.cell_len)
                row.append_text(part)
                if tint is not None:  # the tint runs to the edge, like a highlighted row
                    row.pad_right(max(0, width - row.cell_len))
                    row.stylize(tint)
                yield from row.render(console)
                yield Segment.line()


def _number_width(file: dict[str, Any]) -> int:
    largest = 1
    for hunk in file.get("hunks") or []:
        largest = max(largest, int(hunk.get("old_start", 0)) + int(hunk.get("old_lines", 0)),
                      int(hunk.get("new_start", 0)) + int(hunk.get("new_lines", 0)))
    return len(str(largest))


def _sample(file: dict[str, Any]) -> str:
    sample: list[str] = []
    size = 0
    for hunk in file.get("hunks") or []:
        for line in hunk.get("lines") or []:
            if line["kind"] in ("context", "add", "delete"):
                sample.append(str(line["text"]))
                size += len(sample[-1]) + 1
                if size > LEXER_SAMPLE_CHARS:
                    return "\n".join(sample)
    return "\n".join(sample)


def file_view(file: dict[str, Any], theme: SyntaxTheme) -> Iterator[Any]:
    """The renderables of one file: header, then each hunk's header and lines."""
    yield file_header(file)
    hunks = file.get("hunks") or []
    if file.get("binary"):
        yield Text("  binary file: not shown", "dim")
        return
    if not hunks:
        yield Text("  no change to the content", "dim")
        return
    path = str(file.get("path") or "")
    lexer = lexer_for(path, _sample(file))
    width = _number_width(file)
    for hunk in hunks:
        header = Text()
        append_visible(header, str(hunk.get("header") or ""), HUNK_STYLE)
        yield header
        lines: list[dict[str, Any]] = hunk.get("lines") or []
        yield HunkLines(lines, highlight_hunk(lines, lexer, theme), width)


def summary(diff: dict[str, Any]) -> Text:
    files = diff.get("files") or []
    line = Text()
    line.append(f"attempt {visible(str(diff.get('attempt_id', '?')))}", "bold")
    base = str(diff.get("base_commit") or "")
    if base:
        line.append(f" against {base[:12]}")
    line.append(f": {len(files)} file{'s' if len(files) != 1 else ''} changed, ")
    line.append(f"+{diff.get('additions', 0)}", "green")
    line.append(" ")
    line.append(f"-{diff.get('deletions', 0)}", "red")
    flagged = [f for f in files if f.get("risks")]
    nested = diff.get("nested_repositories") or []
    if flagged:
        line.append(f"\n⚠ {len(flagged)} file{'s' if len(flagged) != 1 else ''} flagged for a closer look "
                    "(can run code on your machine later)", RISK_STYLE)
    for path in nested:
        line.append("\n⚠ nested repository, not in the diff: ", RISK_STYLE)
        append_visible(line, str(path), RISK_STYLE)
    return line


def diff_view(diff: dict[str, Any], theme: SyntaxTheme | None = None) -> Iterator[Any]:
    """Renderables for the whole diff, to print one after the other."""
    theme = theme or default_theme()
    yield summary(diff)
    files = diff.get("files") or []
    if not files:
        yield Text("(no changes)", "dim")
    for file in files:
        yield Text("")
        yield from file_view(file, theme)
