"""The review desk verbs as real processes against the fake daemon: diff, comments, follow-ups,
approve and merge, discard, cancel, retry, shell and open (with stub editors, shells and docker).
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kilod_cli.desk_open import NESTED_REPOSITORY

from .conftest import CLI_TIMEOUT_SECONDS, CliEnv, FakeDaemon, Recorded, Sse
from .test_cli_fake_daemon import HISTORY, LIVE, attempt, event, sse_frame, status

WAIT_SECONDS = 30.0
DIFF_PATH = "/v1/attempts/c0ffee01-1/diff"


def line(kind: str, old: int | None, new: int | None, text: str) -> dict[str, Any]:
    return {"kind": kind, "old": old, "new": new, "text": text}


def file_diff(path: str, status: str, hunks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    adds = sum(1 for h in hunks for item in h["lines"] if item["kind"] == "add")
    deletes = sum(1 for h in hunks for item in h["lines"] if item["kind"] == "delete")
    return {"path": path, "old_path": None, "status": status, "binary": False, "additions": adds,
            "deletions": deletes, "old_mode": "100644", "new_mode": "100644", "risks": [], "hunks": hunks, **extra}


def hunk(header: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    match = re.match(r"@@ -(\d+),?(\d*) \+(\d+),?(\d*) @@", header)
    assert match
    return {"header": header, "old_start": int(match[1]), "old_lines": int(match[2] or 1),
            "new_start": int(match[3]), "new_lines": int(match[4] or 1), "lines": lines}


SAME_LINE = "def greet(name):  # print"
DIFF = {
    "attempt_id": "c0ffee01-1",
    "base_commit": "0123456789abcdef0123456789abcdef01234567",
    "tree": "feedfacefeedfacefeedfacefeedfacefeedface",
    "files": [
        file_diff("greeter.py", "modified", [hunk("@@ -1,2 +1,3 @@", [
            line("context", 1, 1, SAME_LINE),
            line("delete", 2, None, '    return "Hello " + name'),
            line("add", None, 2, '    return "Hi " + name'),
            line("add", None, 3, "    # a \x1b]52;c;cGF3bmVk\x07 planted escape"),
        ])]),
        file_diff("notes.txt", "added", [hunk("@@ -0,0 +1 @@", [line("add", None, 1, SAME_LINE)])],
                  old_mode=None, new_mode="100644"),
        file_diff("chapter-one.txt", "renamed", [hunk("@@ -12,1 +12,2 @@", [
            line("context", 12, 12, "the end"), line("add", None, 13, "The end.")])], old_path="story.txt"),
        file_diff(".vscode/tasks.json", "added", [hunk("@@ -0,0 +1 @@", [line("add", None, 1, "{}")])],
                  old_mode=None, risks=["editor configuration (can run tasks)"]),
        file_diff("tool.sh", "modified", [], new_mode="100755", risks=["made executable"]),
        {**file_diff("logo.png", "modified", []), "binary": True},
    ],
    "nested_repositories": ["vendor/lib"],
    "additions": 5,
    "deletions": 1,
    "risks": ["editor configuration (can run tasks)", "made executable", "nested repository"],
}
# What the daemon's format=text looks like, with the bytes a re-encoding would lose.
DIFF_TEXT = (
    "diff --git a/greeter.py b/greeter.py\n"
    "index 1111111111111111111111111111111111111111..2222222222222222222222222222222222222222 100644\n"
    "--- a/greeter.py\n+++ b/greeter.py\n@@ -1,2 +1,3 @@\n"
    f" {SAME_LINE}\n-    return \"Hello \" + name\n+    return \"Hi \" + name\n"
    "+    # a \x1b]52;c;cGF3bmVk\x07 planted escape\n"
    "diff --git a/notes.txt b/notes.txt\nnew file mode 100644\n--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1 @@\n"
    f"+{SAME_LINE}\n+trailing space \t \n+crlf\r\n\\ No newline at end of file\n"
)


@pytest.fixture
def worktree(cli: CliEnv) -> Path:
    path = cli.root / "worktrees" / "c0ffee01-1"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def desk(cli: CliEnv, fake_daemon: FakeDaemon, worktree: Path) -> FakeDaemon:
    """The fake daemon with one attempt in review, its diff and its worktree."""
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1", (200, attempt("c0ffee01-1", "scripted/careful", "review",
                                                                   worktree=str(worktree))))
    fake_daemon.on("GET", DIFF_PATH, (200, DIFF))
    fake_daemon.on("GET", DIFF_PATH + "?format=text", (200, DIFF_TEXT.encode()))
    return fake_daemon


def executable(path: Path, script: str) -> Path:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def sgr_runs(output: str) -> list[tuple[str, str]]:
    """(SGR parameters, text) runs of ANSI output ("" for unstyled text)."""
    runs: list[tuple[str, str]] = []
    style = ""
    for token in re.split(r"(\x1b\[[0-9;]*m)", output):
        if token.startswith("\x1b["):
            style = token[2:-1] if token[2:-1] != "0" else ""
        elif token:
            runs.append((style, token))
    return runs


def section(output: str, start: str, end: str) -> str:
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    assert start in plain and end in plain, plain
    # cut the ANSI text at the same places: find them via the plain text's line numbers
    lines, plain_lines = output.split("\n"), plain.split("\n")
    first = next(i for i, text in enumerate(plain_lines) if start in text)
    last = next(i for i, text in enumerate(plain_lines) if end in text and i > first)
    return "\n".join(lines[first:last])


# -- diff ------------------------------------------------------------------


def test_piped_diff_is_the_daemons_text_exactly(cli: CliEnv, desk: FakeDaemon) -> None:
    result = subprocess.run([sys.executable, "-m", "kilod_cli.main", "ctl", "diff", "c0ffee01-1"], env=cli.env,
                            capture_output=True, timeout=CLI_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DIFF_TEXT.encode()  # byte for byte: \r, tabs, the agent's escape included
    assert result.stderr == b""
    assert [r.headers.get("Accept") for r in desk.requests if r.path.startswith(DIFF_PATH)] == ["text/x-diff"]


def test_diff_on_a_terminal_highlights_each_file_in_its_language(cli: CliEnv, desk: FakeDaemon) -> None:
    result = cli.run("ctl", "diff", "c0ffee01-1", unset=("NO_COLOR",),
                     extra_env={"FORCE_COLOR": "1", "COLORTERM": "truecolor", "TERM": "xterm-256color"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    python = section(out, "greeter.py", "notes.txt")
    text = section(out, "notes.txt", "chapter-one.txt")
    python_def = [style for style, chunk in sgr_runs(python) if chunk == "def"]
    assert python_def and "94" in python_def[0].split(";")  # a keyword: bright blue in the terminal's palette
    text_styles = {style for style, chunk in sgr_runs(text) if "def" in chunk}
    assert text_styles and not any("94" in style.split(";") for style in text_styles)  # .txt: no keywords
    assert "def greet(name):  # print" in re.sub(r"\x1b\[[0-9;]*m", "", text)  # one plain run
    # the + gutter and the whole added line sit on a green tint, the - line on a red one
    add_tint, delete_tint = "48;2;17;61;28", "48;2;74;21;24"
    assert any(add_tint in style and chunk == "+" for style, chunk in sgr_runs(python))
    assert any(delete_tint in style and chunk == "-" for style, chunk in sgr_runs(python))
    # the agent's escape sequence is shown, never sent to the terminal
    assert "\x1b]52" not in out and "\x07" not in out
    assert "# a ␛]52;c;cGF3bmVk␇ planted escape" in re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert any("7" in style.split(";") and chunk == "␛" for style, chunk in sgr_runs(python))  # reversed


def test_diff_headers_show_renames_modes_risks_and_nested_repositories(cli: CliEnv, desk: FakeDaemon) -> None:
    result = cli.run("ctl", "diff", "c0ffee01-1", "--no-pager", extra_env={"FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    lines = [text.rstrip() for text in plain.splitlines()]
    assert lines[0] == "attempt c0ffee01-1 against 0123456789ab: 6 files changed, +5 -1"
    assert "⚠ 2 files flagged for a closer look (can run code on your machine later)" in lines
    assert "⚠ nested repository, not in the diff: vendor/lib" in lines
    assert "renamed   story.txt → chapter-one.txt  +1 -0" in lines
    assert "added     .vscode/tasks.json  +1 -0" in lines
    assert "  ⚠ editor configuration (can run tasks)" in lines
    tool = lines.index("modified  tool.sh  +0 -0")
    assert lines[tool + 1:tool + 4] == ["  mode 100644 → 100755", "  ⚠ made executable", "  no change to the content"]
    assert "modified  logo.png  binary" in lines
    assert "1 1   def greet(name):  # print" in lines  # old and new line numbers, the sign, the code
    assert "2   -     return \"Hello \" + name" in lines
    assert "  2 +     return \"Hi \" + name" in lines


def test_diff_through_the_pager_on_a_terminal(cli: CliEnv, desk: FakeDaemon) -> None:
    record = cli.root / "paged"
    pager = executable(cli.root / "pager", f'echo "LESS=$LESS $*" > {record}.args\ncat > {record}\n')
    primary, secondary = pty.openpty()
    try:
        env = cli.env_with({"PAGER": f"{pager} --flag", "TERM": "xterm-256color"}, unset=("LESS",))
        result = subprocess.run([sys.executable, "-m", "kilod_cli.main", "ctl", "diff", "c0ffee01-1"], env=env,
                                stdout=secondary, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                timeout=CLI_TIMEOUT_SECONDS)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 0, result.stderr
    assert Path(f"{record}.args").read_text() == "LESS=FRX --flag\n"
    paged = re.sub(r"\x1b\[[0-9;]*m", "", record.read_text())
    assert "renamed   story.txt → chapter-one.txt" in paged  # the view for people, not the patch
    assert "diff --git" not in paged


def test_diff_stat_like_git(cli: CliEnv, desk: FakeDaemon) -> None:
    result = cli.run("ctl", "diff", "c0ffee01-1", "--stat")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        " greeter.py                   | 3 ++-",
        " notes.txt                    | 1 +",
        " story.txt => chapter-one.txt | 1 +",
        " .vscode/tasks.json           | 1 +",
        " tool.sh                      | 0",
        " logo.png                     | Bin",
        " 6 files changed, 5 insertions(+), 1 deletion(-)",
    ]


def test_diff_json_is_the_daemons(cli: CliEnv, desk: FakeDaemon) -> None:
    desk.on("GET", "/v1/attempts/c0ffee01-1/diffstat", (200, {"attempt_id": "c0ffee01-1", "base_commit": "b" * 40,
                                                                 "files": [], "added": 0, "deleted": 0}))
    full = cli.run("ctl", "diff", "c0ffee01-1", "--json")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout) == DIFF
    stat = cli.run("ctl", "diff", "c0ffee01-1", "--stat", "--json")
    assert json.loads(stat.stdout) == {"attempt_id": "c0ffee01-1", "base_commit": "b" * 40,
                                       "files": [], "added": 0, "deleted": 0}


def test_diff_of_an_unknown_attempt(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-9/diff?format=text",
                   (404, {"error": {"status": 404, "message": "no attempt 'c0ffee01-9'"}}))
    result = cli.run("ctl", "diff", "c0ffee01-9")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "kilod: no attempt 'c0ffee01-9'\n")


# -- comments --------------------------------------------------------------


@pytest.mark.parametrize("where", ["greeter.py", "greeter.py:", ":3", "greeter.py:0", "greeter.py:-1",
                                   "greeter.py:x", "greeter.py:2.5", "./:4"])
def test_comment_needs_file_colon_line(cli: CliEnv, where: str) -> None:
    result = cli.run("ctl", "comment", "c0ffee01-1", where, "text")
    assert result.returncode == 2
    assert "is not FILE:LINE" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [
    ["ctl", "comment", "c0ffee01-1", "greeter.py:2"],  # no text
    ["ctl", "comment", "c0ffee01", "greeter.py:2", "text"],  # a card id
    ["ctl", "comment"],
])
def test_comment_usage_errors(cli: CliEnv, args: list[str]) -> None:
    result = cli.run(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_comment_sends_path_line_and_text(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    def created(request: Recorded) -> Any:
        return 201, {"id": 7, "attempt_id": "c0ffee01-1", **request.body, "created_at": 1.0, "sent_at": None}

    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/comments", created)
    result = cli.run("ctl", "comment", "c0ffee01-1", "./src/a:b.py:12", "use", "a guard")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "7\n"
    assert fake_daemon.requests[-1].body == {"path": "src/a:b.py", "line": 12, "text": "use a guard"}
    assert "comment 7 on src/a:b.py:12" in result.stderr


def test_comment_on_a_line_outside_the_diff_fails(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    message = "line 9 of greeter.py is not in the diff (comment on an added or context line)"
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/comments",
                   (400, {"error": {"status": 400, "message": message, "field": "line"}}))
    result = cli.run("ctl", "comment", "c0ffee01-1", "greeter.py:9", "hm")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"kilod: {message}\n")


def test_comments_list(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    comments = [
        {"id": 1, "attempt_id": "c0ffee01-1", "path": "greeter.py", "line": 2, "text": "Why Hi?",
         "created_at": 1.0, "sent_at": 2.0},
        {"id": 12, "attempt_id": "c0ffee01-1", "path": "tests/test_greeter.py", "line": 40,
         "text": "two\nlines", "created_at": 3.0, "sent_at": None},
    ]
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/comments", (200, {"comments": comments}))
    result = cli.run("ctl", "comments", "c0ffee01-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "#1   greeter.py:2              sent     Why Hi?",
        "#12  tests/test_greeter.py:40  pending  two",
        "                                        lines",
    ]
    as_json = cli.run("ctl", "comments", "c0ffee01-1", "--json")
    assert json.loads(as_json.stdout) == {"comments": comments}


# -- follow-ups ------------------------------------------------------------


def test_followup_prints_the_attempt_and_its_state(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/messages",
                   (202, {**attempt("c0ffee01-1", "m/x", "running"), "follow_from_seq": 7}))
    result = cli.run("ctl", "followup", "c0ffee01-1", "also", "handle", "None")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "c0ffee01-1 running\n"
    assert fake_daemon.requests[-1].body == {"text": "also handle None"}
    assert len(fake_daemon.requests) == 1  # without -f: nothing but the message


def followed(final: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    before = [*HISTORY, *LIVE]  # ends in review at seq 7
    after_post = [event(8, "state", {"from": "review", "to": "running", "card_id": "c0ffee01"}),
                  event(9, "message", {"role": "user", "content": "also handle None"})]
    live = [event(10, "tool_call", {"id": "t2", "name": "shell", "arguments": "{}"}),
            event(11, "state", {"from": "running", "to": final, "card_id": "c0ffee01"})]
    return before, [*after_post, *live]


@pytest.mark.parametrize(("final", "code"), [("review", 0), ("failed", 1)])
def test_followup_follow_shows_what_it_set_off(cli: CliEnv, fake_daemon: FakeDaemon, final: str, code: int) -> None:
    before, after = followed(final)
    posted = threading.Event()

    def events(request: Recorded) -> Any:
        if request.headers.get("Accept") == "text/event-stream":
            return Sse([sse_frame(e) for e in after[2:]])
        return 200, {"events": before}

    def message(request: Recorded) -> Any:
        posted.set()
        return 202, {**attempt("c0ffee01-1", "m/x", "running"), "follow_from_seq": 7}

    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events", events)
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events?after=7", (200, {"events": after[:2]}))
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/messages", message)
    result = cli.run("ctl", "followup", "c0ffee01-1", "also handle None", "-f")
    assert result.returncode == code, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "c0ffee01-1 running"
    assert "review → running" in lines[1] and "also handle None" in lines[2]
    assert lines[-1].endswith(f"running → {final.upper()}")
    assert len(lines) == 1 + len(after)  # nothing from before the follow-up
    assert [r.path for r in fake_daemon.calls] == [
        "/v1/attempts/c0ffee01-1/events", "/v1/attempts/c0ffee01-1/messages",
        "/v1/attempts/c0ffee01-1/events?after=7", "/v1/attempts/c0ffee01-1/events"]
    assert fake_daemon.requests[-1].headers.get("Last-Event-ID") == "9"
    if final == "failed":
        assert "attempt c0ffee01-1 failed" in result.stderr


def test_followup_of_an_attempt_not_in_review(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    message = "a follow-up needs an attempt in review; c0ffee01-1 is running"
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/messages", (409, {"error": {"status": 409, "message": message}}))
    result = cli.run("ctl", "followup", "c0ffee01-1", "more")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"kilod: {message}\n")


# -- approve and merge -----------------------------------------------------


def landed(merge: dict[str, Any] | None, discarded: list[str]) -> dict[str, Any]:
    return {"attempt": attempt("c0ffee01-1", "m/x", "approved"), "commit": "c" * 40, "branch": "kilod/c0ffee01-1",
            "merge": merge, "discarded": discarded}


def test_approve_without_a_tree_shows_what_lands_and_sends_its_tree(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", DIFF_PATH, (200, DIFF))
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (200, landed(None, [])))
    refused = cli.run("ctl", "approve", "c0ffee01-1")  # piped, no --yes: nothing is sent
    assert refused.returncode == 2 and f"--tree {DIFF['tree']}" in refused.stderr
    assert [r.method for r in fake_daemon.requests] == ["GET"]

    result = cli.run("ctl", "approve", "c0ffee01-1", "--yes")
    assert result.returncode == 0, result.stderr
    assert fake_daemon.requests[-1].body == {"merge": False, "tree": DIFF["tree"]}
    assert f"lands exactly this (tree {DIFF['tree']})" in result.stderr and "greeter.py" in result.stderr
    assert result.stdout.splitlines() == [
        "approved  c0ffee01-1",
        f"commit    {'c' * 40}",
        "branch    kilod/c0ffee01-1",
        "merged    no (the work stays on its branch; 'kilod ctl merge' merges it into the base)",
    ]


@pytest.mark.parametrize("verb", [["approve", "--merge"], ["merge"]])
def test_approve_and_merge(cli: CliEnv, fake_daemon: FakeDaemon, verb: list[str]) -> None:
    merge = {"branch": "main", "head": "d" * 40, "fast_forward": False, "worktree_updated": "/src/app",
             "checkout": "/src/app", "note": "the clean checkout at /src/app was updated"}
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (200, landed(merge, ["c0ffee01-2", "c0ffee01-3"])))
    result = cli.run("ctl", *verb, "c0ffee01-1", "-m", "Say hi", "--tree", "abc123")
    assert result.returncode == 0, result.stderr
    assert fake_daemon.requests[-1].body == {"merge": True, "message": "Say hi", "tree": "abc123"}
    assert result.stdout.splitlines()[3:] == [
        "merged     into main (merge commit), now at dddddddddddd",
        "checkout   /src/app updated",
        "discarded  c0ffee01-2, c0ffee01-3",
    ]


def test_a_fast_forward_that_left_the_checkout_alone(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    merge = {"branch": "main", "head": "e" * 40, "fast_forward": True, "worktree_updated": None,
             "checkout": None, "note": "main is not checked out: only the ref moved"}
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (200, landed(merge, [])))
    result = cli.run("ctl", "merge", "c0ffee01-1", "--tree", "f" * 40)
    assert result.returncode == 0, result.stderr
    assert "merged    into main (fast-forward), now at eeeeeeeeeeee" in result.stdout
    assert "checkout  ref only: your checkout was not touched" in result.stdout
    as_json = cli.run("ctl", "merge", "c0ffee01-1", "--json", "--tree", "f" * 40)
    assert json.loads(as_json.stdout) == landed(merge, [])


def test_a_merge_conflict_lists_the_files_and_fails(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    message = "merging into main conflicts in 2 file(s): greeter.py, docs/usage.md"
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (409, {"error": {
        "status": 409, "message": message, "paths": ["greeter.py", "docs/usage.md"]}}))
    result = cli.run("ctl", "merge", "c0ffee01-1", "--tree", "f" * 40)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:4] == [f"kilod: {message}", "conflicting files:", "  greeter.py", "  docs/usage.md"]
    assert "still in review" in lines[4]


def test_approve_in_the_wrong_state(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    message = "only an attempt in review can be approved; c0ffee01-1 is running"
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (409, {"error": {"status": 409, "message": message}}))
    result = cli.run("ctl", "approve", "c0ffee01-1", "--tree", "f" * 40)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"kilod: {message}\n")


# -- discard, cancel, retry ------------------------------------------------


def test_discard_cancel_retry(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/discard", (200, attempt("c0ffee01-1", "m/x", "discarded")))
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-2/cancel", (200, attempt("c0ffee01-2", "m/x", "cancelled")))
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-2/retry", (201, attempt("c0ffee01-4", "m/x", "queued")))
    discarded = cli.run("ctl", "discard", "c0ffee01-1")
    assert (discarded.returncode, discarded.stdout) == (0, "c0ffee01-1 discarded\n")
    cancelled = cli.run("ctl", "cancel", "c0ffee01-2")
    assert (cancelled.returncode, cancelled.stdout) == (0, "c0ffee01-2 cancelled\n")
    retried = cli.run("ctl", "retry", "c0ffee01-2")
    assert (retried.returncode, retried.stdout) == (0, "c0ffee01-4\n")
    assert "retrying c0ffee01-2 as c0ffee01-4" in retried.stderr
    as_json = cli.run("ctl", "retry", "c0ffee01-2", "--json")
    assert json.loads(as_json.stdout)["id"] == "c0ffee01-4"


def test_cancel_of_a_resting_attempt_fails(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    message = "only a queued, starting or running attempt can be cancelled; c0ffee01-1 is review"
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/cancel", (409, {"error": {"status": 409, "message": message}}))
    result = cli.run("ctl", "cancel", "c0ffee01-1")
    assert (result.returncode, result.stderr) == (1, f"kilod: {message}\n")


# -- open ------------------------------------------------------------------


def test_open_without_the_editor_prints_the_path_the_command_and_the_risks(
        cli: CliEnv, desk: FakeDaemon, worktree: Path) -> None:
    result = cli.run("ctl", "open", "c0ffee01-1", extra_env={"KILOD_EDITOR": "kilod-no-such-editor --wait {path}"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{worktree}\n"
    err = result.stderr.splitlines()
    assert err[0].startswith("kilod: warning: opening this folder in an editor can run code:")
    assert [re.split(r"\s{2,}", text.strip()) for text in err[1:4]] == [
        [".vscode/tasks.json", "editor configuration (can run tasks)"],
        ["tool.sh", "made executable"],
        ["vendor/lib", NESTED_REPOSITORY],
    ]
    assert "kilod-no-such-editor" in err[4] and "not found" in err[4]
    assert err[5].strip() == shlex.join(["kilod-no-such-editor", "--wait", str(worktree)])
    # the warning comes before anything is opened
    assert result.stderr.index("can run code") < result.stderr.index("not found")


def test_open_runs_the_editor_on_the_worktree(cli: CliEnv, desk: FakeDaemon, worktree: Path) -> None:
    record = cli.root / "editor-argv"
    editor = executable(cli.root / "my editor", f'printf "%s\\n" "$@" > "{record}"\n')
    appended = cli.run("ctl", "open", "c0ffee01-1",
                       extra_env={"KILOD_EDITOR": f"{shlex.quote(str(editor))} --new-window"})
    assert appended.returncode == 0, appended.stderr
    assert record.read_text().splitlines() == ["--new-window", str(worktree)]
    replaced = cli.run("ctl", "open", "c0ffee01-1",
                       extra_env={"KILOD_EDITOR": f"{shlex.quote(str(editor))} --folder={{path}} -n"})
    assert replaced.returncode == 0, replaced.stderr
    assert record.read_text().splitlines() == [f"--folder={worktree}", "-n"]
    assert "can run code" in replaced.stderr


def test_open_fails_when_the_editor_does(cli: CliEnv, desk: FakeDaemon) -> None:
    editor = executable(cli.root / "editor", "exit 4\n")
    result = cli.run("ctl", "open", "c0ffee01-1", extra_env={"KILOD_EDITOR": str(editor)})
    assert result.returncode == 1
    assert "kilod: the editor exited with code 4" in result.stderr


def test_open_an_attempt_without_a_worktree(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1",
                   (200, attempt("c0ffee01-1", "m/x", "discarded", worktree=str(cli.root / "gone"))))
    result = cli.run("ctl", "open", "c0ffee01-1")
    assert result.returncode == 1
    assert "has no worktree on this machine" in result.stderr


# -- shell -----------------------------------------------------------------


def test_shell_on_the_host_runs_shell_in_the_worktree(cli: CliEnv, desk: FakeDaemon, worktree: Path) -> None:
    record = cli.root / "shell-ran"
    shell = executable(cli.root / "shell", f'echo "$(pwd)|$KILOD_ATTEMPT|$#" > "{record}"\nexit 7\n')
    result = cli.run("ctl", "shell", "c0ffee01-1", "--host", extra_env={"SHELL": str(shell)})
    assert result.returncode == 7  # the shell's own exit code
    assert record.read_text() == f"{worktree}|c0ffee01-1|0\n"
    assert "can run code" in result.stderr  # the diff's risks, as for open


def fake_docker(cli: CliEnv, code: int) -> tuple[Path, Path]:
    bin_dir = cli.root / "bin"
    bin_dir.mkdir()
    record = cli.root / "docker-argv"
    executable(bin_dir / "docker", f'printf "%s\\n" "$@" > "{record}"\n'
                                   f'[ -t 0 ] && echo tty >> "{record}"\nexit {code}\n')
    return bin_dir, record


SHELL_TARGET = {"container": "kilod-c0ffee01-1", "container_id": "f" * 64, "user": "1000:1000",
                "workdir": "/workspace", "worktree": "/data/worktrees/c0ffee01-1"}


def test_shell_execs_docker_exec_in_the_container(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/shell", (200, SHELL_TARGET))
    bin_dir, record = fake_docker(cli, 9)
    path = f"{bin_dir}{os.pathsep}{cli.env['PATH']}"
    piped = cli.run("ctl", "shell", "c0ffee01-1", extra_env={"PATH": path})
    assert piped.returncode == 9  # docker's exit code
    expected = ["exec", "{flags}", "-u", "1000:1000", "-w", "/workspace", "kilod-c0ffee01-1",
                "sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]
    assert record.read_text().splitlines() == [a.replace("{flags}", "-i") for a in expected]

    primary, secondary = pty.openpty()  # a terminal on stdin: docker gets -t too
    try:
        on_tty = subprocess.run([sys.executable, "-m", "kilod_cli.main", "ctl", "shell", "c0ffee01-1"],
                                env=cli.env_with({"PATH": path}), stdin=secondary, capture_output=True,
                                timeout=CLI_TIMEOUT_SECONDS)
    finally:
        os.close(secondary)
        os.close(primary)
    assert on_tty.returncode == 9, on_tty.stderr
    assert record.read_text().splitlines() == [*(a.replace("{flags}", "-it") for a in expected), "tty"]


def test_shell_without_docker_fails_before_asking_the_daemon(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    empty = cli.root / "empty-bin"
    empty.mkdir()
    result = cli.run("ctl", "shell", "c0ffee01-1", extra_env={"PATH": str(empty)})
    assert result.returncode == 1
    assert result.stderr.startswith("kilod: docker is not on PATH")
    assert not [r for r in fake_daemon.requests if r.path.endswith("/shell")]  # no container started for nothing


# -- the live board follows the event stream --------------------------------


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def board(title: str) -> dict[str, Any]:
    from .test_cli_fake_daemon import card

    one = card("c0ffee01", title, "doing", [attempt("c0ffee01-1", "m/x", "running")])
    return {"columns": [{"id": "todo", "title": "To Do", "cards": []},
                        {"id": "doing", "title": "Doing", "cards": [one]},
                        {"id": "review", "title": "Review", "cards": []},
                        {"id": "done", "title": "Done", "cards": []}]}


def test_board_watch_redraws_when_an_event_arrives(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    boards: list[dict[str, Any]] = []
    send_event, send_another, end_stream = threading.Event(), threading.Event(), threading.Event()
    fake_daemon.on("GET", "/v1/status", (200, status(last_event_id=41)))
    fake_daemon.on("GET", "/v1/board", lambda _r: (200, boards.pop(0) if len(boards) > 1 else boards[0]))
    boards.extend([board("before the event"), board("after the event")])
    frames = [sse_frame({**event(n, "log", {"message": "x"}), "id": 41 + n}) for n in (1, 2)]
    fake_daemon.on("GET", "/v1/events", Sse([send_event, frames[0], send_another, frames[1], end_stream]))
    watch = subprocess.Popen([sys.executable, "-m", "kilod_cli.main", "ctl", "board", "--watch"], env=cli.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        def fetched_boards() -> int:
            return sum(1 for r in fake_daemon.requests if r.path.split("?")[0] == "/v1/board")

        wait_until(lambda: fetched_boards() == 1 and any(r.path == "/v1/events" for r in fake_daemon.requests),
                   "the first board and the event stream")
        send_event.set()
        wait_until(lambda: fetched_boards() == 2, "the board fetched again after the event")
        # a third fetch means the CLI is done drawing the second board (it fetches, draws, then waits)
        send_another.set()
        wait_until(lambda: fetched_boards() == 3, "the board fetched after the next event")
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=CLI_TIMEOUT_SECONDS)
    finally:
        end_stream.set()
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err
    assert "after the event" in out  # the last drawing is the board fetched after the event
    stream = [r for r in fake_daemon.requests if r.path == "/v1/events"]
    assert stream[0].headers.get("Last-Event-ID") == "41"  # from now on: no replay of the past
    paths = [r.path for r in fake_daemon.requests]
    boards_asked = next(i for i, path in enumerate(paths) if path.split("?")[0] == "/v1/board")
    assert paths.index("/v1/status") < boards_asked  # the stream starts where the first board was
