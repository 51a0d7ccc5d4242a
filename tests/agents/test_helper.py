"""Helper containers (a Python agent's venv build, the python3 probe) through docker-py, on the real engine:
their stderr line by line, their labels, and no container left after success, failure, timeout or Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from kilod.agents.helper import DockerContainers
from kilod.agents.helperjob import ChildContainers, HelperError, Job
from tests.conftest import SANDBOX_IMAGE


@pytest.fixture
def instance() -> Iterator[str]:
    name = f"kilod-test-helper-{uuid.uuid4().hex[:8]}"
    yield name
    client = docker.from_env()
    try:  # whatever a failed test left: removed by its label
        for container in client.containers.list(all=True, filters={"label": f"kilod.instance={name}"}):
            container.remove(force=True)
    finally:
        client.close()


def left(instance: str) -> list[dict[str, str]]:
    client = docker.from_env()
    try:
        found = client.containers.list(all=True, filters={"label": f"kilod.instance={instance}"})
        return [dict(c.labels) for c in found]
    finally:
        client.close()


@pytest.mark.parametrize("containers", [DockerContainers, ChildContainers])
def test_a_helper_streams_stderr_returns_stdout_and_code_and_is_removed(instance: str, containers: type) -> None:
    lines: list[str] = []
    script = "echo one >&2; echo two >&2; id -u; echo $KILOD_X; ls /mnt; exit 7"
    done = containers(instance).run(Job(SANDBOX_IMAGE, script, user="4321:4321", env={"KILOD_X": "x-value"},
                                        mounts=((os.path.dirname(__file__), "/mnt", True),)), lines.append)
    assert done.code == 7 and not done.timed_out
    assert lines == ["one", "two"]
    assert done.stdout.splitlines()[:2] == ["4321", "x-value"] and "test_helper.py" in done.stdout
    assert left(instance) == []


def test_a_helper_past_its_deadline_is_killed_and_removed(instance: str) -> None:
    done = DockerContainers(instance).run(Job(SANDBOX_IMAGE, "echo started >&2; sleep 120", timeout=2), print)
    assert done.timed_out and done.code != 0
    assert left(instance) == []


def test_a_missing_image_is_a_helper_error(instance: str) -> None:
    for containers in (DockerContainers(instance), ChildContainers(instance)):
        with pytest.raises(HelperError, match="image kilod-test/absent:none is not present"):
            containers.run(Job("kilod-test/absent:none", "true"), print)
        with pytest.raises(HelperError, match="is not present"):
            containers.image_id("kilod-test/absent:none")


def test_ctrl_c_of_the_cli_removes_its_helper_container(instance: str) -> None:
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from kilod.agents.helperjob import ChildContainers, Job\n"
            f"ChildContainers({instance!r}).run(Job({SANDBOX_IMAGE!r}, 'echo started >&2; sleep 120'),"
            " lambda line: print(line, flush=True))\n")
    # its own process group, as a terminal's foreground job: Ctrl-C reaches the CLI and its child
    cli = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert cli.stdout is not None and cli.stdout.readline().strip() == "started"
        running = left(instance)
        assert len(running) == 1 and running[0]["kilod.agents-install"] == "1"
        os.killpg(cli.pid, signal.SIGINT)
        cli.wait(timeout=60)
        for _ in range(100):   # the child removes it on its way out, after the CLI itself has gone
            if not left(instance):
                break
            time.sleep(0.2)
        assert left(instance) == []
    finally:
        if cli.poll() is None:
            cli.kill()
