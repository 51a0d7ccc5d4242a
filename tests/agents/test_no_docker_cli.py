"""A Python agent installs and runs with no `docker` binary anywhere on PATH: what the daemon's own image has.

The helper containers (the venv build, the python3 probe) go through docker-py: the daemon
calls it directly, `kilod agents install` in a child process (the CLI never imports it).
Real engine, real pip (from the machine's wheelhouse), the real mini-swe-agent, a scripted model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from kilod.agents.catalog import package
from tests.agents.conftest import AGENT_SCRIPTS
from tests.agents.test_venvs import CA, OTHER_PYTHON, install_events, repo_with, run_card
from tests.conftest import SANDBOX_IMAGE
from tests.kilod_testing import DaemonProcess

pytestmark = pytest.mark.timeout(900)
AGENT = "mini-swe-agent"


def path_without_docker(folder: Path) -> str:
    """A PATH with every program of this one but `docker`: links to them in one folder."""
    folder.mkdir()
    for entry in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(entry):
            continue
        for program in os.scandir(entry):
            if not program.name.startswith("docker") and not (folder / program.name).exists():
                os.symlink(program.path, folder / program.name)
    assert shutil.which("docker", path=str(folder)) is None and shutil.which("git", path=str(folder))
    return str(folder)


def helper_containers(instance: str) -> list[str]:
    client = docker.from_env()
    try:
        return [str(c.name) for c in client.containers.list(
            all=True, filters={"label": ["kilod.agents-install=1", f"kilod.instance={instance}"]})]
    finally:
        client.close()


def test_a_python_agent_installs_builds_and_runs_with_no_docker_binary(
        daemon_factory: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    path = path_without_docker(tmp_path / "bin")
    daemon = daemon_factory({"PATH": path, "KILOD_SCRIPTS_DIR": str(AGENT_SCRIPTS), "KILOD_STEP_LIMIT": "12",
                             "KILOD_FORWARDER_IMAGE": SANDBOX_IMAGE, "KILOD_SANDBOX_IMAGE": SANDBOX_IMAGE,
                             "KILOD_CA_BUNDLE": CA})

    # `kilod agents install`: the venv built in a helper container, pip's lines shown as it runs
    installed = subprocess.run(
        [sys.executable, "-m", "kilod_cli.main", "agents", "install", AGENT, "--image", SANDBOX_IMAGE,
         "--ca-bundle", CA], capture_output=True, text=True, timeout=800,
        env={**os.environ, "PATH": path, "KILOD_DATA_DIR": str(daemon.data_dir), "KILOD_INSTANCE": daemon.instance,
             "KILOD_CONFIG": str(daemon.data_dir / "none.toml")})
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert "installing from the wheelhouse" in installed.stderr and "Successfully installed" in installed.stderr
    venv = daemon.data_dir / "agents" / AGENT / package(AGENT).version
    assert (venv / package(AGENT).entrypoint).is_file()
    assert helper_containers(daemon.instance) == []   # removed once done

    # the daemon (same PATH) runs it in the sandbox image, and builds a venv for another python3 itself
    daemon.start()
    same = run_card(daemon, repo_with(tmp_path / "same", f"FROM {SANDBOX_IMAGE}\n"), "review")
    assert Path(same["worktree"], "mini.txt").read_text() == "hello from mini\n"
    other = run_card(daemon, repo_with(tmp_path / "other", OTHER_PYTHON), "review")
    assert Path(other["worktree"], "mini.txt").read_text() == "hello from mini\n"
    shown = "\n".join(install_events(daemon, other["id"]))
    assert "installing agent mini-swe-agent" in shown and "/usr/local/bin/python3.11" in shown, shown
    assert "Successfully installed" in shown, shown   # pip's own lines reached the attempt's events
    assert helper_containers(daemon.instance) == []
