"""The file tools' answers, the todo tool and the system prompt, without a container."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kilod.agent.files import READ_LINES, edited_region, python_problem, read_window
from kilod.agent.prompt import INSTRUCTIONS_LIMIT, Environment, read_instructions, system_prompt
from kilod.agent.tools import ToolRunner
from kilod.sandbox.docker import DockerSandbox


def test_a_big_file_is_read_in_a_window_with_a_note_of_what_was_left_out() -> None:
    text = "\n".join(f"line {n}" for n in range(1, 1001))
    first = read_window("big.txt", text, 1, None, 100_000)
    assert first.splitlines()[0] == "     1\tline 1"
    assert first.splitlines()[READ_LINES - 1] == f"{READ_LINES:>6}\tline {READ_LINES}"
    assert first.splitlines()[-1] == (f"[big.txt: 1000 lines; lines {READ_LINES + 1}-1000 not shown; "
                                      f"read on with offset={READ_LINES + 1}]")
    middle = read_window("big.txt", text, 500, 10, 100_000)
    assert middle.splitlines()[-1] == "[big.txt: 1000 lines; lines 1-499 not shown; lines 510-1000 not shown; " \
                                      "read on with offset=510]"
    assert read_window("big.txt", text, 1, 2000, 100_000).count("\n") == 999   # all of it: no note
    assert read_window("big.txt", text, 2000, None, 100_000) == "big.txt has 1000 lines; offset 2000 is past its end"
    budgeted = read_window("big.txt", text, 1, None, 200)
    assert len(budgeted) < 400 and "read on with offset=" in budgeted
    long_line = read_window("min.js", "x" * 5000, 1, None, 100_000)
    assert long_line.startswith("     1\t" + "x" * 500 + " [… 4500 characters cut]")


def test_an_edit_answers_with_its_region_and_python_is_checked() -> None:
    text = "".join(f"l{n}\n" for n in range(1, 21))
    at = text.index("l10")
    assert edited_region(text, at, 3).splitlines() == [f"{n:>6}\tl{n}" for n in range(7, 14)]
    assert python_problem("a.py", "def f(:\n") == "line 1: invalid syntax"
    assert python_problem("a.py", "def f():\n    return 1\n") is None
    assert python_problem("a.txt", "def f(:\n") is None
    assert python_problem("deep.py", "(" * 100_000 + ")" * 100_000) is not None   # never a crash


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> ToolRunner:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/kilod-tests-no-docker.sock")
    return ToolRunner(sandbox=DockerSandbox(), container_id="none", uid=1000, gid=1000, shell_timeout=5,
                      output_limit=4000)


async def test_the_todo_tool_keeps_a_checked_list(runner: ToolRunner) -> None:
    items = [{"text": "read the code", "status": "done"}, {"text": "fix it", "status": "in_progress"},
             {"text": "run the tests", "status": "pending"}]
    outcome = await runner.run("todo", json.dumps({"items": items}))
    assert outcome.ok and outcome.todo is not None
    assert [t.to_json() for t in outcome.todo] == items
    assert outcome.output == "todo (1/3 done):\n[x] read the code\n[~] fix it\n[ ] run the tests"
    bad = await runner.run("todo", json.dumps({"items": [{"text": "x", "status": "someday"}]}))
    assert not bad.ok and bad.todo is None
    assert bad.output == "error: bad arguments for todo: item 1: status must be one of pending, in_progress, done"


def test_the_system_prompt_states_the_environment() -> None:
    closed = system_prompt(Environment(network=False, shell_timeout=120, output_limit=8000, step_limit=30,
                                       checks=["pytest -q", "ruff check ."]))
    assert "NO network access" in closed
    assert "120 s at most" in closed and "8,000 characters" in closed and "30 model turns" in closed
    assert "Do not commit" in closed
    assert "  $ pytest -q\n  $ ruff check ." in closed
    opened = system_prompt(Environment(network=True))
    assert "has network access" in opened and "find how the project runs its tests" in opened


def test_the_repositorys_instructions_are_included_but_never_through_a_link(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / ".github").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (work / "AGENTS.md").write_text("Run `make test` before finishing.\n")
    os.symlink(secret, work / "CLAUDE.md")                          # a link to a host file: skipped
    (work / ".github" / "copilot-instructions.md").write_text("x" * (INSTRUCTIONS_LIMIT + 10))

    found = dict(read_instructions(work))
    assert set(found) == {"AGENTS.md", ".github/copilot-instructions.md"}
    assert found[".github/copilot-instructions.md"].endswith("[… cut at 24 KB …]")
    prompt = system_prompt(Environment(worktree=work))
    assert "# The repository's AGENTS.md" in prompt and "Run `make test` before finishing." in prompt
    assert "host secret" not in prompt

    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(work / ".github", linked / ".github")                 # a linked folder: skipped too
    os.mkfifo(linked / "AGENTS.md")                                   # a FIFO must not hang the daemon
    assert read_instructions(linked) == []
