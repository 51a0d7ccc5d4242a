"""Fixtures for environment tests: kilod's proxy image, a sandbox image with pip, a daemon set up for both.

The machine's outbound TLS is inspected by a proxy whose CA is in the host bundle, so
the daemon gets `KILOD_EXTRA_CA_CERTS` exactly as a corporate user would set it.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.kilod_testing import REPO_ROOT, DaemonProcess

HOST_CA_BUNDLE = Path(os.environ.get("KILOD_TEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
PROXY_IMAGE = os.environ.get("KILOD_PROXY_IMAGE", "kilod/proxy")
PIP_IMAGE = "kilod-test/sandbox-pip"
# a test image kept between runs (it takes a minute to build); `docker image rm` it by this label
TEST_IMAGE_LABEL = "kilod.test-image"


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def proxy_image(sandbox_image: str) -> str:
    client = docker.from_env()
    try:
        client.images.get(PROXY_IMAGE)
    except docker.errors.ImageNotFound:
        build = subprocess.run(["bash", str(REPO_ROOT / "images" / "build.sh"), "proxy"], capture_output=True,
                               text=True)
        if build.returncode != 0:
            _fail_or_skip(f"cannot build {PROXY_IMAGE}: {build.stderr[-2000:]}")
    finally:
        client.close()
    return PROXY_IMAGE


def ensure_pip_image(sandbox_image: str) -> str:
    """kilod's sandbox plus Debian's pip (Debian's python3 has no ensurepip), built once per machine."""
    dockerfile = (f"FROM {sandbox_image}\nUSER root\n"
                  "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
                  "python3-pip && rm -rf /var/lib/apt/lists/*\nUSER agent\n")
    client = docker.from_env()
    try:
        base_id = str(client.images.get(sandbox_image).id)
        tag = f"{PIP_IMAGE}:{base_id.split(':')[-1][:12]}"
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True,
                                labels={TEST_IMAGE_LABEL: "pip"})
    finally:
        client.close()
    return tag


@pytest.fixture(scope="session")
def pip_image(sandbox_image: str) -> str:
    try:
        return ensure_pip_image(sandbox_image)
    except docker.errors.BuildError as exc:
        _fail_or_skip(f"cannot build {PIP_IMAGE}: {exc}")
        raise


@pytest.fixture
def ca_bundle() -> Path:
    if not HOST_CA_BUNDLE.is_file():
        _fail_or_skip(f"no CA bundle at {HOST_CA_BUNDLE} (set KILOD_TEST_CA_BUNDLE)")
    return HOST_CA_BUNDLE


@pytest.fixture
def env_daemon(daemon_factory: Callable[..., DaemonProcess], proxy_image: str, pip_image: str,
               ca_bundle: Path) -> Callable[..., DaemonProcess]:
    """A started daemon whose sandboxes have pip, kilod's proxy image and the machine's CA bundle."""

    def start(**extra: str) -> DaemonProcess:
        env = {"KILOD_SANDBOX_IMAGE": pip_image, "KILOD_PROXY_IMAGE": proxy_image,
               "KILOD_EXTRA_CA_CERTS": str(ca_bundle), **extra}
        return daemon_factory(env).start()

    return start


def trust(daemon: DaemonProcess, repo: Path) -> None:
    """What a person does after reading the repository's sandbox files: `kilod ctl trust REPO`."""
    from urllib.parse import quote

    shown = daemon.request("GET", f"/v1/repos/trust?repo={quote(str(repo), safe='')}")
    daemon.request("POST", "/v1/repos/trust", {"repo": str(repo), "sha256": shown["sha256"]})
