"""Agent CLI fixtures: the real binaries, installed once per machine, in real sandboxes.

The wheels come from the shared cache (kilod.agents.install.cache_root(), downloaded by
the first run on a machine), and the installed agents live in that cache too
(`<cache>/test-home/agents`, which every test daemon's data dir links to): no test
extracts 400 MB or builds a Python agent's venv again once a machine has them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from kilod.agents.catalog import package
from kilod.agents.install import cache_root, install
from tests.conftest import SANDBOX_IMAGE
from tests.kilod_testing import DaemonProcess, make_repo

AGENT_SCRIPTS = Path(__file__).resolve().parent / "scripts"


@pytest.fixture(scope="session")
def agents_home() -> Path:
    """A data dir holding the installed agents (each installed on first use, once per machine)."""
    return cache_root() / "test-home"


def installed(home: Path, name: str) -> None:
    # Python agents: a venv for the sandbox image's python3; pip in its container trusts the CA
    # this machine's proxy needs (the setting users behind one set: KILOD_CA_BUNDLE)
    bundle = os.environ.get("KILOD_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt"
    install(name, home, image=SANDBOX_IMAGE if package(name).kind == "python" else None,
            ca_bundle=Path(bundle) if Path(bundle).is_file() else None, say=lambda message: None)


@pytest.fixture
def agent_daemon(daemon_factory: Callable[..., DaemonProcess], agents_home: Path, sandbox_image: str
                 ) -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons whose data dir sees the installed agents; the forwarder uses the sandbox image."""

    def start(*agents: str, extra_env: dict[str, str] | None = None, instance: str | None = None,
              data_dir: Path | None = None) -> DaemonProcess:
        for name in agents:
            installed(agents_home, name)
        daemon = daemon_factory({"KILOD_SCRIPTS_DIR": str(AGENT_SCRIPTS), "KILOD_FORWARDER_IMAGE": sandbox_image,
                                 "KILOD_SANDBOX_IMAGE": SANDBOX_IMAGE, "KILOD_STEP_LIMIT": "12",
                                 **(extra_env or {})}, instance=instance, data_dir=data_dir)
        daemon.data_dir.mkdir(parents=True, exist_ok=True)
        link = daemon.data_dir / "agents"
        if not link.exists():
            os.symlink(agents_home / "agents", link)
        return daemon.start()

    yield start


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# agents\n"})


def processes(container: str) -> list[str]:
    """Command lines of every process in a container (read from /proc: the image needs no ps)."""
    client = docker.from_env()
    try:
        result = client.containers.get(container).exec_run(
            ["sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done"])
    finally:
        client.close()
    output = result.output
    assert isinstance(output, bytes)
    return [line for line in output.decode(errors="replace").splitlines() if line.strip()]


def run_in(container: str, command: str, *args: str, user: str = "") -> tuple[int, str]:
    """(exit code, output) of `sh -c command args…` in a container."""
    client = docker.from_env()
    try:
        result = client.containers.get(container).exec_run(["sh", "-c", command, "sh", *args], user=user)
    finally:
        client.close()
    output = result.output
    assert isinstance(output, bytes)
    return int(result.exit_code or 0), output.decode(errors="replace")


def wait_event(daemon: DaemonProcess, attempt_id: str, test: Callable[[dict[str, Any]], bool],
               what: str, timeout: float = 120.0) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((e for e in daemon.events(attempt_id) if test(e)), None)

    event: dict[str, Any] = daemon.wait_for(found, timeout, what)
    return event
