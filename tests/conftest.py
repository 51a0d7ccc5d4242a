"""Fixtures: real git repositories, a real daemon, real Docker (labelled, removed by label)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kilod_testing import (
    REPO_ROOT,
    DaemonProcess,
    make_repo,
    new_instance,
    remove_labelled,
    rmtree,
    short_tmpdir,
)

SANDBOX_IMAGE = os.environ.get("KILOD_SANDBOX_IMAGE", "kilod/sandbox")
SMALL_DISK_MIB = 64


def docker_ready() -> str | None:
    """None when Docker and the sandbox image are usable, else why not."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get(SANDBOX_IMAGE)
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The sandbox image, built if missing. In CI a missing Docker fails: it is never skipped there."""
    problem = docker_ready()
    if problem:
        build = subprocess.run(["bash", str(REPO_ROOT / "images" / "build.sh"), "sandbox"],
                               capture_output=True, text=True)
        problem = docker_ready()
        if problem:
            message = f"Docker or the sandbox image is not usable: {problem}\n{build.stderr[-2000:]}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    return SANDBOX_IMAGE


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def daemon_factory(sandbox_image: str) -> Iterator[type[DaemonProcess]]:
    """Start daemons (`factory(extra_env)`) that are stopped and cleaned up after the test."""
    started: list[DaemonProcess] = []
    dirs: list[Path] = []

    class Factory(DaemonProcess):
        def __init__(self, extra_env: dict[str, str] | None = None, instance: str | None = None,
                     data_dir: Path | None = None) -> None:
            if data_dir is None:
                data_dir = short_tmpdir()
                dirs.append(data_dir)
            super().__init__(data_dir, instance or new_instance(), extra_env)
            started.append(self)

    yield Factory
    for daemon in started:
        daemon.stop()
    for instance in {d.instance for d in started}:
        remove_labelled(instance)
    for path in dirs:
        rmtree(path)


@pytest.fixture
def daemon(daemon_factory: type[DaemonProcess]) -> DaemonProcess:
    return daemon_factory().start()


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real small filesystem (a tmpfs of SMALL_DISK_MIB) to fill: what a full disk does to kilod's files."""
    if os.getuid() != 0:
        message = "mounting a small tmpfs needs root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    mount_point = short_tmpdir("kd-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_MIB}m,mode=0755", "kilod-test-disk",
                    str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()
