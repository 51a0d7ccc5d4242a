"""A Python agent in a repository's own image: its venv is keyed by the image's python3, not by the image's name.

Real images built from the repositories' Dockerfiles (FROM the sandbox image, so no
registry is needed), the real mini-swe-agent, a scripted model through the gateway.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kilod.agents.catalog import package
from kilod.agents.venvs import for_image, probe
from tests.conftest import SANDBOX_IMAGE
from tests.environments.conftest import trust
from tests.kilod_testing import DaemonProcess, make_repo

# The first run on a machine builds the agent's venv for the sandbox image (minutes)
pytestmark = pytest.mark.timeout(900)

AGENT = "mini-swe-agent"
CA = "/etc/ssl/certs/ca-certificates.crt"   # pip's downloads go through this machine's TLS-inspecting proxy
SAME_PYTHON = f"FROM {SANDBOX_IMAGE}\nLABEL kilod.test=same-python\nRUN echo repo > /tmp/marker\n"
# the same Debian python3, but a copy at another path: a venv made by one cannot run with the other
OTHER_PYTHON = (f"FROM {SANDBOX_IMAGE}\nUSER root\nRUN cp /usr/bin/python3.11 /usr/local/bin/python3.11 "
                "&& ln -s python3.11 /usr/local/bin/python3\nUSER agent\n")
NO_PYTHON = "FROM debian:bookworm-slim\nRUN echo no python here > /etc/marker\n"


def repo_with(path: Path, dockerfile: str) -> Path:
    return make_repo(path, {"README.md": "# venvs\n", ".kilod.toml": 'dockerfile = "env/Dockerfile"\n',
                            "env/Dockerfile": dockerfile})


def run_card(daemon: DaemonProcess, repo: Path, *states: str) -> dict[str, Any]:
    trust(daemon, repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "create mini.txt", "repo": str(repo),
                                                "agents": [AGENT], "models": ["scripted/mini_edit"]})
    return daemon.wait_state(card["attempts"][0]["id"], *states, timeout=600)


def install_events(daemon: DaemonProcess, attempt_id: str) -> list[str]:
    return [str(e["payload"].get("message", "")) for e in daemon.events(attempt_id)
            if e["payload"].get("step") == "install"]


def test_a_python_agent_runs_in_repository_images_sharing_or_building_a_venv_per_interpreter(
        agent_daemon: Callable[..., DaemonProcess], agents_home: Path, tmp_path: Path) -> None:
    daemon = agent_daemon(AGENT, extra_env={"KILOD_CA_BUNDLE": CA})
    home = daemon.data_dir

    # the same python3 as the sandbox image: the venv `kilod agents install` made is used as it is
    same = run_card(daemon, repo_with(tmp_path / "same", SAME_PYTHON), "review")
    assert Path(same["worktree"], "mini.txt").read_text() == "hello from mini\n"
    used = install_events(daemon, same["id"])
    assert any(m.startswith(f"using {AGENT} ") for m in used), used
    assert not any("installing agent" in m for m in used), used

    # another python3: a venv for it is built as part of the pipeline, its progress in the events
    other_repo = repo_with(tmp_path / "other", OTHER_PYTHON)
    other = run_card(daemon, other_repo, "review")
    assert Path(other["worktree"], "mini.txt").read_text() == "hello from mini\n"
    built = install_events(daemon, other["id"])
    shown = "\n".join(built)
    assert "installing agent mini-swe-agent" in shown and "/usr/local/bin/python3.11" in shown, shown
    assert any(m.startswith(f"installed {AGENT} ") for m in built), shown
    try:
        image = _image_of(other["id"])
        interpreter = probe(home, image)
        assert interpreter is not None and interpreter.path == "/usr/local/bin/python3.11"
        venv = for_image(home, AGENT, image, str(other_repo))
        # built by the repository's own image: that repository's alone, never shared with others
        assert venv is not None and venv.interpreter == "/usr/local/bin/python3.11"
        assert Path(venv.path).name.startswith(interpreter.key + "-")
        assert for_image(home, AGENT, image, str(tmp_path / "someone-else")) is None
    finally:
        _remove_test_venvs(agents_home, str(other_repo))


def test_an_image_without_python3_fails_the_attempt_saying_so(
        agent_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemon = agent_daemon(AGENT)
    failed = run_card(daemon, repo_with(tmp_path / "bare", NO_PYTHON), "failed")
    assert "has no python3: mini-swe-agent cannot run in it" in failed["error"], failed["error"]
    assert "binary agent: claude-code, codex" in failed["error"]


def _image_of(attempt_id: str) -> str:
    import docker

    client = docker.from_env()
    try:
        return str(client.containers.get(f"kilod-{attempt_id}").attrs["Image"])
    finally:
        client.close()


def _remove_test_venvs(agents_home: Path, repo: str) -> None:
    """The venvs this test's repository images made (keyed by that repository): gone with it."""
    import hashlib

    suffix = "-" + hashlib.sha256(repo.encode()).hexdigest()[:12]
    for folder in (agents_home / "agents" / package(AGENT).name).glob("*.venvs/*"):
        if folder.name.endswith(suffix):
            shutil.rmtree(folder, ignore_errors=True)
