"""Review is a frozen state: nothing the agent left running can change the work after its diff was shown."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from tests.kilod_testing import ApiError, DaemonProcess, git

from .test_review import run_card


def test_a_late_write_after_review_does_not_land(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/lingerer")
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
    readme = Path(attempt["worktree"]) / "README.md"
    assert readme.read_text().endswith("reviewed line\n")

    client = docker.from_env()
    try:
        container = client.containers.get(f"kilod-{attempt['id']}")
        assert container.status == "exited"  # stopped on entering review, kept for a follow-up or shell
    finally:
        client.close()
    time.sleep(7)  # the agent's background job would have written by now
    assert "EVIL" not in readme.read_text()

    result = daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"merge": True, "tree": diff["tree"]})
    assert git(repo, "rev-parse", f"{result['commit']}^{{tree}}").strip() == diff["tree"]
    landed = git(repo, "show", "main:README.md")
    assert landed.endswith("reviewed line\n") and "EVIL" not in landed


def test_approve_names_the_reviewed_tree_and_a_later_change_needs_a_fresh_look(
    daemon: DaemonProcess, repo: Path
) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    shown = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")["tree"]
    with pytest.raises(ApiError) as caught:
        daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"merge": True})
    assert caught.value.status == 400 and "tree" in caught.value.body["error"]["message"]

    # a person's shell in the container counts as a change
    shell = daemon.request("POST", f"/v1/attempts/{attempt['id']}/shell")
    client = docker.from_env()
    try:
        container = client.containers.get(shell["container"])
        assert container.status == "running"
        container.exec_run(["sh", "-c", "echo by hand > manual.txt"], user=shell["user"], workdir="/workspace")
    finally:
        client.close()
    with pytest.raises(ApiError) as caught:
        daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"tree": shown})
    assert caught.value.status == 409
    fresh = caught.value.body["error"]["tree"]
    assert fresh != shown and daemon.attempt(attempt["id"])["state"] == "review"
    assert daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")["tree"] == fresh

    result = daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"tree": fresh})
    assert "manual.txt" in git(repo, "ls-tree", "--name-only", result["commit"])
