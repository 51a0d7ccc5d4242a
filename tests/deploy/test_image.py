"""The daemon's image: it builds, `kilod --version` runs in it, and it drives the host's Docker.

Everything created here (images, containers, sandboxes) is labelled with this run's id
and removed by that label. The first build takes minutes (litellm from PyPI); the layer
order keeps rebuilds after a source edit to seconds.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.tools import REPO_ROOT
from tests.kilod_testing import DaemonProcess, make_repo, new_instance, remove_labelled, short_tmpdir

BUILD_TIMEOUT = 1800
# the module's first test builds the image (minutes on a cold cache)
pytestmark = [pytest.mark.docker, pytest.mark.timeout(BUILD_TIMEOUT + 300)]
IMAGE_UID = 1000
# CA certificates this machine added for itself (Debian's place for them): a build
# behind a TLS-inspecting proxy needs them for pip, and passes them as a build arg.
LOCAL_CAS = "/usr/local/share/ca-certificates/*.crt"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                             f"\n{done.stderr[-3000:]}")
    return done


def extra_ca_certs() -> str:
    return "".join(Path(path).read_text() for path in sorted(glob.glob(LOCAL_CAS)))


class Built:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.label = f"kilod.test={run_id}"
        self.tag = f"kilod/daemon:test-{run_id}"
        self.build_seconds = 0.0

    def build(self, tag: str, *build_args: str) -> float:
        args = ["build", "--label", self.label, "-t", tag, "-f", str(REPO_ROOT / "Dockerfile")]
        ca = extra_ca_certs()
        if ca:
            args += ["--build-arg", f"EXTRA_CA_CERTS={ca}"]
        for arg in build_args:
            args += ["--build-arg", arg]
        started = time.monotonic()
        docker(*args, str(REPO_ROOT), timeout=BUILD_TIMEOUT)
        return time.monotonic() - started

    def remove_everything(self) -> None:
        containers = docker("ps", "-aq", "--filter", f"label={self.label}", check=False).stdout.split()
        if containers:
            docker("rm", "-f", *containers, check=False)
        images = docker("image", "ls", "-q", "--filter", f"label={self.label}", check=False).stdout.split()
        if images:
            docker("rmi", "-f", *dict.fromkeys(images), check=False)


@pytest.fixture(scope="module")
def image(sandbox_image: str) -> Iterator[Built]:
    """The top-level Dockerfile built as a labelled test image (the base image is there:
    the sandbox_image fixture built or bootstrapped debian:bookworm-slim)."""
    if shutil.which("docker") is None:
        message = "the docker CLI is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    built = Built(new_instance())
    try:
        built.build_seconds = built.build(built.tag)
        yield built
    finally:
        built.remove_everything()


def test_the_image_runs_kilod_version(image: Built) -> None:
    done = docker("run", "--rm", "--label", image.label, image.tag, "--version")
    assert done.stdout.strip() == "kilod 0.1.0"
    config = json.loads(docker("image", "inspect", image.tag).stdout)[0]["Config"]
    assert config["Entrypoint"][-2:] == ["--", "kilod"] and config["Cmd"] == ["serve"]
    assert config["User"] == "kilod"
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_the_daemon_user_is_not_root_and_in_a_docker_group_of_the_build_args_gid(image: Built) -> None:
    ids = docker("run", "--rm", "--label", image.label, "--entrypoint", "id", image.tag).stdout
    assert f"uid={IMAGE_UID}(kilod)" in ids and "999(docker)" in ids
    other = f"kilod/daemon:test-{image.run_id}-gid"
    image.build(other, "DOCKER_GID=4242")
    ids = docker("run", "--rm", "--label", image.label, "--entrypoint", "id", other).stdout
    assert "4242(docker)" in ids
    # the gid only changes the user's layer: base, apt, pyproject.toml and the dependencies come from the cache
    first, second = (json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", tag).stdout)
                     for tag in (image.tag, other))
    assert len(first) == len(second) >= 5
    assert first[:4] == second[:4] and first[-1] != second[-1]


def test_the_image_drives_the_hosts_docker_with_the_data_dir_at_the_same_path(image: Built) -> None:
    """`docker run -v /var/run/docker.sock:... -v $DATA:$DATA -e KILOD_DATA_DIR=$DATA`, as the
    README says: healthy, and a scripted card runs in a sandbox the host's engine starts."""
    data = short_tmpdir("kdi-")
    instance = new_instance()
    socket_gid = os.stat("/var/run/docker.sock").st_gid
    user_args: list[str] = []
    repo = make_repo(data / "repo")  # cards name repositories at paths the daemon and the engine share
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", f"{IMAGE_UID}:{IMAGE_UID}", str(data)], check=True)
    else:
        user_args = ["--user", f"{os.getuid()}:{os.getgid()}", "-e", f"HOME={data}"]
    name = f"kilod-image-{instance}"
    try:
        docker("run", "-d", "--name", name, "--label", image.label,
               "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{data}:{data}",
               "-e", f"KILOD_DATA_DIR={data}", "-e", f"KILOD_INSTANCE={instance}",
               "--group-add", str(socket_gid), "--health-interval", "1s", "--health-start-period", "1s",
               *user_args, image.tag)
        deadline = time.monotonic() + 90
        health = ""
        while time.monotonic() < deadline and health != "healthy":
            state = json.loads(docker("inspect", name).stdout)[0]["State"]
            assert state["Running"], docker("logs", name, check=False).stderr
            health = state.get("Health", {}).get("Status", "")
            time.sleep(0.5)
        assert health == "healthy", docker("logs", name, check=False).stderr
        daemon = DaemonProcess(data, instance)  # a client of the socket in the shared data dir
        card = daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo), "models": ["scripted/hello"]})
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=120)
        assert attempt["state"] == "review"
        # written inside the sandbox at /workspace: the host's engine mounted the worktree by its path
        assert (Path(attempt["worktree"]) / "HELLO.md").read_text().startswith("# Hello from kilod")
        logs = docker("logs", name).stderr.splitlines()
        assert logs and all(json.loads(line)["level"] for line in logs), logs[:5]
    finally:
        docker("rm", "-f", name, check=False)
        remove_labelled(instance)
        shutil.rmtree(data, ignore_errors=True)
