"""Disk: `kilod ctl gc` removes discarded leftovers and idle containers (re-created on demand); doctor reports use."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.kilod_testing import DaemonProcess, git

ALLOW = '["pypi.org"]'


def kilod_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**daemon.env, "KILOD_SOCKET": str(daemon.socket)})


def names(client: docker.DockerClient, instance: str) -> set[str]:
    return {str(c.name) for c in client.containers.list(all=True, filters={"label": f"kilod.instance={instance}"})}


def test_gc_removes_idle_containers_and_discarded_leftovers(
        daemon_factory: Callable[..., DaemonProcess], proxy_image: str, repo: Path) -> None:
    daemon = daemon_factory({"KILOD_GC_AUTO": "false", "KILOD_PROXY_IMAGE": proxy_image}).start()
    card = daemon.request("POST", "/v1/cards", {"prompt": "gc", "repo": str(repo), "network": ["pypi.org"],
                                                "models": ["scripted/steady", "scripted/steady"]})
    kept, dropped = (daemon.wait_state(a["id"], "review") for a in card["attempts"])
    client = docker.from_env()
    assert {f"kilod-{kept['id']}", f"kilod-proxy-{kept['id']}"} <= names(client, daemon.instance)

    # recently active: the default idle time keeps everything
    quiet = json.loads(kilod_cli(daemon, "ctl", "gc", "--json").stdout)
    assert quiet["containers_removed"] == [] and quiet["worktrees_removed"] == []

    # a discarded attempt whose worktree and branch a crash left behind
    daemon.request("POST", f"/v1/attempts/{dropped['id']}/discard")
    git(repo, "branch", dropped["branch"])
    Path(dropped["worktree"]).mkdir(parents=True)
    (Path(dropped["worktree"]) / "left.txt").write_text("left behind\n")

    swept = kilod_cli(daemon, "ctl", "gc", "--idle", "0")
    assert swept.returncode == 0, swept.stderr
    assert f"{kept['id']}  container removed" in swept.stdout
    assert f"{dropped['id']}  worktree and branch removed" in swept.stdout
    assert not Path(dropped["worktree"]).exists()
    assert dropped["branch"] not in git(repo, "branch", "--list", dropped["branch"])
    gone = names(client, daemon.instance)
    assert f"kilod-{kept['id']}" not in gone and f"kilod-proxy-{kept['id']}" not in gone
    assert not client.networks.list(names=[f"kilod-net-{kept['id']}"])
    assert Path(kept["worktree"]).is_dir()  # the work itself stays for review

    # on demand, the container (and its egress) comes back
    daemon.request("POST", f"/v1/attempts/{kept['id']}/shell")
    assert {f"kilod-{kept['id']}", f"kilod-proxy-{kept['id']}"} <= names(client, daemon.instance)

    doctor = kilod_cli(daemon, "doctor", "--json")
    disk = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "disk used")
    assert "worktrees" in disk["detail"] and "caches" in disk["detail"] and "images" in disk["detail"]
    client.close()


def test_a_bad_idle_time_is_a_usage_error(daemon_factory: Callable[..., DaemonProcess]) -> None:
    daemon = daemon_factory({"KILOD_GC_AUTO": "false"}).start()
    bad = kilod_cli(daemon, "ctl", "gc", "--idle", "soon")
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
    with pytest.raises(Exception, match="400"):
        daemon.request("POST", "/v1/gc", {"idle_after": -1})
