"""The board for people: what fits the terminal, newest cards first, the rest counted.

A board of a thousand cards must read at a glance and draw in a blink, so only the cards
that fit are rendered: each column shows its newest cards and ends with "+N more"; its
title carries the count. `ctl board --all` draws every card (through $PAGER on a
terminal). Titles and model names are the agent's or a person's words: drawn as `Text`
through `visible`, never as markup, never as escape sequences.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rich.cells import cell_len, set_cell_size
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from kilod_cli.client import CliError
from kilod_cli.render import attempt_age, state_text
from kilod_cli.text import visible

# Below this many columns four side-by-side columns are too narrow to read.
SIDE_BY_SIDE_MIN_WIDTH = 100
# Lines a board printed to a pipe may take when LINES does not say (`--all` prints every card).
PIPED_HEIGHT = 50
# The side-by-side table's borders and header: top, titles, rule, bottom.
TABLE_CHROME_LINES = 4
STACKED_INDENT = 2
WATCH_INTERVAL_SECONDS = 0.5
# Following the event stream: redraw (ages move) this often, fetch at most this often,
# and poll this often while the stream (or the daemon) is down.
TICK_SECONDS = 1.0
MIN_FETCH_SECONDS = 0.1
FALLBACK_POLL_SECONDS = 2.0


def board_height(console: Console) -> int:
    """Lines the board may take: the terminal's, else $LINES, else PIPED_HEIGHT."""
    if console.is_terminal:
        return console.height
    lines = os.environ.get("LINES", "")
    return int(lines) if lines.isdigit() and int(lines) > 0 else PIPED_HEIGHT


def card_lines(card: dict[str, Any]) -> int:
    """Lines a card takes: its title, its id, a line per attempt."""
    return 2 + len(card.get("attempts") or [])


def newest_first(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cards, key=lambda card: float(card.get("created_at") or 0), reverse=True)


@dataclass(frozen=True)
class ColumnView:
    title: str
    cards: list[dict[str, Any]]  # the ones drawn, newest first
    hidden: int  # how many more the column holds

    @property
    def total(self) -> int:
        return len(self.cards) + self.hidden


def per_column_for(height: int) -> int:
    """Cards a column of `height` lines can show at most (each takes two lines at least): what to ask for."""
    return max(1, height // 2 + 1)


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


def _fit(text: str, cells: int) -> str:
    """`text` in exactly `cells` terminal cells: padded, or cut with "…"."""
    if cell_len(text) <= cells:
        return set_cell_size(text, cells)
    return set_cell_size(text, max(0, cells - 1)) + "…" if cells > 0 else ""


def card_block(card: dict[str, Any], now: float, width: int) -> list[Text]:
    """Title, id, then one line per attempt: id, model, state, age, each line `width` cells at most.

    Plain lines, not a nested table: a board draws dozens of cards, and measuring tables
    inside a table is what made a large board slow. Only the model gives way when narrow:
    ids, states and ages are what people scan the board for.
    """
    title = Text(visible(str(card.get("title") or "(untitled)")).replace("\n", " "), style="bold",
                 no_wrap=True, overflow="ellipsis")
    lines = [title, Text(visible(str(card["id"])), style="cyan", no_wrap=True, overflow="ellipsis")]
    rows = [(visible(str(a["id"])), visible(str(a["model"])), visible(str(a["state"])), attempt_age(a, now))
            for a in card.get("attempts") or []]
    if not rows:
        return lines
    id_width, state_width, age_width = (max(cell_len(row[i]) for row in rows) for i in (0, 2, 3))
    room = width - (1 + id_width + 1 + 1 + state_width + 1 + age_width)  # " id model state age"
    model_width = max(0, min(room, max(cell_len(row[1]) for row in rows)))  # 0: no room, no model
    for attempt_id, model, state, since in rows:
        line = Text(" ", no_wrap=True, overflow="ellipsis")
        line.append(_fit(attempt_id, id_width), style="cyan")
        line.append(" " + (_fit(model, model_width) + " " if model_width > 1 else ""))
        line.append_text(state_text(_fit(state, state_width)))
        line.append(" " + since.rjust(age_width), style="dim")
        lines.append(line)
    return lines


def _cell(view: ColumnView, now: float, width: int) -> RenderableType:
    blocks: list[RenderableType] = []
    for card in view.cards:
        if blocks:
            blocks.append(Text(""))
        blocks.extend(card_block(card, now, width))
    if view.hidden:
        blocks.append(Text(f"+{view.hidden} more (--all)", style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*blocks) if blocks else Text("—", style="dim")


def board_view(board: dict[str, Any], width: int, height: int | None = None, now: float | None = None,
               notice: Text | None = None) -> RenderableType:
    """The columns side by side (stacked on a narrow terminal), fitted into `height` lines (None: all cards)."""
    now = time.time() if now is None else now
    columns: list[dict[str, Any]] = board.get("columns") or []
    side_by_side = width >= SIDE_BY_SIDE_MIN_WIDTH
    budget: int | None = None
    if height is not None:
        room = height - 1 - (1 if notice is not None else 0)  # the prompt's line after the board
        # stacked, each column takes its title, its cards and a blank line
        budget = max(1, room - TABLE_CHROME_LINES if side_by_side else room // max(1, len(columns)) - 2)
    views = [fit_column(str(column["title"]), list(column.get("cards") or []), budget, column.get("count"))
             for column in columns]
    parts: list[RenderableType] = [notice] if notice is not None else []
    if not side_by_side:
        for view in views:
            parts.append(Text(f"{visible(view.title)} ({view.total})", style="bold underline"))
            parts.append(Padding(_cell(view, now, width - STACKED_INDENT), (0, 0, 1, STACKED_INDENT), expand=False))
        return Group(*parts)
    table = Table(expand=True)
    for view in views:
        table.add_column(f"{visible(view.title)} ({view.total})", ratio=1, overflow="ellipsis", vertical="top",
                         no_wrap=True)
    # what rich gives each of n columns of an expanded, boxed table: n + 1 rules, one space each side
    cell_width = (width - (len(views) + 1) - 2 * len(views)) // max(1, len(views))
    table.add_row(*(_cell(view, now, cell_width) for view in views))
    parts.append(table)
    return Group(*parts)


def find_card(board: dict[str, Any], card_id: str) -> dict[str, Any] | None:
    for column in board["columns"]:
        for card in column.get("cards") or []:
            if card.get("id") == card_id:
                return dict(card)
    return None


# -- live board ----------------------------------------------------------


class Changes(Protocol):
    """What `watch_board` needs from an event feed (`kilod_cli.client.ChangeFeed`)."""

    connected: bool

    def wait(self, timeout: float) -> bool: ...


def _lost_notice(message: str, since: float) -> Text:
    when = time.strftime("%H:%M:%S", time.localtime(since))
    return Text(visible(f"no answer from the daemon since {when}, trying again: {message}"), style="bold yellow",
                no_wrap=True, overflow="ellipsis")


def watch_board(console: Console, fetch_board: Callable[[], dict[str, Any]],
                on_update: Callable[[dict[str, Any]], bool] | None = None,
                changes: Changes | None = None,
                interval: float = WATCH_INTERVAL_SECONDS) -> dict[str, Any]:
    """Redraw the board until `on_update(board)` says stop (or Ctrl-C); returns the last board.

    With `changes` (the daemon's event stream) the board is fetched again when something
    happens, at most every MIN_FETCH_SECONDS, and redrawn every TICK_SECONDS so ages move;
    while the stream is down it is fetched every FALLBACK_POLL_SECONDS. Without, it is
    polled every `interval`. When the daemon stops answering (a restart), the last board
    stays on screen under a notice and the watch goes on until it answers again. Each
    drawing fits the terminal as it is then. On a terminal the board is redrawn in place;
    elsewhere rich prints only the final drawing.
    """
    from rich.live import Live

    board = fetch_board()  # a daemon that is not there at the start is an error, not a wait
    fetched = time.monotonic()
    lost: tuple[str, float] | None = None

    def draw() -> RenderableType:
        notice = _lost_notice(*lost) if lost is not None else None
        return board_view(board, console.width, board_height(console), notice=notice)

    def refetch() -> None:
        nonlocal board, fetched, lost
        fetched = time.monotonic()
        try:
            board = fetch_board()
        except CliError as exc:
            lost = (exc.message, lost[1] if lost is not None else time.time())
        else:
            lost = None

    with Live(draw(), console=console, auto_refresh=False) as live:
        while not (on_update is not None and lost is None and on_update(board)):
            if changes is None:
                time.sleep(interval if lost is None else FALLBACK_POLL_SECONDS)
                refetch()
            else:
                changed = changes.wait(TICK_SECONDS)
                down = lost is not None or not changes.connected
                if changed or (down and time.monotonic() - fetched >= FALLBACK_POLL_SECONDS):
                    pause = MIN_FETCH_SECONDS - (time.monotonic() - fetched)
                    if pause > 0:  # a burst of events makes one fetch, not one each
                        time.sleep(pause)
                        changes.wait(0)  # what came meanwhile is in the fetch below
                    refetch()
            live.update(draw(), refresh=True)
    return board
