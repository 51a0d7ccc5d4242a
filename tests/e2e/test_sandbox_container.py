"""The attempt's container: mounts, labels and hardening as docs/ARCHITECTURE.md says, checked from outside and in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from tests.kilod_testing import DaemonProcess, git


@pytest.fixture
def probed(daemon: DaemonProcess, repo: Path) -> tuple[DaemonProcess, dict[str, Any], dict[str, Any], Container]:
    card = daemon.request("POST", "/v1/cards", {"prompt": "probe", "repo": str(repo), "models": ["scripted/probe"]})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review")
    # Review stops the container (frozen review); a person's shell starts it again, as here
    daemon.request("POST", f"/v1/attempts/{attempt['id']}/shell")
    container = docker.from_env().containers.get(f"kilod-{attempt['id']}")
    return daemon, card, attempt, container


def expected_user() -> str:
    uid = os.getuid()
    return "1000:1000" if uid == 0 else f"{uid}:{os.getgid()}"


def test_container_has_the_labels_mounts_and_every_hardening_flag(probed: Any, repo: Path) -> None:
    daemon, card, attempt, container = probed
    attrs = container.attrs
    assert container.name == f"kilod-{attempt['id']}"
    labels = attrs["Config"]["Labels"]
    assert labels["kilod.attempt"] == attempt["id"]
    assert labels["kilod.card"] == card["id"]
    assert labels["kilod.instance"] == daemon.instance

    host = attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Init"] is True
    assert host["Privileged"] is False
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == 2 * 1024**3
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 512
    assert attrs["Config"]["User"] == expected_user()
    assert attrs["Config"]["User"].split(":")[0] != "0"

    worktree = attempt["worktree"]
    git_dir = str((repo / ".git").resolve())
    mounts = {m["Destination"]: m for m in attrs["Mounts"] if m["Type"] == "bind"}
    assert set(mounts) == {"/workspace", "/workspace/.git", git_dir}
    # the rest are the repository's dependency cache volumes (kilod.environments.caches)
    volumes = [m for m in attrs["Mounts"] if m["Type"] != "bind"]
    assert volumes and all(m["Type"] == "volume" and m["Name"].startswith("kilod-cache-") for m in volumes)
    assert mounts["/workspace"]["Source"] == worktree and mounts["/workspace"]["RW"] is True
    assert mounts["/workspace/.git"]["Source"] == f"{worktree}/.git" and mounts["/workspace/.git"]["RW"] is False
    assert mounts[git_dir]["Source"] == git_dir and mounts[git_dir]["RW"] is False
    assert not any("docker.sock" in m["Source"] for m in attrs["Mounts"])


def run(container: Container, command: str) -> tuple[int, str]:
    result = container.exec_run(["sh", "-c", command], workdir="/workspace")
    return result.exit_code, result.output.decode()


def test_inside_the_sandbox_no_root_no_caps_no_network_and_git_is_read_only(probed: Any, repo: Path) -> None:
    _, _, attempt, container = probed
    # what the agent's own shell tool saw
    probe = (Path(attempt["worktree"]) / "probe.txt").read_text()
    assert "uid=0" not in probe and "uid=" in probe
    assert "CapEff:\t0000000000000000" in probe
    assert f"## kilod/{attempt['id']}" in probe

    code, out = run(container, "id -u")
    assert code == 0 and out.strip() != "0"
    code, out = run(container, "grep CapEff /proc/self/status")
    assert out.split() == ["CapEff:", "0000000000000000"]
    code, out = run(container, "ls /sys/class/net")
    assert out.split() == ["lo"]
    code, out = run(container, "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)\"")
    assert code != 0 and "unreachable" in out.lower()

    git_dir = (repo / ".git").resolve()
    code, out = run(container, f"touch {git_dir}/planted")
    assert code != 0 and "Read-only file system" in out
    code, out = run(container, "git branch planted-branch")
    assert code != 0
    code, out = run(container, "git add -A && git commit -qm planted")
    assert code != 0
    code, out = run(container, "rm -f /workspace/.git")
    assert code != 0
    code, out = run(container, "git status --short --branch")
    assert code == 0 and f"## kilod/{attempt['id']}" in out and "?? probe.txt" in out

    assert not (git_dir / "planted").exists()
    assert "planted-branch" not in git(repo, "branch", "--list")
    assert git(repo, "rev-parse", attempt["branch"]) == git(repo, "rev-parse", "main")
