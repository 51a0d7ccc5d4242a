"""The board as lines of styled text: what fits the screen, newest cards first, the rest counted.

A board of a thousand cards must read at a glance and draw in a blink, so only the cards
that fit are laid out: each column shows its newest cards and ends with "+N more"; its
title carries the count. Standard library only: `ctl board` fetches, lays out and prints
without importing rich (importing and measuring with rich was most of its time); `--watch`
hands the same lines to rich's Live (`boardview.py`). Titles and model names are the
agent's or a person's words: they go through `visible` and are never read as markup.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from typing import Any, NamedTuple, TextIO

from kilod_cli.text import visible

# Below this many columns four side-by-side columns are too narrow to read.
SIDE_BY_SIDE_MIN_WIDTH = 100
# Lines and columns a board printed to a pipe may take when LINES / COLUMNS do not say
# (`--all` prints every card); a wide board reads better in a log file than 80 columns.
PIPED_HEIGHT = 50
PIPED_WIDTH = 160
# The side-by-side table's borders and header: top, titles, rule, bottom.
TABLE_CHROME_LINES = 4
STACKED_INDENT = 2
# Colours only: which states exist and how they group comes from the daemon (kilod_cli.meta);
# a state not named here (a newer daemon's) is shown plain. Style names are rich's, so the
# same lines draw through rich (--watch) and through `to_ansi` alike.
STATE_STYLES = {
    "queued": "dim",
    "starting": "yellow",
    "running": "bold yellow",
    "review": "bold green",
    "approved": "bold green",
    "discarded": "dim",
    "failed": "bold red",
    "cancelled": "magenta",
    "paused": "bold magenta",
}
SGR = {"bold": "1", "dim": "2", "underline": "4", "red": "31", "green": "32", "yellow": "33", "magenta": "35",
       "cyan": "36"}

Span = tuple[str, str]   # (text, style: "" or names from SGR, space-separated)
Line = list[Span]


# -- cells -------------------------------------------------------------------------


def char_cells(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cell_len(text: str) -> int:
    """Terminal cells `text` takes (wide East Asian characters two, combining marks none)."""
    return len(text) if text.isascii() else sum(char_cells(char) for char in text)


def fit_cells(text: str, cells: int, pad: bool = True) -> str:
    """`text` in `cells` terminal cells at most: cut with "…" if longer, padded to `cells` if `pad`."""
    width = cell_len(text)
    if width <= cells:
        return text + " " * (cells - width) if pad else text
    if cells <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for char in text:
        need = char_cells(char)
        if used + need > cells - 1:
            break
        kept.append(char)
        used += need
    return "".join(kept) + "…" + (" " * (cells - 1 - used) if pad else "")


def line_len(line: Line) -> int:
    return sum(cell_len(text) for text, _ in line)


def cut_line(line: Line, cells: int) -> Line:
    """The line in `cells` cells at most: the span that crosses the edge is cut with "…", the rest dropped."""
    if line_len(line) <= cells:
        return line
    kept: Line = []
    room = cells
    for text, style in line:
        width = cell_len(text)
        if width < room:
            kept.append((text, style))
            room -= width
            continue
        kept.append((fit_cells(text, room, pad=False), style))
        break
    return kept


def pad_line(line: Line, cells: int) -> Line:
    """Exactly `cells` cells: cut, or padded with spaces."""
    line = cut_line(line, cells)
    short = cells - line_len(line)
    return [*line, (" " * short, "")] if short > 0 else line


# -- the screen --------------------------------------------------------------------


class Screen(NamedTuple):  # NamedTuples, not dataclasses: importing those costs ~10 ms (inspect, ast)
    width: int
    height: int   # lines the board may take
    terminal: bool
    color: bool

    @classmethod
    def of(cls, stream: TextIO) -> Screen:
        """Where `stream` goes: the terminal's size (COLUMNS / LINES first), else PIPED_WIDTH x PIPED_HEIGHT.

        Colour only on a terminal (or FORCE_COLOR), never with NO_COLOR or TERM=dumb.
        """
        terminal = stream.isatty()
        columns, lines = _terminal_size()
        color = ((terminal or bool(os.environ.get("FORCE_COLOR"))) and "NO_COLOR" not in os.environ
                 and os.environ.get("TERM") != "dumb")
        return cls(columns, lines, terminal, color)


def _terminal_size() -> tuple[int, int]:
    """`shutil.get_terminal_size((PIPED_WIDTH, PIPED_HEIGHT))` without importing shutil (and bz2, lzma)."""
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno()) if sys.__stdout__ is not None else None
    except (AttributeError, ValueError, OSError):
        size = None
    found = []
    for name, fallback, measured in (("COLUMNS", PIPED_WIDTH, size.columns if size else 0),
                                     ("LINES", PIPED_HEIGHT, size.lines if size else 0)):
        value = os.environ.get(name, "")
        found.append(int(value) if value.isdigit() and int(value) > 0 else measured if measured > 0 else fallback)
    return found[0], found[1]


def to_ansi(lines: list[Line], color: bool) -> str:
    """The lines as text to print: styled with SGR escapes if `color`, trailing blanks dropped."""
    out = []
    for line in lines:
        parts = []
        for text, style in line:
            codes = ";".join(SGR[name] for name in style.split() if name in SGR) if color and text.strip() else ""
            parts.append(f"\x1b[{codes}m{text}\x1b[0m" if codes else text)
        out.append("".join(parts).rstrip(" "))
    return "\n".join(out) + "\n" if out else ""


def write(lines: list[Line], screen: Screen, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(to_ansi(lines, screen.color))


# -- columns and cards --------------------------------------------------------------


def age(seconds: float) -> str:
    """A short age: 42s, 3m, 5h, 2d."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def attempt_age(attempt: dict[str, Any], now: float) -> str:
    since = attempt.get("started_at") or attempt.get("created_at") or now
    return age(now - float(since))


def card_lines(card: dict[str, Any]) -> int:
    """Lines a card takes: its title, its id, a line per attempt."""
    return 2 + len(card.get("attempts") or [])


def newest_first(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cards, key=lambda card: float(card.get("created_at") or 0), reverse=True)


def per_column_for(height: int) -> int:
    """Cards a column of `height` lines can show at most: what to ask the daemon for (it counts the rest).

    A card takes two lines at least (title and id) and a blank line parts it from the next.
    """
    return max(1, (height + 1) // 3)


class ColumnView(NamedTuple):
    title: str
    cards: list[dict[str, Any]]  # the ones drawn, newest first
    hidden: int  # how many more the column holds

    @property
    def total(self) -> int:
        return len(self.cards) + self.hidden


def fit_column(title: str, cards: list[dict[str, Any]], budget: int | None, count: int | None = None) -> ColumnView:
    """The newest cards that fit in `budget` lines, keeping a line for "+N more" if any are left out.

    `count` is how many cards the column holds when `cards` are only its newest (`?per_column=`).
    """
    ordered = newest_first(cards)
    total = max(len(ordered), count or 0)
    if budget is None:
        return ColumnView(title, ordered, total - len(ordered))
    shown: list[dict[str, Any]] = []
    used = 0
    for index, card in enumerate(ordered):
        need = card_lines(card) + (1 if shown else 0)  # a blank line between cards
        more_after = index + 1 < total
        if used + need + (1 if more_after else 0) > budget:
            break
        shown.append(card)
        used += need
    return ColumnView(title, shown, total - len(shown))


def card_block(card: dict[str, Any], now: float, width: int) -> list[Line]:
    """Title, id, then one line per attempt: id, model, state, age; each line `width` cells at most.

    Only the model gives way when narrow: ids, states and ages are what people scan the board for.
    """
    title = visible(str(card.get("title") or "(untitled)")).replace("\n", " ")
    lines: list[Line] = [[(fit_cells(title, width, pad=False), "bold")],
                         [(fit_cells(visible(str(card["id"])), width, pad=False), "cyan")]]
    rows = [(visible(str(a["id"])), visible(str(a["model"])).replace("\n", " "), visible(str(a["state"])),
             attempt_age(a, now)) for a in card.get("attempts") or []]
    if not rows:
        return lines
    id_width, state_width, age_width = (max(cell_len(row[i]) for row in rows) for i in (0, 2, 3))
    room = width - (1 + id_width + 1 + 1 + state_width + 1 + age_width)  # " id model state age"
    model_width = max(0, min(room, max(cell_len(row[1]) for row in rows)))  # 0: no room, no model
    for attempt_id, model, state, since in rows:
        line: Line = [(" ", ""), (fit_cells(attempt_id, id_width), "cyan"),
                      (" " + (fit_cells(model, model_width) + " " if model_width > 1 else ""), ""),
                      (fit_cells(state, state_width), STATE_STYLES.get(state, "")),
                      (" " + since.rjust(age_width), "dim")]
        lines.append(cut_line(line, width))
    return lines


def column_lines(view: ColumnView, now: float, width: int) -> list[Line]:
    lines: list[Line] = []
    for card in view.cards:
        if lines:
            lines.append([])
        lines.extend(card_block(card, now, width))
    if view.hidden:
        lines.append([(fit_cells(f"+{view.hidden} more (--all)", width, pad=False), "dim")])
    return lines or [[("—", "dim")]]


# -- the board -------------------------------------------------------------------


def _widths(total: int, count: int) -> list[int]:
    """`total` cells shared by `count` columns, the first ones taking what does not divide evenly."""
    base, extra = divmod(max(count, total), count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def _table(views: list[ColumnView], now: float, width: int) -> list[Line]:
    """The columns side by side in a box: titles on top, cards below (top-aligned)."""
    widths = _widths(width - (len(views) + 1) - 2 * len(views), len(views))
    cells = [column_lines(view, now, cells) for view, cells in zip(views, widths, strict=True)]
    rule = [("━" * (w + 2), "") for w in widths]
    lines: list[Line] = [_joined(rule, "┏", "┳", "┓")]
    lines.append(_joined([(f" {fit_cells(f'{visible(v.title)} ({v.total})', w)} ", "bold")
                          for v, w in zip(views, widths, strict=True)], "┃", "┃", "┃"))
    lines.append(_joined(rule, "┡", "╇", "┩"))
    for row in range(max(len(cell) for cell in cells)):
        line: Line = [("│", "")]
        for cell, cells_wide in zip(cells, widths, strict=True):
            line.append((" ", ""))
            line.extend(pad_line(cell[row] if row < len(cell) else [], cells_wide))
            line.append((" │", ""))
        lines.append(line)
    lines.append(_joined([("─" * (w + 2), "") for w in widths], "└", "┴", "┘"))
    return lines


def _joined(parts: list[Span], left: str, middle: str, right: str) -> Line:
    line: Line = [(left, "")]
    for index, part in enumerate(parts):
        if index:
            line.append((middle, ""))
        line.append(part)
    line.append((right, ""))
    return line


def board_lines(board: dict[str, Any], width: int, height: int | None = None, now: float | None = None,
                notice: Line | None = None) -> list[Line]:
    """The columns side by side (stacked on a narrow screen), fitted into `height` lines (None: every card)."""
    now = time.time() if now is None else now
    columns: list[dict[str, Any]] = board.get("columns") or []
    side_by_side = width >= SIDE_BY_SIDE_MIN_WIDTH and bool(columns)
    budget: int | None = None
    if height is not None:
        room = height - 1 - (1 if notice is not None else 0)  # the prompt's line after the board
        # stacked, each column takes its title, its cards and a blank line
        budget = max(1, room - TABLE_CHROME_LINES if side_by_side else room // max(1, len(columns)) - 2)
    views = [fit_column(str(column["title"]), list(column.get("cards") or []), budget, column.get("count"))
             for column in columns]
    lines: list[Line] = [cut_line(notice, width)] if notice is not None else []
    if side_by_side:
        return lines + _table(views, now, width)
    for view in views:
        lines.append(cut_line([(f"{visible(view.title)} ({view.total})", "bold underline")], width))
        lines.extend([(" " * STACKED_INDENT, ""), *line] for line in column_lines(view, now, width - STACKED_INDENT))
        lines.append([])
    return lines


def find_card(board: dict[str, Any], card_id: str) -> dict[str, Any] | None:
    for column in board["columns"]:
        for card in column.get("cards") or []:
            if card.get("id") == card_id:
                return dict(card)
    return None
