"""`ctl board` for people: what fits the terminal, filters, the agent's words escaped, --watch across restarts."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from rich.console import Console

from kilod_cli import boardtext, boardview
from kilod_cli.boardfilter import CardFilter

from .conftest import CLI_TIMEOUT_SECONDS, META, CliEnv, FakeDaemon, Sse, new_fake_daemon, running_daemon, serving
from .test_cli_fake_daemon import NOW, attempt, card, event, sse_frame, status

WAIT_SECONDS = 30.0
COLUMN_IDS = ("todo", "doing", "review", "done")
STATE_OF_COLUMN = {"todo": "queued", "doing": "running", "review": "review", "done": "approved"}


def many_cards(per_column: int) -> dict[str, Any]:
    """A board of 4 x per_column cards; card n was created n seconds after NOW (higher n: newer)."""
    columns = []
    for c, column_id in enumerate(COLUMN_IDS):
        cards = []
        for i in range(per_column):
            n = c * per_column + i
            one = card(f"c{n:07d}", f"card {n:04d}", column_id,
                       [attempt(f"c{n:07d}-1", "scripted/quick", STATE_OF_COLUMN[column_id])])
            one["created_at"] = NOW + n
            cards.append(one)
        columns.append({"id": column_id, "title": next(c["title"] for c in META["columns"] if c["id"] == column_id),
                        "cards": cards})
    return {"columns": columns}


def titles_in(text: str) -> set[str]:
    return set(re.findall(r"card \d{4}", text))


# -- what fits ------------------------------------------------------------------


def test_the_board_fits_the_screen_newest_first_and_counts_the_rest(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, many_cards(50)))
    result = cli.run("ctl", "board", extra_env={"LINES": "30"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 30
    for title in ("To Do (50)", "Doing (50)", "Review (50)", "Done (50)"):
        assert title in result.stdout
    shown = titles_in(result.stdout)
    hidden = [int(n) for n in re.findall(r"\+(\d+) more", result.stdout)]
    assert len(hidden) == 4 and len(shown) + sum(hidden) == 200  # every card drawn or counted
    assert "card 0049" in shown and "card 0000" not in shown  # the newest of To Do, not its oldest
    assert "card 0199" in shown



def test_the_board_asks_only_for_what_fits_and_counts_from_the_daemon(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    full = many_cards(50)
    newest = {"columns": [{**column, "count": len(column["cards"]), "cards": column["cards"][-10:]}
                          for column in full["columns"]]}
    fake_daemon.on("GET", "/v1/board?per_column=10", (200, newest))
    result = cli.run("ctl", "board", extra_env={"LINES": "30"})
    assert result.returncode == 0, result.stderr
    assert [r.path for r in fake_daemon.calls] == ["/v1/board?per_column=10"]
    for title in ("To Do (50)", "Doing (50)", "Review (50)", "Done (50)"):
        assert title in result.stdout
    hidden = [int(n) for n in re.findall(r"\+(\d+) more", result.stdout)]
    assert len(hidden) == 4 and len(titles_in(result.stdout)) + sum(hidden) == 200
    assert "card 0049" in result.stdout and "card 0199" in result.stdout

def test_a_narrow_terminal_stacks_the_columns_and_still_fits(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, many_cards(20)))
    result = cli.run("ctl", "board", extra_env={"LINES": "40", "COLUMNS": "60"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 40 and all(len(line) <= 60 for line in lines)
    assert lines.index("To Do (20)") < lines.index("Doing (20)") < lines.index("Review (20)")
    assert len(re.findall(r"\+\d+ more", result.stdout)) == 4


def test_all_draws_every_card(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, many_cards(30)))
    result = cli.run("ctl", "board", "--all", extra_env={"LINES": "20"})
    assert result.returncode == 0, result.stderr
    assert len(titles_in(result.stdout)) == 120
    assert "more (--all)" not in result.stdout


def test_fit_column_keeps_a_line_for_what_it_leaves_out() -> None:
    cards = many_cards(5)["columns"][0]["cards"]  # each card: title, id, one attempt = 3 lines
    assert next(c["title"] for c in boardtext.fit_column("T", cards, None).cards) == "card 0004"
    view = boardtext.fit_column("T", cards, 8)  # 3 + 1 + 3 = 7 lines, and the "+N more" line
    assert (len(view.cards), view.hidden, view.total) == (2, 3, 5)
    assert boardtext.fit_column("T", cards, 19).hidden == 0  # 5 x 3 + 4 blank lines = 19: all fit
    assert boardtext.fit_column("T", cards, 18).hidden == 1  # 4 cards: 15 lines, and "+1 more"
    assert boardtext.fit_column("T", cards, 15).hidden == 2


SGR_ESCAPE = re.compile("\x1b\\[[0-9;]*m")


def test_every_line_of_a_side_by_side_board_fills_the_width_wide_characters_included() -> None:
    board = many_cards(6)
    wide = board["columns"][1]["cards"][-1]
    wide["title"] = "漢字のカードの題名がとても長くて列の幅に収まらない" * 3  # two cells a character, cut at the edge
    wide["attempts"][0]["model"] = "e\u0301" * 80  # combining accents take no cell
    for width in (100, 137, 160):
        text = boardtext.to_ansi(boardtext.board_lines(board, width, 30, now=NOW + 60), color=False)
        lines = text.splitlines()
        assert len(lines) <= 30 - 1
        assert all(boardtext.cell_len(line) == width for line in lines), width
        assert "漢字" in text and "…" in text and "(6)" in lines[1]


def test_colour_only_when_asked_and_the_same_text_either_way() -> None:
    board = filter_board()
    lines = boardtext.board_lines(board, 120, 30, now=NOW + 60)
    coloured = boardtext.to_ansi(lines, color=True)
    plain = boardtext.to_ansi(lines, color=False)
    assert "\x1b" not in plain and SGR_ESCAPE.sub("", coloured) == plain
    assert "\x1b[1;32mreview" in coloured and "\x1b[1;31mfailed" in coloured  # states in their colours


def test_the_screen_follows_columns_and_lines_colour_follows_the_terminal_and_no_color(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    monkeypatch.setenv("LINES", "41")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert boardtext.Screen.of(Tty()) == boardtext.Screen(132, 41, terminal=True, color=True)
    assert boardtext.Screen.of(io.StringIO()) == boardtext.Screen(132, 41, terminal=False, color=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not boardtext.Screen.of(Tty()).color


def test_the_board_is_drawn_without_importing_rich(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board?per_column=10", (200, many_cards(3)))
    probe = ("import sys\nfrom kilod_cli.main import main\ncode = main(['ctl', 'board'])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'pygments')), file=sys.stderr)\n"
             "sys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", probe], env=cli.env_with({"LINES": "30"}), capture_output=True,
                            text=True, timeout=CLI_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]"
    assert "To Do (3)" in result.stdout and "card 0011" in result.stdout


# -- filters --------------------------------------------------------------------


def filter_board() -> dict[str, Any]:
    alpha = {**card("a0000001", "Add a farewell", "review", [attempt("a0000001-1", "openai/gpt-4o", "review"),
                                                             attempt("a0000001-2", "scripted/quick", "failed")]),
             "repo": "/src/alpha"}
    beta = {**card("b0000002", "Fix the parser", "doing", [attempt("b0000002-1", "anthropic/claude", "running")]),
            "repo": "/src/beta"}
    gamma = {**card("c0000003", "Speed up the board", "todo", [attempt("c0000003-1", "openai/gpt-4o", "queued")]),
             "repo": "/src/beta"}
    return {"columns": [{"id": "todo", "title": "To Do", "cards": [gamma]},
                        {"id": "doing", "title": "Doing", "cards": [beta]},
                        {"id": "review", "title": "Review", "cards": [alpha]},
                        {"id": "done", "title": "Done", "cards": []}]}


def ids_of(board: dict[str, Any]) -> list[str]:
    return [c["id"] for column in board["columns"] for c in column["cards"]]


@pytest.mark.parametrize(("args", "expected"), [
    (["--repo", "/src/alpha"], ["a0000001"]),
    (["--repo", "beta"], ["c0000003", "b0000002"]),
    (["--model", "GPT-4o"], ["c0000003", "a0000001"]),
    (["--state", "failed"], ["a0000001"]),
    (["--state", "failed", "--state", "queued"], ["c0000003", "a0000001"]),
    (["--text", "PARSER"], ["b0000002"]),
    (["--repo", "beta", "--model", "gpt"], ["c0000003"]),
    (["--text", "nothing like this"], []),
])
def test_board_filters(cli: CliEnv, fake_daemon: FakeDaemon, args: list[str], expected: list[str]) -> None:
    fake_daemon.on("GET", "/v1/board", (200, filter_board()))
    as_json = cli.run("ctl", "board", "--json", *args)
    assert as_json.returncode == 0, as_json.stderr
    filtered = json.loads(as_json.stdout)
    assert [c["id"] for c in filtered["columns"]] == list(COLUMN_IDS)  # the board keeps its shape
    assert ids_of(filtered) == expected
    text = cli.run("ctl", "board", *args)
    assert text.returncode == 0, text.stderr
    assert {i for i in ("a0000001", "b0000002", "c0000003") if i in text.stdout} == set(expected)


def test_an_unknown_state_is_a_usage_error_naming_the_daemons_states(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, filter_board()))
    result = cli.run("ctl", "board", "--state", "sleeping")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no state named 'sleeping'" in result.stderr and "paused" in result.stderr  # the daemon's list
    assert [r.path for r in fake_daemon.requests] == ["/v1/meta"]  # refused before reading the board


def test_no_filter_keeps_the_board_itself() -> None:
    board = filter_board()
    assert CardFilter().apply(board) is board
    assert not CardFilter() and CardFilter(text="x")


# -- the agent's words never drive the terminal ---------------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"


def test_escape_sequences_are_shown_not_obeyed(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    evil = card("e0000001", f"Fix{ESCAPES}it", "review", [
        attempt("e0000001-1", f"openai/gpt{ESCAPES}", "review", summary=f"done{ESCAPES}", error=f"bad{ESCAPES}")])
    evil["prompt"] = f"prompt{ESCAPES}"
    fake_daemon.on("GET", "/v1/board", (200, {"columns": [{"id": "review", "title": "Review", "cards": [evil]}]}))
    fake_daemon.on("GET", "/v1/cards/e0000001", (200, evil))
    fake_daemon.on("GET", "/v1/attempts/e0000001-1/events", (200, {"events": [
        event(1, "state", {"from": "running", "to": "failed", "error": f"boom{ESCAPES}"}, "e0000001-1"),
        event(2, "message", {"role": "assistant", "content": f"hi{ESCAPES}"}, "e0000001-1"),
    ]}))
    for args in (["board"], ["board", "--all"], ["show", "e0000001"], ["logs", "e0000001-1"]):
        result = cli.run("ctl", *args)
        assert result.returncode == 0, (args, result.stderr)
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in result.stdout, (args, raw)
        assert "␛" in result.stdout and "<U+202E>" in result.stdout, args


def test_a_daemon_message_with_escapes_is_shown_not_obeyed(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/cards/x", (404, {"error": {"status": 404, "message": f"no card{ESCAPES}"}}))
    result = cli.run("ctl", "show", "x")
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and result.stderr.startswith("kilod: no card␛")


# -- --watch across a daemon restart --------------------------------------------


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def watched_board(title: str) -> dict[str, Any]:
    return {"columns": [{"id": "doing", "title": "Doing",
                         "cards": [card("c0ffee01", title, "doing", [attempt("c0ffee01-1", "m/x", "running")])]}]}


def test_watch_waits_through_a_daemon_restart(cli: CliEnv) -> None:
    first, second = new_fake_daemon(cli.socket), new_fake_daemon(cli.socket)
    held, held_again = threading.Event(), threading.Event()
    for fake, title, hold in ((first, "before the restart", held), (second, "after the restart", held_again)):
        fake.on("GET", "/v1/status", (200, status(last_event_id=7)))
        fake.on("GET", "/v1/board", (200, watched_board(title)))
        fake.on("GET", "/v1/events", Sse([sse_frame({**event(1, "log", {"message": "x"}), "id": 7}), hold]))
    watch: subprocess.Popen[str] | None = None
    try:
        with serving(first):
            watch = subprocess.Popen([sys.executable, "-m", "kilod_cli.main", "ctl", "board", "--watch"],
                                     env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
            wait_until(lambda: {"/v1/board", "/v1/events"} <= {r.path.split("?")[0] for r in first.requests},
                       "the watch to draw the board and follow events")
            held.set()  # the stream ends as the daemon stops
        time.sleep(boardview.FALLBACK_POLL_SECONDS + 1)  # it polls a socket nobody answers on
        assert watch.poll() is None, watch.communicate()
        with serving(second):
            wait_until(lambda: any(r.path.startswith("/v1/board") for r in second.requests),
                       "the board from the new daemon")
            wait_until(lambda: any(r.path == "/v1/events" for r in second.requests), "the stream to reconnect")
            time.sleep(boardview.TICK_SECONDS + 0.5)  # a redraw with the new board
            watch.send_signal(signal.SIGINT)
            out, err = watch.communicate(timeout=CLI_TIMEOUT_SECONDS)
            held_again.set()
    finally:
        held.set()
        held_again.set()
        if watch is not None and watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err
    assert "after the restart" in out and "no answer from the daemon" not in out
    assert next(r.headers.get("Last-Event-ID") for r in second.requests if r.path == "/v1/events") == "7"


def test_a_lost_daemon_is_said_above_the_last_board() -> None:
    console = Console(record=True, width=120)
    notice = boardview._lost_notice("the daemon is not running", 0.0)
    console.print(boardview.board_view(watched_board("still here"), 120, 20, notice=notice))
    text = console.export_text()
    assert text.index("no answer from the daemon since") < text.index("still here")
    assert len(text.splitlines()) <= 20


def test_watch_survives_a_real_daemon_restart(cli: CliEnv) -> None:
    """The real daemon stopped and started again on the same socket: the watch waits, then draws again."""
    watch: subprocess.Popen[str] | None = None
    try:
        with running_daemon(cli):
            watch = subprocess.Popen([sys.executable, "-m", "kilod_cli.main", "ctl", "board", "--watch"],
                                     env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
            time.sleep(3)  # it has drawn the board and follows the events
            assert watch.poll() is None, watch.communicate()
        time.sleep(boardview.FALLBACK_POLL_SECONDS + 1)
        assert watch.poll() is None, watch.communicate()  # the daemon is gone; the watch is not
        with running_daemon(cli):
            time.sleep(boardview.FALLBACK_POLL_SECONDS + boardview.TICK_SECONDS + 1)
            watch.send_signal(signal.SIGINT)
            out, err = watch.communicate(timeout=CLI_TIMEOUT_SECONDS)
    finally:
        if watch is not None and watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err
    assert "To Do (0)" in out
    assert "no answer from the daemon" not in out  # the last drawing came from the new daemon
