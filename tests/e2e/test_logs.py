"""The daemon's log carries card and attempt ids as fields, one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.kilod_testing import DaemonProcess


def test_state_changes_are_logged_with_card_attempt_and_model_fields(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "log me", "repo": str(repo), "models": ["scripted/hello"]})
    attempt_id = card["attempts"][0]["id"]
    daemon.wait_state(attempt_id, "review")
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.strip()]  # every line is JSON
    mine = [entry for entry in lines if entry.get("attempt_id") == attempt_id]
    assert [entry["message"] for entry in mine] == [
        f"attempt {attempt_id}: queued → starting",
        f"attempt {attempt_id}: starting → running",
        f"attempt {attempt_id}: running → review",
    ]
    assert all(entry["card_id"] == card["id"] and entry["model"] == "scripted/hello" for entry in mine)
    assert all({"time", "level", "logger"} <= set(entry) for entry in lines)
