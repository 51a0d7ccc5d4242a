"""kill -9 at every step of a landing: the next start finishes it, and checkout, index and refs agree."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from tests.kilod_testing import DaemonProcess, git

from .test_review import run_card

STEPS = ["journaled", "branch", "checkout", "checked-out", "ref", "recorded"]


@pytest.mark.parametrize("step", STEPS)
def test_a_daemon_killed_mid_landing_is_repaired_at_the_next_start(
    daemon_factory: type[DaemonProcess], repo: Path, step: str
) -> None:
    first = daemon_factory({"KILOD_CRASH_AT": step}).start()
    attempt = run_card(first, repo, "scripted/bulk")
    tree = first.request("GET", f"/v1/attempts/{attempt['id']}/diff")["tree"]
    base = git(repo, "rev-parse", "main").strip()

    with pytest.raises((http.client.HTTPException, ConnectionError)):
        first.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"merge": True, "tree": tree})
    assert first.process is not None and first.process.wait(timeout=60) == -9

    second = daemon_factory(instance=first.instance, data_dir=first.data_dir).start()
    approved = second.wait_state(attempt["id"], "approved", timeout=300)
    commit = git(repo, "rev-parse", attempt["branch"]).strip()
    assert approved["landed_commit"] == commit
    assert git(repo, "rev-parse", f"{commit}^{{tree}}").strip() == tree
    assert git(repo, "rev-parse", f"{commit}^").strip() == base       # committed once, on the base
    assert git(repo, "rev-parse", "main").strip() == commit           # fast-forwarded
    assert not (repo / ".git" / "index.lock").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""   # files and index are main's
    assert (repo / "bulk" / "f20000").read_text() == "file 20000\n"
    assert (repo / "README.md").read_text().endswith("big change\n")
    repaired = [e["payload"]["message"] for e in second.events(attempt["id"])
                if e["kind"] == "log" and "stopped in the middle of landing" in e["payload"].get("message", "")]
    assert len(repaired) == 1, second.events(attempt["id"])[-5:]
    assert "repaired" in second.log()
    print(f"{step}: {repaired[0]}")
