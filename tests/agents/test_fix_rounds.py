"""Checks feed back to an agent CLI too: the fix round is a follow-up that resumes its own session.
Pausing is the built-in agent's alone: an agent CLI cannot be stopped between its tool calls."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.kilod_testing import ApiError, DaemonProcess, make_repo

CHECK = 'test -f fixed.txt || { echo "fixed.txt is missing"; exit 1; }'


def user_messages(daemon: DaemonProcess, attempt_id: str) -> list[str]:
    with sqlite3.connect(f"file:{daemon.data_dir / 'kilod.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT message FROM conversation WHERE attempt_id = ? ORDER BY idx", (attempt_id,))
        return [m["content"] for m in (json.loads(r[0]) for r in rows) if m["role"] == "user"]


def test_a_failing_check_goes_back_to_claude_code_in_its_own_session_and_pause_is_refused(
        agent_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    toml = f'fix_rounds = 1\n\n[[checks]]\nname = "has-fix"\nrun = {json.dumps(CHECK)}\n'
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n", ".kilod.toml": toml})
    daemon = agent_daemon("claude-code")
    card = daemon.request("POST", "/v1/cards", {"prompt": "make the check pass", "repo": str(repo),
                                                "agents": ["claude-code"], "models": ["scripted/cc_fix"]})
    attempt_id = card["attempts"][0]["id"]

    daemon.wait_for(lambda: (a := daemon.attempt(attempt_id))["state"] == "running" and a["step"] == "agent",
                    120, "Claude Code at work")
    with pytest.raises(ApiError) as refused:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/pause")
    assert refused.value.status == 409 and "only the built-in agent can be paused" in str(refused.value)

    done = daemon.wait_for(lambda: (a := daemon.attempt(attempt_id))["state"] == "review" and a,
                           300, "the attempt to reach review")
    checks = [(e["payload"]["run"], e["payload"]["status"]) for e in daemon.events(attempt_id) if e["kind"] == "check"]
    assert checks == [(1, "failed"), (2, "passed")]
    # only the resumed session holds the first two turns, so only it plays the script's fixing steps
    assert done["run"] == 2 and done["summary"] == "Fixed after the checks.", daemon.events(attempt_id)
    assert (Path(done["worktree"]) / "fixed.txt").read_text() == "ok\n"
    started = [e["payload"]["message"] for e in daemon.events(attempt_id)
               if e["kind"] == "log" and str(e["payload"].get("message", "")).startswith("started ")]
    assert len(started) == 2 and "resuming session" in started[1]
    [fix] = user_messages(daemon, attempt_id)
    assert "fix round 1 of 1" in fix and "fixed.txt is missing" in fix and "end your turn" in fix
    assert "call `finish`" not in fix   # the built-in agent's tool, which Claude Code does not have
