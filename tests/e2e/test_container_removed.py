"""A container removed under a running attempt (`docker rm -f`) fails the attempt with "container removed",
never a silent Review (real daemon, real Docker)."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import docker.errors

from tests.kilod_testing import DaemonProcess


def remove(name: str) -> None:
    """`docker rm -f`, again if the engine's storage driver trips over the dying processes' files."""
    client = docker.from_env()
    for _ in range(10):
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            time.sleep(0.5)  # e.g. fuse-overlayfs: "failed to remove root filesystem: directory not empty"
            continue
        return
    raise AssertionError(f"could not remove {name}")


def test_docker_rm_mid_run_fails_the_attempt_saying_the_container_was_removed(daemon: DaemonProcess,
                                                                              repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "sleep", "repo": str(repo), "models": ["scripted/sleeper"]})
    attempt_id = card["attempts"][0]["id"]
    running = daemon.wait_for(lambda: (a := daemon.attempt(attempt_id))["state"] == "running"
                              and (Path(a["worktree"]) / "started.txt").exists() and a, what="the long call to start")
    remove(f"kilod-{attempt_id}")

    failed = daemon.wait_state(attempt_id, "failed", "review", timeout=120)
    assert failed["state"] == "failed", failed
    assert "container removed" in failed["error"]
    assert not (Path(running["worktree"]) / "later.txt").exists()  # nothing ran after the removal
    killed = [e["payload"] for e in daemon.events(attempt_id) if e["kind"] == "tool_result"
              and e["payload"]["name"] == "shell"]
    assert not any(r["ok"] for r in killed)  # the killed call is never reported as done
    assert "Traceback" not in daemon.log()
