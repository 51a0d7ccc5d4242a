"""Warm caches: a repository's second attempt finds what its first downloaded; another repository does not.

Real daemon, real volumes, PyPI through the egress proxy (the machine's CA set as
KILOD_EXTRA_CA_CERTS). `kilod cache list|clear` run as the real CLI against the daemon.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from kilod.environments.caches import CachePathError, cache_paths, image_family, plan
from tests.environments.conftest import trust
from tests.kilod_testing import DaemonProcess, make_repo

WHEEL = "/tmp/wheels/six-1.16.0-py2.py3-none-any.whl"
SETUP = [
    # what the caches held before this attempt did anything: a mark left in pip's cache, the wheel
    "if test -f /tmp/.cache/pip/mark; then echo marked; else echo unmarked; fi > /tmp/before",
    f"if test -f {WHEEL}; then echo hit; else echo miss; fi >> /tmp/before",
    "touch /tmp/.cache/pip/mark",
    # pip skips a file already in -d: the second attempt fetches only the index page
    "python3 -m pip download --no-deps --retries 1 -d /tmp/wheels six==1.16.0",
    "python3 -m pip install --no-deps --no-index --find-links /tmp/wheels --target /tmp/site six==1.16.0",
]
KILOD_TOML = ('network = ["pypi.org", "files.pythonhosted.org"]\n'
              'caches = ["/tmp/wheels"]\n'
              f"setup = {json.dumps(SETUP)}\n"
              "[[checks]]\nname = \"before\"\nrun = 'cat /tmp/before'\n"
              "[[checks]]\nname = \"installed\"\n"
              "run = 'PYTHONPATH=/tmp/site python3 -c \"import six; print(six.__version__)\"'\n")


def attempt_of(daemon: DaemonProcess, repo: Path) -> dict[str, Any]:
    trust(daemon, repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "cache", "repo": str(repo), "models": ["scripted/steady"]})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=300)
    checks = {e["payload"]["name"]: e["payload"] for e in daemon.events(attempt["id"]) if e["kind"] == "check"}
    assert checks["installed"]["status"] == "passed" and "1.16.0" in checks["installed"]["output_tail"], checks
    attempt["before"] = checks["before"]["output_tail"].split()
    return attempt


def kilod_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", "--socket", str(daemon.socket), *args],
                          capture_output=True, text=True, timeout=60)


def test_the_second_attempt_of_a_repository_finds_the_first_ones_downloads(
        env_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemon = env_daemon()
    repo = make_repo(tmp_path / "repo", {"README.md": "# cache\n", ".kilod.toml": KILOD_TOML})
    other = make_repo(tmp_path / "other", {"README.md": "# other\n", ".kilod.toml": KILOD_TOML})

    first = attempt_of(daemon, repo)
    assert first["before"] == ["unmarked", "miss"]
    second = attempt_of(daemon, repo)
    assert second["before"] == ["marked", "hit"]  # pip's cache and the repository's own path were both kept
    elsewhere = attempt_of(daemon, other)
    assert elsewhere["before"] == ["unmarked", "miss"]  # caches are per repository

    # the volumes are labelled, owned by the sandbox user, and listed by the CLI
    client = docker.from_env()
    volumes = client.volumes.list(filters={"label": [f"kilod.instance={daemon.instance}", "kilod.cache"]})
    repos = {v.attrs["Labels"]["kilod.repo"] for v in volumes}
    assert repos == {str(repo.resolve()), str(other.resolve())}
    listed = kilod_cli(daemon, "cache", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    caches = json.loads(listed.stdout)["caches"]
    assert {(c["repo"], c["tool"]) for c in caches} >= {(str(repo.resolve()), "pip"), (str(repo.resolve()), "path")}
    wheels = next(c for c in caches if c["repo"] == str(repo.resolve()) and c["path"] == "/tmp/wheels")
    assert wheels["size_bytes"] and wheels["size_bytes"] > 5000

    # clearing keeps what a container still mounts, and removes the rest once the attempts are discarded
    kept = json.loads(kilod_cli(daemon, "cache", "clear", "--repo", str(repo), "--json").stdout)
    assert kept["removed"] == [] and kept["in_use"]
    for attempt in (first, second):
        daemon.request("POST", f"/v1/attempts/{attempt['id']}/discard")
    cleared = kilod_cli(daemon, "cache", "clear", "--repo", str(repo))
    assert cleared.returncode == 0 and "removed" in cleared.stderr, cleared.stderr
    left = {v.attrs["Labels"]["kilod.repo"]
            for v in client.volumes.list(filters={"label": [f"kilod.instance={daemon.instance}", "kilod.cache"]})}
    assert left == {str(other.resolve())}
    client.close()


def test_cache_paths_are_absolute_and_never_shadow_the_workspace() -> None:
    assert cache_paths(["/tmp/wheels", "/tmp/wheels/", "/opt/cache"]) == ["/tmp/wheels", "/opt/cache"]
    for bad in ("relative/path", "/workspace/node_modules", "/tmp/../etc", "/", "/etc/ssl"):
        with pytest.raises(CachePathError):
            cache_paths([bad])


def test_volumes_are_per_repository_and_image_family() -> None:
    assert image_family("python:3.12-slim") == "python" and image_family("kilod/sandbox:latest") == "kilod/sandbox"
    assert image_family("localhost:5000/team/img:1@sha256:ab") == "localhost:5000/team/img"
    a = plan("i", "/r/a", "python:3.12", [])
    assert plan("i", "/r/a", "python:3.11", []).volumes == a.volumes  # same family: same caches
    assert plan("i", "/r/b", "python:3.12", []).volumes != a.volumes
    assert plan("i", "/r/a", "node:22", []).volumes != a.volumes
    assert a.env["PIP_CACHE_DIR"] == "/tmp/.cache/pip" and a.env["npm_config_cache"] == "/tmp/.npm"
    targets = {v.tool: v.target for v in a.volumes}
    assert targets["pip"] == a.env["PIP_CACHE_DIR"] and targets["go"] == a.env["GOMODCACHE"]
