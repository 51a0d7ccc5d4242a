"""Checks feed back: failing checks go back to the built-in agent with their output, a few rounds at most."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from kilod.agent.feedback import fix_round_message, rounds_used
from tests.kilod_testing import DaemonProcess, make_repo

CHECK = 'test -f fixed.txt || { echo "fixed.txt is missing"; exit 1; }'
FIXER = {"steps": [
    {"tools": [{"name": "finish", "arguments": {"summary": "first try"}}]},
    {"tools": [{"name": "write_file", "arguments": {"path": "fixed.txt", "content": "ok\n"}}]},
    {"tools": [{"name": "finish", "arguments": {"summary": "fixed after: {{last_user}}"}}]},
]}
STUBBORN = {"steps": [{"tools": [{"name": "finish", "arguments": {"summary": f"try {n}"}}]} for n in range(5)]}


def configured(tmp_path: Path, fix_rounds: int) -> Path:
    toml = f'fix_rounds = {fix_rounds}\n\n[[checks]]\nname = "has-fix"\nrun = {json.dumps(CHECK)}\n'
    return make_repo(tmp_path / "repo", {"README.md": "# r\n", ".kilod.toml": toml})


def start(daemon_factory: type[DaemonProcess], tmp_path: Path) -> DaemonProcess:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "fixer.json").write_text(json.dumps(FIXER))
    (scripts / "stubborn.json").write_text(json.dumps(STUBBORN))
    return daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts)}).start()


def checks(daemon: DaemonProcess, attempt_id: str) -> list[tuple[int, str]]:
    return [(e["payload"]["run"], e["payload"]["status"]) for e in daemon.events(attempt_id) if e["kind"] == "check"]


def user_messages(daemon: DaemonProcess, attempt_id: str) -> list[str]:
    with sqlite3.connect(f"file:{daemon.data_dir / 'kilod.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT message FROM conversation WHERE attempt_id = ? ORDER BY idx", (attempt_id,))
        return [m["content"] for m in (json.loads(r[0]) for r in rows) if m["role"] == "user"]


def test_a_failing_check_goes_back_to_the_agent_which_fixes_it(
        daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    daemon = start(daemon_factory, tmp_path)
    repo = configured(tmp_path, fix_rounds=2)
    card = daemon.request("POST", "/v1/cards", {"prompt": "make it pass", "repo": str(repo),
                                                "models": ["scripted/fixer"]})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=300)

    assert checks(daemon, attempt["id"]) == [(1, "failed"), (2, "passed")]
    assert attempt["run"] == 2
    assert attempt["summary"].startswith("fixed after: The repository's checks ran after you finished")
    assert "fixed.txt is missing" in attempt["summary"] and "fix round 1 of 2" in attempt["summary"]
    assert (Path(attempt["worktree"]) / "fixed.txt").read_text() == "ok\n"


def test_rounds_are_limited_then_the_attempt_waits_in_review_with_its_checks_failing(
        daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    daemon = start(daemon_factory, tmp_path)
    repo = configured(tmp_path, fix_rounds=1)
    card = daemon.request("POST", "/v1/cards", {"prompt": "make it pass", "repo": str(repo),
                                                "models": ["scripted/stubborn"]})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=300)

    assert checks(daemon, attempt["id"]) == [(1, "failed"), (2, "failed")]
    assert attempt["summary"] == "try 1"
    assert len(user_messages(daemon, attempt["id"])) == 2   # the task and one fix round


def test_no_round_when_checks_pass_the_agent_stopped_early_or_rounds_are_used() -> None:
    failed: list[dict[str, Any]] = [{"name": "t", "command": "pytest", "status": "failed", "exit_code": 1,
                                     "timed_out": False, "output_tail": "x" * 10_000 + "1 failed"}]
    passed = [{**failed[0], "status": "passed"}]
    task = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    assert fix_round_message(passed, task, 2, None) is None
    assert fix_round_message(failed, task, 2, "step limit of 50 model calls reached") is None
    assert fix_round_message(failed, task, 0, None) is None
    first = fix_round_message(failed, task, 2, None)
    assert first is not None and first["content"].endswith("1 failed\n```") and len(first["content"]) < 4_000
    assert "then call `finish` again." in first["content"]
    told = fix_round_message(failed, task, 2, None, "end your turn with a short summary")   # an agent CLI
    assert told is not None and "then end your turn with a short summary." in told["content"]
    assert "`finish`" not in told["content"]
    again = [*task, first, {"role": "assistant", "content": "done"}]
    assert rounds_used(again) == 1
    second = fix_round_message(failed, again, 2, None)
    assert second is not None and "fix round 2 of 2" in second["content"]
    assert fix_round_message(failed, [*again, second], 2, None) is None
    # a person's follow-up gives a fresh allowance
    assert rounds_used([*again, second, {"role": "user", "content": "try again"}]) == 0
