"""A full disk pauses the attempt and resumes it once space is back: on a real small filesystem (a tmpfs the
test mounts as the data dir), with a real daemon, real Docker and a scripted agent that fills the disk."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.kilod_testing import ApiError, DaemonProcess

FLOOR_BYTES = 16 * 1024 * 1024


def start_on_small_disk(daemon_factory: type[DaemonProcess], small_disk: Path, tmp_path: Path) -> DaemonProcess:
    daemon = daemon_factory({"KILOD_MIN_FREE_BYTES": str(FLOOR_BYTES)}, data_dir=small_disk / "data")
    daemon.log_path = tmp_path / "daemon.log"  # the log must not live on the disk that fills
    return daemon.start()


def test_a_full_disk_pauses_the_attempt_and_space_coming_back_resumes_it(
        daemon_factory: type[DaemonProcess], small_disk: Path, repo: Path, tmp_path: Path) -> None:
    daemon = start_on_small_disk(daemon_factory, small_disk, tmp_path)
    assert (small_disk / "data" / ".kilod-reserve").stat().st_size > 0
    card = daemon.request("POST", "/v1/cards", {"prompt": "fill it", "repo": str(repo), "models": ["scripted/filler"]})
    attempt_id = card["attempts"][0]["id"]

    paused = daemon.wait_state(attempt_id, "paused", timeout=120)
    assert "disk is full" in paused["error"]
    worktree = Path(paused["worktree"])
    assert daemon.request("GET", "/v1/status")["disk"]["below_floor"] is True
    with pytest.raises(ApiError) as refused:  # no new work on a full disk: a 503 that says why
        daemon.request("POST", "/v1/cards", {"prompt": "more", "repo": str(repo), "models": ["scripted/hello"]})
    assert refused.value.status == 503 and "disk space" in refused.value.body["error"]["message"]

    time.sleep(5)  # paused for a while: no crash loop, no flood of log lines, still the same process
    assert daemon.process is not None and daemon.process.poll() is None
    assert daemon.attempt(attempt_id)["state"] == "paused"
    disk_lines = [line for line in daemon.log().splitlines() if "disk" in line.lower()]
    assert 1 <= len(disk_lines) <= 8, disk_lines

    # killed while paused, started again on the still full disk: it stays paused, and keeps what it held
    daemon.kill9()
    daemon.start()
    assert daemon.attempt(attempt_id)["state"] == "paused"
    assert daemon.request("GET", "/v1/status")["disk"]["below_floor"] is True
    # the disk's pause is not a person's: /resume is refused (it resumes by itself), and so is /pause
    with pytest.raises(ApiError) as resumed:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/resume", {"text": "go on"})
    assert resumed.value.status == 409 and "disk is full" in resumed.value.body["error"]["message"]
    with pytest.raises(ApiError) as repaused:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/pause")
    assert repaused.value.status == 409
    assert daemon.attempt(attempt_id)["state"] == "paused"

    (worktree / "fill.bin").unlink()  # space is back
    done = daemon.wait_state(attempt_id, "review", timeout=120)
    assert done["error"] is None
    assert (worktree / "runs.txt").read_text() == "ran\n"  # the tool call that filled the disk ran once
    assert (worktree / "after.txt").read_text() == "after the disk was full\n"
    events = daemon.events(attempt_id)
    moves = [(e["payload"]["from"], e["payload"]["to"]) for e in events if e["kind"] == "state"]
    assert ("running", "paused") in moves and ("paused", "running") in moves
    results = [e["payload"]["id"] for e in events if e["kind"] == "tool_result"]
    assert len(results) == len(set(results)) == 3  # every result recorded, none twice

    daemon.request("POST", "/v1/cards", {"prompt": "more", "repo": str(repo), "models": ["scripted/hello"]})
    daemon.stop()
    with sqlite3.connect(f"file:{small_disk / 'data' / 'kilod.db'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "Traceback" not in daemon.log()


def test_a_paused_attempt_can_be_cancelled_while_the_disk_is_still_full(
        daemon_factory: type[DaemonProcess], small_disk: Path, repo: Path, tmp_path: Path) -> None:
    daemon = start_on_small_disk(daemon_factory, small_disk, tmp_path)
    card = daemon.request("POST", "/v1/cards", {"prompt": "fill it", "repo": str(repo), "models": ["scripted/filler"]})
    attempt_id = card["attempts"][0]["id"]
    worktree = Path(daemon.wait_state(attempt_id, "paused", timeout=120)["worktree"])

    cancelled = daemon.request("POST", f"/v1/attempts/{attempt_id}/cancel")
    assert cancelled["state"] == "cancelled"
    (worktree / "fill.bin").unlink()
    time.sleep(2)  # space is back: a cancelled attempt stays cancelled, nothing runs on
    assert daemon.attempt(attempt_id)["state"] == "cancelled"
    assert not (worktree / "after.txt").exists()
    later = daemon.request("POST", "/v1/cards", {"prompt": "again", "repo": str(repo), "models": ["scripted/hello"]})
    daemon.wait_state(later["attempts"][0]["id"], "review")
    assert "Traceback" not in daemon.log()


def test_approving_on_a_full_disk_answers_503_moves_nothing_and_lands_once_space_is_back(
        daemon_factory: type[DaemonProcess], small_disk: Path, repo: Path, tmp_path: Path) -> None:
    daemon = start_on_small_disk(daemon_factory, small_disk, tmp_path)
    card = daemon.request("POST", "/v1/cards", {"prompt": "hello", "repo": str(repo), "models": ["scripted/hello"]})
    attempt_id = card["attempts"][0]["id"]
    daemon.wait_state(attempt_id, "review")
    tree = daemon.request("GET", f"/v1/attempts/{attempt_id}/diff")["tree"]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout

    filler = small_disk / "fill.bin"  # the landing journal (landings.db) is the first write an approve makes
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * (1024 * 1024))
    with pytest.raises(ApiError) as full:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/approve", {"merge": True, "tree": tree})
    assert full.value.status == 503, full.value.body
    assert "landing journal cannot be written" in full.value.body["error"]["message"]
    assert daemon.attempt(attempt_id)["state"] == "review"  # nothing moved
    assert subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout == head

    filler.unlink()
    landed = daemon.request("POST", f"/v1/attempts/{attempt_id}/approve", {"merge": True, "tree": tree})
    assert landed["attempt"]["state"] == "approved"
    assert "Traceback" not in daemon.log()
