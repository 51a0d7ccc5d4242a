"""The live board (`ctl board --watch`, the demo): the lines of `boardtext` redrawn through rich's Live.

`ctl board` without --watch prints `boardtext`'s lines itself and never imports this
module (nor rich). Here each drawing is rich `Text` made from those lines, so rich only
places them; the agent's words were made visible there and are never read as markup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.text import Text

from kilod_cli.boardtext import PIPED_HEIGHT, Line, board_lines
from kilod_cli.client import CliError
from kilod_cli.text import visible

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


def board_view(board: dict[str, Any], width: int, height: int | None = None, now: float | None = None,
               notice: Line | None = None) -> RenderableType:
    """`boardtext.board_lines` as rich Text lines (never wrapped: each already fits `width`)."""
    return Group(*(Text.assemble(*line, no_wrap=True, overflow="crop")
                   for line in board_lines(board, width, height, now, notice)))


# -- live board ----------------------------------------------------------


class Changes(Protocol):
    """What `watch_board` needs from an event feed (`kilod_cli.client.ChangeFeed`)."""

    connected: bool

    def wait(self, timeout: float) -> bool: ...


def _lost_notice(message: str, since: float) -> Line:
    when = time.strftime("%H:%M:%S", time.localtime(since))
    return [(visible(f"no answer from the daemon since {when}, trying again: {message}"), "bold yellow")]


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
