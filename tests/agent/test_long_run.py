"""A 60-step run with large tool outputs against a small window, through a real daemon and real Docker."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.kilod_testing import DaemonProcess

WINDOW = 12_000
STEPS = 60


def long_script() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"say": f"Step {n}: listing numbers.", "tools": [{"name": "shell", "arguments": {"command": f"seq {n} 800"}}]}
        for n in range(STEPS - 1)
    ]
    steps.append({"tools": [{"name": "finish", "arguments": {"summary": "sixty steps done"}}]})
    return {"description": "60 steps of ~1,000-token outputs", "context_window": WINDOW, "steps": steps}


def stored_conversation(data_dir: Path, attempt_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{data_dir / 'kilod.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT message FROM conversation WHERE attempt_id = ? ORDER BY idx",
                          (attempt_id,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_sixty_steps_with_large_outputs_fit_a_small_window_and_the_log_stays_whole(
        daemon_factory: type[DaemonProcess], repo: Path, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "long.json").write_text(json.dumps(long_script()))
    daemon = daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts), "KILOD_STEP_LIMIT": "80"}).start()

    card = daemon.request("POST", "/v1/cards", {"prompt": "count a lot", "repo": str(repo),
                                                "models": ["scripted/long"]})
    attempt_id = card["attempts"][0]["id"]
    attempt = daemon.wait_state(attempt_id, "review", timeout=600)

    assert attempt["summary"] == "sixty steps done"
    assert attempt["stop_reason"] is None
    assert attempt["steps"] == STEPS
    events = daemon.events(attempt_id)
    notes = [e["payload"]["message"] for e in events if e["kind"] == "log"
             and str(e["payload"].get("message", "")).startswith("context: ")]
    assert any(n.startswith("context: masked") for n in notes)
    sent = [e["payload"]["tokens_in"] for e in events if e["kind"] == "message" and "step" in e["payload"]]
    assert len(sent) == STEPS and max(sent) <= WINDOW
    assert sum(sent) < STEPS * WINDOW / 2   # what is sent stays well under the window on average

    stored = stored_conversation(daemon.data_dir, attempt_id)
    outputs = [m["content"] for m in stored if m["role"] == "tool"]
    assert len(outputs) == STEPS
    for n, output in enumerate(outputs[:-1]):   # every output whole, none masked in the stored log
        assert output.startswith(f"exit code 0\n{n}\n") and output.endswith("\n800\n")
