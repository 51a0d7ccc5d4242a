"""Many models, one prompt, from the command line, as real processes against the fake daemon:
`ctl new` with repeats, budgets and settings; `ctl compare` (the table, the files, `--diff FILE`);
`ctl pick`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from .conftest import CLI_TIMEOUT_SECONDS, CliEnv, FakeDaemon
from .test_cli_desk import file_diff, hunk, landed, line
from .test_cli_fake_daemon import attempt, card

COMPARE_PATH = "/v1/cards/c0ffee01/compare"
PLANTED = "evil\x1b[31m.py"  # an agent-made file name with an escape sequence in it


def row(attempt_id: str, model: str, state: str, files: list[str] | None, **extra: Any) -> dict[str, Any]:
    return {
        "attempt_id": attempt_id, "model": model, "state": state,
        "files_changed": None if files is None else len(files), "additions": None, "deletions": None,
        "checks_passed": None, "checks_failed": None, "checks_error": None, "checks_failing": False,
        "steps": 4, "tool_calls": 8, "tokens_in": 1500, "tokens_out": 500, "tokens": 2000, "cost_usd": 0.04,
        "wall_seconds": None, "stop_reason": None, "files": files or [], **extra,
    }


COMPARE = {
    "card_id": "c0ffee01",
    "title": "Add a --verbose flag",
    "rows": [
        row("c0ffee01-1", "scripted/hello", "review", ["HELLO.md", "app.py"], additions=10, deletions=3,
            checks_passed=2, checks_failed=0, checks_error=0, steps=5, tool_calls=7, tokens_in=1200,
            tokens_out=345, tokens=1545, cost_usd=0.0123, wall_seconds=42.5),
        row("c0ffee01-2", "ollama/qwen", "review", ["app.py", PLANTED], additions=4, deletions=1,
            checks_passed=0, checks_failed=2, checks_error=1, checks_failing=True, steps=3, tool_calls=9,
            tokens_in=800, tokens_out=200, tokens=1000, cost_usd=None, wall_seconds=125.0,
            stop_reason="budget: 1000 tokens"),
        row("c0ffee01-3", "openai/gpt-4o", "discarded", None),
    ],
    "best": {"checks_passed": ["c0ffee01-1"], "checks_failed": ["c0ffee01-1"], "steps": ["c0ffee01-2"],
             "tool_calls": ["c0ffee01-1"], "tokens": ["c0ffee01-2"], "cost_usd": ["c0ffee01-1"],
             "wall_seconds": ["c0ffee01-1"]},
    "files": {"HELLO.md": ["c0ffee01-1"], "app.py": ["c0ffee01-1", "c0ffee01-2"], PLANTED: ["c0ffee01-2"]},
    "overlap": ["app.py"],
    "usage": {"tokens_in": 3500, "tokens_out": 1045, "cost_usd": 0.0523, "cost_complete": False},
}


@pytest.fixture
def compared(fake_daemon: FakeDaemon) -> FakeDaemon:
    fake_daemon.on("GET", COMPARE_PATH, (200, COMPARE))
    return fake_daemon


def table_rows(output: str) -> dict[str, list[str]]:
    """The compare table's cells by attempt id (cells are apart by two spaces or more)."""
    rows = {}
    for text in output.splitlines():
        cells = re.split(r"\s{2,}", text.strip())
        if re.fullmatch(r"c0ffee01-\d", cells[0]) and len(cells) > 3:
            rows[cells[0]] = cells
    return rows


# -- new -------------------------------------------------------------------


def test_new_sends_repeat_budget_and_settings_and_prints_each_attempt(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    attempts = [attempt(f"c0ffee01-{n}", model, "queued") for n, model in enumerate(["a/x"] * 3 + ["b/y"] * 3, 1)]
    fake_daemon.on("POST", "/v1/cards", (201, card("c0ffee01", "T", "todo", attempts)))
    result = cli.run("ctl", "new", "do it", "-n", "3", "--budget-tokens", "500", "--check", "pytest -q",
                     "-m", "a/x", "-m", "b/y", cwd=cli.root)
    assert result.returncode == 0, result.stderr
    assert fake_daemon.requests[-1].body == {
        "prompt": "do it", "repo": str(cli.root.resolve()), "models": ["a/x", "b/y"], "repeat": 3,
        "budget": {"tokens": 500}, "settings": {"checks": ["pytest -q"]},
    }
    assert result.stdout.splitlines() == ["c0ffee01", "c0ffee01-1  a/x", "c0ffee01-2  a/x", "c0ffee01-3  a/x",
                                          "c0ffee01-4  b/y", "c0ffee01-5  b/y", "c0ffee01-6  b/y"]
    assert "with 6 attempts" in result.stderr


def test_new_sends_only_the_settings_given(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("POST", "/v1/cards", (201, card("c0ffee01", "T", "todo", [])))
    result = cli.run("ctl", "new", "do it", "--budget-cost", "0.25", "--setup", "pip install -e .",
                     "--setup", "make deps", "--copy", ".env", "--copy", "config/*.yaml",
                     "--check", "pytest -q", "--check", "ruff check .", cwd=cli.root)
    assert result.returncode == 0, result.stderr
    body = fake_daemon.requests[-1].body
    assert body["budget"] == {"cost_usd": 0.25}
    assert body["settings"] == {"setup": ["pip install -e .", "make deps"], "checks": ["pytest -q", "ruff check ."],
                                "copy": [".env", "config/*.yaml"]}
    assert "repeat" not in body


@pytest.mark.parametrize("args", [
    ["-n", "9"], ["-n", "0"], ["--repeat", "two"], ["--budget-tokens", "0"], ["--budget-tokens", "1.5"],
    ["--budget-cost", "-1"], ["--budget-cost", "nan"], ["--budget-cost", "free"],
])
def test_new_checks_counts_and_budgets_before_asking(cli: CliEnv, fake_daemon: FakeDaemon, args: list[str]) -> None:
    result = cli.run("ctl", "new", "do it", "-m", "a/x", *args)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and result.stdout == ""
    assert fake_daemon.requests == []


# -- compare ---------------------------------------------------------------


def test_compare_table_marks_the_best_value_in_each_column(cli: CliEnv, compared: FakeDaemon) -> None:
    result = cli.run("ctl", "compare", "c0ffee01")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "\x1b" not in out  # NO_COLOR, and the planted escape is shown, not sent
    assert out.splitlines()[0] == "card c0ffee01  Add a --verbose flag"
    header = re.split(r"\s{2,}", next(text for text in out.splitlines() if "attempt" in text).strip())
    assert header == ["attempt", "model", "state", "files", "lines", "checks", "steps", "tool calls", "tokens",
                      "cost", "time", "stop reason"]
    assert table_rows(out) == {
        "c0ffee01-1": ["c0ffee01-1", "scripted/hello", "review", "2", "+10 -3", "2✓ 0✗ ★", "5", "7 ★", "1,545",
                       "$0.0123 ★", "42.5s ★", "—"],
        "c0ffee01-2": ["c0ffee01-2", "ollama/qwen", "review", "2", "+4 -1", "0✓ 1✗ 1 error failing", "3 ★", "9",
                       "1,000 ★", "unknown", "2m 05s", "budget: 1000 tokens"],
        "c0ffee01-3": ["c0ffee01-3", "openai/gpt-4o", "discarded", "unknown", "unknown", "—", "4", "8", "2,000",
                       "$0.0400", "—", "—"],
    }
    assert "★ the best value among the attempts" in out


def test_compare_lists_files_overlaps_and_totals(cli: CliEnv, compared: FakeDaemon) -> None:
    out = cli.run("ctl", "compare", "c0ffee01").stdout
    lines = [text.rstrip() for text in out.splitlines()]
    files = lines[lines.index("files touched"):]
    matrix = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", text.strip()) for text in files[1:])
              if cells[0] in ("HELLO.md", "app.py", "evil␛[31m.py")}
    # columns c0ffee01-1, -2, -3: touched, untouched (blank), unknown
    assert matrix == {"HELLO.md": ["●", "?"], "app.py": ["●", "●", "?"], "evil␛[31m.py": ["●", "?"]}
    assert "  c0ffee01-3: unknown (the attempt is discarded; its changes are gone)" in lines
    overlap = lines.index("overlap: 1 file changed by more than one attempt")
    assert lines[overlap + 1] == "  app.py: c0ffee01-1, c0ffee01-2"
    assert lines[-3:] == ["card total", "tokens  4,545 (3,500 in / 1,045 out)",
                          "cost    $0.0523 + cost unknown for some attempts"]


def test_compare_without_overlap_or_known_cost(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    rows = [row("c0ffee01-1", "m/a", "review", ["a.py"], cost_usd=None),
            row("c0ffee01-2", "m/b", "review", ["b.py"], cost_usd=None)]
    fake_daemon.on("GET", COMPARE_PATH, (200, {
        **COMPARE, "rows": rows, "best": {}, "files": {"a.py": ["c0ffee01-1"], "b.py": ["c0ffee01-2"]},
        "overlap": [], "usage": {"tokens_in": 3000, "tokens_out": 1000, "cost_usd": None, "cost_complete": False}}))
    out = cli.run("ctl", "compare", "c0ffee01").stdout
    assert [cells[9] for cells in table_rows(out).values()] == ["unknown", "unknown"]
    assert "★" not in out
    assert "overlap: none (no file was changed by more than one attempt)" in out
    assert out.splitlines()[-1] == "cost    unknown (no price known for these models)"


def test_compare_on_a_narrow_terminal_has_a_column_per_attempt(cli: CliEnv, compared: FakeDaemon) -> None:
    out = cli.run("ctl", "compare", "c0ffee01", extra_env={"COLUMNS": "100"}).stdout
    labels: dict[str, list[str]] = {}
    for text in out.splitlines():
        cells = re.split(r"\s{2,}", text.strip())
        labels.setdefault(cells[0], cells[1:])  # the table's rows come before the totals
    assert labels["cost"] == ["$0.0123 ★", "unknown", "$0.0400"]
    assert labels["checks"] == ["2✓ 0✗ ★", "0✓ 1✗ 1 error failing", "—"]
    assert max(len(text) for text in out.splitlines()) <= 100


def test_compare_json_is_the_daemons(cli: CliEnv, compared: FakeDaemon) -> None:
    result = cli.run("ctl", "compare", "c0ffee01", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == COMPARE


def test_compare_of_an_unknown_card(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/cards/nope/compare", (404, {"error": {"status": 404, "message": "no card nope"}}))
    result = cli.run("ctl", "compare", "nope")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "kilod: no card nope\n")


# -- compare --diff FILE ---------------------------------------------------


HELLO_SECTION = ("diff --git a/HELLO.md b/HELLO.md\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n"
                 "+++ b/HELLO.md\n@@ -0,0 +1 @@\n+# Hello\n")
APP_SECTION_1 = ("diff --git a/app.py b/app.py\nindex 2222222..3333333 100644\n--- a/app.py\n+++ b/app.py\n"
                 "@@ -1 +1 @@\n-print('hi')\n+print('hello')  \t\r\n")
APP_SECTION_2 = ("diff --git a/app.py b/app.py\nindex 2222222..4444444 100644\n--- a/app.py\n+++ b/app.py\n"
                 "@@ -1 +1,2 @@\n print('hi')\n+print('diff --git a/x b/x')\n\\ No newline at end of file\n")
EVIL_SECTION = ("diff --git a/evil\x1b[31m.py b/evil\x1b[31m.py\nnew file mode 100644\n--- /dev/null\n"
                "+++ b/evil\x1b[31m.py\n@@ -0,0 +1 @@\n+x = 1\n")
DIFFS = {
    "c0ffee01-1": {
        "attempt_id": "c0ffee01-1", "tree": "t1", "base_commit": "b" * 40, "nested_repositories": [],
        "additions": 0, "deletions": 0, "risks": [], "text": HELLO_SECTION + APP_SECTION_1,
        "files": [file_diff("HELLO.md", "added", [hunk("@@ -0,0 +1 @@", [line("add", None, 1, "# Hello")])]),
                  file_diff("app.py", "modified", [hunk("@@ -1 +1 @@", [
                      line("delete", 1, None, "print('hi')"), line("add", None, 1, "print('hello')  \t\r")])])],
    },
    "c0ffee01-2": {
        "attempt_id": "c0ffee01-2", "tree": "t2", "base_commit": "b" * 40, "nested_repositories": [],
        "additions": 0, "deletions": 0, "risks": [], "text": APP_SECTION_2 + EVIL_SECTION,
        "files": [file_diff("app.py", "modified", [hunk("@@ -1 +1,2 @@", [
                      line("context", 1, 1, "print('hi')"), line("add", None, 2, "print('diff --git a/x b/x')"),
                      line("note", None, None, "No newline at end of file")])]),
                  file_diff(PLANTED, "added", [hunk("@@ -0,0 +1 @@", [line("add", None, 1, "x = 1")])])],
    },
}


@pytest.fixture
def diffs(compared: FakeDaemon) -> FakeDaemon:
    for attempt_id, diff in DIFFS.items():
        compared.on("GET", f"/v1/attempts/{attempt_id}/diff?format=both", (200, diff))
    return compared


def test_compare_diff_piped_is_each_attempts_section_of_that_file(cli: CliEnv, diffs: FakeDaemon) -> None:
    # bytes, not text: universal newlines would hide a \r the section must keep
    result = subprocess.run([sys.executable, "-m", "kilod_cli.main", "ctl", "compare", "c0ffee01", "--diff", "app.py"],
                            env=cli.env, capture_output=True, timeout=CLI_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == (
        "### attempt c0ffee01-1 (scripted/hello)\n" + APP_SECTION_1
        + "### attempt c0ffee01-2 (ollama/qwen)\n" + APP_SECTION_2
        + "### attempt c0ffee01-3 (openai/gpt-4o)\nunknown: the attempt is discarded and its changes are gone\n"
    )
    # the discarded attempt's diff is not asked for: the daemon has none
    assert [r.path for r in diffs.requests] == [COMPARE_PATH, "/v1/attempts/c0ffee01-1/diff?format=both",
                                                "/v1/attempts/c0ffee01-2/diff?format=both"]


def test_compare_diff_says_which_attempts_did_not_change_the_file(cli: CliEnv, diffs: FakeDaemon) -> None:
    result = cli.run("ctl", "compare", "c0ffee01", "--diff", "./HELLO.md")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "### attempt c0ffee01-1 (scripted/hello)\n" + HELLO_SECTION
        + "### attempt c0ffee01-2 (ollama/qwen)\nnot changed by this attempt\n"
        + "### attempt c0ffee01-3 (openai/gpt-4o)\nunknown: the attempt is discarded and its changes are gone\n"
    )


def test_compare_diff_of_an_approved_attempt_whose_worktree_is_gone(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", COMPARE_PATH, (200, {**COMPARE, "rows": [row("c0ffee01-1", "m/a", "approved", ["a.py"])]}))
    gone = {"error": {"status": 409, "message": "attempt c0ffee01-1 has no worktree (state: approved)"}}
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/diff?format=both", (409, gone))
    changed = cli.run("ctl", "compare", "c0ffee01", "--diff", "a.py")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines()[1] == ("changed, but its diff is not available: attempt c0ffee01-1 has no "
                                              "worktree (state: approved)")
    other = cli.run("ctl", "compare", "c0ffee01", "--diff", "b.py")
    assert other.stdout.splitlines()[1] == "not changed by this attempt"


def test_compare_diff_on_a_terminal_highlights_the_file_per_attempt(cli: CliEnv, diffs: FakeDaemon) -> None:
    result = cli.run("ctl", "compare", "c0ffee01", "--diff", PLANTED, "--no-pager", unset=("NO_COLOR",),
                     extra_env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert result.returncode == 0, result.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert "\x1b[31m.py" not in result.stdout  # the planted escape is shown, never sent
    lines = [text.strip() for text in plain.splitlines()]
    assert lines[0] == "evil␛[31m.py in 3 attempts of card c0ffee01"
    first, second, third = (next(i for i, text in enumerate(lines) if text.startswith(f"c0ffee01-{n}"))
                            for n in (1, 2, 3))
    assert "scripted/hello" in lines[first] and "ollama/qwen" in lines[second] and "openai/gpt-4o" in lines[third]
    assert lines[first + 1] == "not changed by this attempt"
    assert lines[second + 1].startswith("added") and "evil␛[31m.py" in lines[second + 1]
    assert any(text.endswith("+ x = 1") for text in lines[second:third])
    assert lines[third + 1] == "unknown: the attempt is discarded and its changes are gone"


def test_compare_diff_json(cli: CliEnv, diffs: FakeDaemon) -> None:
    result = cli.run("ctl", "compare", "c0ffee01", "--diff", "HELLO.md", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["path"] == "HELLO.md"
    assert [(a["attempt_id"], a["changed"], a["text"], a["note"]) for a in answer["attempts"]] == [
        ("c0ffee01-1", True, HELLO_SECTION, None),
        ("c0ffee01-2", False, None, "not changed by this attempt"),
        ("c0ffee01-3", False, None, "unknown: the attempt is discarded and its changes are gone"),
    ]
    assert answer["attempts"][0]["file"] == DIFFS["c0ffee01-1"]["files"][0]


# -- pick ------------------------------------------------------------------


def test_pick_approves_and_names_the_discarded_siblings(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/diff", (200, DIFFS["c0ffee01-1"]))
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (200, landed(None, ["c0ffee01-2", "c0ffee01-3"])))
    result = cli.run("ctl", "pick", "c0ffee01-1", "-m", "Add --verbose", "--yes")
    assert result.returncode == 0, result.stderr
    assert fake_daemon.requests[-1].body == {"merge": False, "message": "Add --verbose",
                                             "tree": DIFFS["c0ffee01-1"]["tree"]}
    assert result.stdout.splitlines() == [
        "approved   c0ffee01-1",
        f"commit     {'c' * 40}",
        "branch     kilod/c0ffee01-1",
        "merged     no (the work stays on its branch; 'kilod ctl merge' merges it into the base)",
        "discarded  c0ffee01-2, c0ffee01-3",
    ]
    assert result.stderr.endswith("picked c0ffee01-1 (m/x); discarded 2 siblings (container, worktree and branch "
                                  "removed): c0ffee01-2, c0ffee01-3\n")


def test_pick_and_merge_with_no_sibling_left(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    merge = {"branch": "main", "head": "d" * 40, "fast_forward": True, "worktree_updated": None,
             "checkout": None, "note": "main is not checked out: only the ref moved"}
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/diff", (200, DIFFS["c0ffee01-1"]))
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (200, landed(merge, [])))
    result = cli.run("ctl", "pick", "c0ffee01-1", "--merge", "-y")
    assert result.returncode == 0, result.stderr
    assert fake_daemon.requests[-1].body == {"merge": True, "tree": DIFFS["c0ffee01-1"]["tree"]}
    assert "merged     into main (fast-forward), now at dddddddddddd" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "discarded  none (no other attempt of this card was still open)"
    assert "no sibling left to discard" in result.stderr
    as_json = cli.run("ctl", "pick", "c0ffee01-1", "--json", "--yes")
    assert json.loads(as_json.stdout) == landed(merge, [])


def test_pick_with_a_merge_conflict_changes_nothing(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    message = "merging into main conflicts in 1 file(s): app.py"
    fake_daemon.on("POST", "/v1/attempts/c0ffee01-1/approve", (409, {"error": {
        "status": 409, "message": message, "paths": ["app.py"]}}))
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/diff", (200, DIFFS["c0ffee01-1"]))
    result = cli.run("ctl", "pick", "c0ffee01-1", "--merge", "--yes")
    assert result.returncode == 1
    assert result.stdout == ""
    shown = result.stderr.splitlines()
    start = shown.index(f"kilod: {message}")
    assert shown[start:start + 3] == [f"kilod: {message}", "conflicting files:", "  app.py"]


def test_pick_needs_an_attempt_id(cli: CliEnv) -> None:
    result = cli.run("ctl", "pick", "c0ffee01")
    assert result.returncode == 2
    assert "is not an attempt id" in result.stderr
