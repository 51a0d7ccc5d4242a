"""The review desk's parts in-process: rename names like git's, highlighting, wrapping, risks,
argument types, the event feed and the live board's redraw rule."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pygments.lexers.special import TextLexer
from pygments.token import String
from rich.console import Console
from rich.text import Text

from kilod_cli import boardview, render
from kilod_cli.client import ChangeFeed, Client
from kilod_cli.desk import diffstat_of, landing_lines, rename_display
from kilod_cli.desk_open import editor_command, flagged_paths
from kilod_cli.diffview import HunkLines, default_theme, highlight_block, highlight_hunk, lexer_for
from kilod_cli.text import pieces, visible
from kilod_cli.verbs import attempt_id, location

from .conftest import GIT_IDENTITY, CliEnv, FakeDaemon, Sse
from .test_cli_fake_daemon import event, sse_frame, status

WAIT_SECONDS = 30.0

# -- names and numbers -------------------------------------------------------

RENAMES = [
    ("story.txt", "chapter-one.txt"),
    ("pkg/old_name.py", "pkg/new_name.py"),
    ("src/util/strings.py", "lib/util/strings.py"),
    ("a/b/c/deep.txt", "a/c/deep.txt"),
    ("docs/guide.md", "guide.md"),
    ("same/dir/x.cfg", "same/dir/sub/x.cfg"),
]


def test_renames_are_named_as_git_diff_stat_names_them(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", *GIT_IDENTITY, "-C", str(repo), *args], check=True, capture_output=True,
                              text=True).stdout

    git("init", "-q")
    for index, (old, _) in enumerate(RENAMES):
        (repo / old).parent.mkdir(parents=True, exist_ok=True)
        (repo / old).write_text("".join(f"line {n} of file {index}, long enough to be recognised\n"
                                        for n in range(20)))
    git("add", "-A")
    git("commit", "-q", "-m", "files")
    for old, new in RENAMES:
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        git("mv", old, new)
    stat = git("diff", "--cached", "-M", "--stat=300,250", "HEAD")
    git_names = sorted(row.split(" | ")[0].strip() for row in stat.splitlines() if " | " in row)
    assert sorted(rename_display(old, new) for old, new in RENAMES) == git_names


def test_diffstat_of_a_diff() -> None:
    diff = {"files": [
        {"path": "b.py", "old_path": "a.py", "status": "renamed", "binary": False, "additions": 2, "deletions": 1},
        {"path": "logo.png", "old_path": None, "status": "modified", "binary": True, "additions": 0, "deletions": 0},
        {"path": "esc\x1b.txt", "old_path": None, "status": "added", "binary": False, "additions": 1, "deletions": 0},
    ], "additions": 3, "deletions": 1}
    assert [line.plain for line in render.diffstat_lines(diffstat_of(diff))] == [
        " a.py => b.py | 3 ++-",
        " logo.png     | Bin",
        " esc␛.txt     | 1 +",
        " 3 files changed, 3 insertions(+), 1 deletion(-)",
    ]


def test_landing_lines() -> None:
    result = {"attempt": {"id": "c-1"}, "commit": "a" * 40, "branch": "kilod/c-1", "discarded": [],
              "merge": {"branch": "main", "head": "b" * 40, "fast_forward": True, "worktree_updated": None,
                        "checkout": None, "note": "main is not checked out: only the ref moved"}}
    assert landing_lines(result) == [
        ("approved", "c-1"), ("commit", "a" * 40), ("branch", "kilod/c-1"),
        ("merged", "into main (fast-forward), now at bbbbbbbbbbbb"),
        ("checkout", "ref only: your checkout was not touched"),
    ]


# -- what the agent wrote, shown safely ---------------------------------------


def test_control_characters_and_bidi_overrides_are_shown_not_obeyed() -> None:
    assert visible("a\x1b[2Jb\tc\x07\x7f\x9b") == "a␛[2Jb\tc␇␡<U+009B>"
    assert visible("x = 1 \u202e# comment\u2066") == "x = 1 <U+202E># comment<U+2066>"
    assert visible("two\nlines\r") == "two\nlines␍"
    assert pieces("ok\x1bok") == [("ok", False), ("␛", True), ("ok", False)]
    assert pieces("") == []


def test_the_log_shows_the_agents_escapes_too() -> None:
    result = render.event_text({"time": 0, "kind": "tool_result",
                                "payload": {"name": "shell", "ok": True, "output": "\x1b]0;owned\x07\nnext"}})
    assert "\x1b" not in result.plain and "\x07" not in result.plain
    assert [line.strip() for line in result.plain.splitlines()[1:]] == ["␛]0;owned␇", "next"]
    message = render.event_text({"time": 0, "kind": "message", "payload": {"content": "done \u202etxt.exe"}})
    assert message.plain.endswith("done <U+202E>txt.exe")


# -- highlighting --------------------------------------------------------------


def test_lexers_by_name_then_by_shebang() -> None:
    assert lexer_for("src/app.py", "").name == "Python"
    assert lexer_for("Makefile", "").name == "Makefile"
    assert lexer_for("bin/run", "#!/usr/bin/env python3\nprint(1)\n").name == "Python"
    assert isinstance(lexer_for("notes.txt", "def f(): pass"), TextLexer)
    assert isinstance(lexer_for("LICENSE", "MIT"), TextLexer)


def styles_of(text: Text, word: str) -> set[str]:
    start = text.plain.index(word)
    return {str(span.style) for span in text.spans if span.start <= start < span.end}


def test_each_side_of_a_hunk_is_lexed_as_one_block() -> None:
    """A line inside a docstring has no quote of its own, yet it is coloured as a string."""
    lines: list[dict[str, Any]] = [
        {"kind": "context", "old": 1, "new": 1, "text": '"""Greetings.'},
        {"kind": "delete", "old": 2, "new": None, "text": "def not_code(): pass"},
        {"kind": "add", "old": None, "new": 2, "text": "return not code"},
        {"kind": "context", "old": 3, "new": 3, "text": '"""'},
        {"kind": "add", "old": None, "new": 4, "text": "def code(): pass"},
        {"kind": "note", "old": None, "new": None, "text": "No newline at end of file"},
    ]
    theme = default_theme()
    shown = highlight_hunk(lines, lexer_for("greeter.py", ""), theme)
    assert [t.plain for t in shown] == ['"""Greetings.', "def not_code(): pass", "return not code", '"""',
                                        "def code(): pass", "\\ No newline at end of file"]
    string = str(theme.get_style_for_token(String.Doc))
    assert styles_of(shown[1], "def") == {string}  # inside the docstring on the old side
    assert styles_of(shown[2], "return") == {string}  # and on the new side
    assert "bright_blue" in " ".join(styles_of(shown[4], "def"))  # after it: a keyword again


def test_a_lone_carriage_return_keeps_the_lines_aligned() -> None:
    shown = highlight_block(["a = 1\rb = 2", "c = '\x1b'"], lexer_for("x.py", ""), default_theme())
    assert [t.plain for t in shown] == ["a = 1␍b = 2", "c = '␛'"]


def test_long_lines_fold_under_the_gutter_and_the_tint_runs_to_the_edge() -> None:
    lines: list[dict[str, Any]] = [{"kind": "add", "old": None, "new": 7, "text": "x" * 50},
             {"kind": "context", "old": 8, "new": 8, "text": "short"}]
    code = highlight_hunk(lines, TextLexer(), default_theme())
    console = Console(file=io.StringIO(), width=40, force_terminal=True, color_system="truecolor")
    console.print(HunkLines(lines, code, number_width=1))
    rendered = console.file.getvalue()  # type: ignore[attr-defined]
    plain = Text.from_ansi(rendered).plain.splitlines()
    assert plain[0] == "  7 + " + "x" * 34
    assert plain[1] == " " * 6 + "x" * 16 + " " * 18  # folded under the code, padded: the tint is full width
    assert plain[2] == "8 8   short"  # context lines are not padded
    assert rendered.count("48;2;17;61;28") >= 2


# -- risks and editors -----------------------------------------------------------


def test_flagged_paths() -> None:
    diff = {"files": [
        {"path": ".github/workflows/ci.yml", "status": "added", "risks": ["CI workflows", "build or CI file"]},
        {"path": "ok.py", "status": "modified", "risks": []},
        {"path": "Makefile", "status": "deleted", "risks": ["build or CI file"]},
    ], "nested_repositories": ["vendor/x"],
        "risks": ["CI workflows", "build or CI file", "nested repository", "something new"]}
    flagged = flagged_paths(diff)
    assert [path for path, _ in flagged] == [".github/workflows/ci.yml", "Makefile (deleted)", "vendor/x",
                                             "(this attempt)"]
    assert flagged[0][1] == "CI workflows; build or CI file"
    assert flagged[2][1].startswith("nested repository")
    assert flagged[3][1] == "something new"
    assert flagged_paths({"files": [], "nested_repositories": [], "risks": []}) == []


def test_editor_commands(tmp_path: Path) -> None:
    assert editor_command("code --new-window {path}", tmp_path) == ["code", "--new-window", str(tmp_path)]
    assert editor_command("subl -n", tmp_path) == ["subl", "-n", str(tmp_path)]
    assert editor_command("'my editor' --dir={path}/src", tmp_path) == ["my editor", f"--dir={tmp_path}/src"]


# -- argument types ------------------------------------------------------------


def test_locations() -> None:
    assert location("greeter.py:2") == ("greeter.py", 2)
    assert location("./src/a:b.py:10") == ("src/a:b.py", 10)
    for bad in ("greeter.py", "greeter.py:", ":2", "a:0", "a:-1", "a: 2", "a:2x", "./:3"):
        with pytest.raises(argparse.ArgumentTypeError):
            location(bad)


def test_attempt_ids() -> None:
    assert attempt_id("c0ffee01-3") == "c0ffee01-3"
    for bad in ("c0ffee01", "c0ffee01-", "-1", "a/b-1", "../x-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            attempt_id(bad)


# -- the event feed and the live board -------------------------------------------


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_the_feed_starts_now_and_reconnects_where_it_stopped(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    hold = threading.Event()
    streams: list[Sse] = [
        Sse([sse_frame({**event(1, "log", {}), "id": 42})]),  # one event, then the stream drops
        Sse([hold]),  # the second connection stays open
    ]
    fake_daemon.on("GET", "/v1/status", (200, status(last_event_id=41)))
    fake_daemon.on("GET", "/v1/events", lambda _request: streams.pop(0))
    feed = ChangeFeed.start(Client(cli.socket))
    assert feed is not None
    try:
        assert feed.wait(WAIT_SECONDS)
        wait_for(lambda: len([r for r in fake_daemon.requests if r.path == "/v1/events"]) == 2, "a reconnect")
        wait_for(lambda: feed.connected, "the feed to be connected again")
    finally:
        feed.close()
        hold.set()
    ids = [r.headers.get("Last-Event-ID") for r in fake_daemon.requests if r.path == "/v1/events"]
    assert ids == ["41", "42"]
    assert feed.last_event_id == 42


def test_the_feed_ignores_a_running_commands_output(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    hold = threading.Event()
    streams = [Sse([sse_frame({**event(1, "output", {"step": "setup", "text": "x\n"}), "id": 42}),
                    sse_frame({**event(2, "output", {"step": "setup", "text": "y\n"}), "id": 43}), hold])]
    fake_daemon.on("GET", "/v1/status", (200, status(last_event_id=41)))
    fake_daemon.on("GET", "/v1/events", lambda _request: streams.pop(0))
    feed = ChangeFeed.start(Client(cli.socket))
    assert feed is not None
    try:
        wait_for(lambda: feed.last_event_id == 43, "both output events read")
        assert not feed.wait(0)  # read, and nothing on the board changed: no fetch
    finally:
        feed.close()
        hold.set()


def test_no_feed_from_a_daemon_that_does_not_say_where_its_log_is(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    # an older daemon's status, without last_event_id: bytes, so the schema check lets it through
    fake_daemon.on("GET", "/v1/status", (200, json.dumps({"pid": 1}).encode()))
    assert ChangeFeed.start(Client(cli.socket)) is None


class ScriptedChanges:
    """`wait` answers from a list; `connected` follows a second list."""

    def __init__(self, answers: list[tuple[bool, bool]]) -> None:
        self.answers = answers
        self.connected = True
        self.waits = 0

    def wait(self, timeout: float) -> bool:
        if timeout == 0:
            return False
        changed, self.connected = self.answers[self.waits]
        self.waits += 1
        return changed


def test_the_live_board_fetches_on_events_and_polls_only_while_the_stream_is_down(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boardview, "MIN_FETCH_SECONDS", 0.0)
    monkeypatch.setattr(boardview, "FALLBACK_POLL_SECONDS", 0.0)
    # (changed, connected) per wait: quiet, quiet, an event, quiet, stream down, down, back and quiet
    changes = ScriptedChanges([(False, True), (False, True), (True, True), (False, True), (False, False),
                               (False, False), (False, True)])
    fetches: list[int] = []
    updates = 0

    def fetch() -> dict[str, Any]:
        fetches.append(changes.waits)
        return {"columns": []}

    def on_update(board: dict[str, Any]) -> bool:
        nonlocal updates
        updates += 1
        return updates > len(changes.answers)

    console = Console(file=io.StringIO(), width=120)
    boardview.watch_board(console, fetch, on_update, changes=changes)
    # the first board, then after the event (wait 3), then each wait while down (5, 6)
    assert fetches == [0, 3, 5, 6]
