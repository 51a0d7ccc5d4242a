"""`kilod doctor`: is this machine ready to run kilod? One line per check, and what to do.

Talks to the Docker engine over its API socket directly (http.client), so it works
without the docker CLI and without importing the docker SDK.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlparse

from kilod.paths import config_file, data_dir
from kilod_cli.client import Client, connect_unix
from kilod_cli.disk import disk_line

MIN_GIT = (2, 25)
# the daemon's KILOD_MIN_FREE_BYTES default: below it new attempts are refused
DEFAULT_MIN_FREE_BYTES = 256 * 1024**2
# below this, worktrees and images soon fill the disk: worth a warning
COMFORTABLE_FREE_BYTES = 2 * 1024**3
DEFAULT_SANDBOX_IMAGE = "kilod/sandbox"
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_TIMEOUT_SECONDS = 10.0

Status = Literal["ok", "warn", "fail"]
LABELS: dict[Status, str] = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


class DockerUnreachable(Exception):
    pass


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is a unix socket (the Docker engine's API socket)."""

    def __init__(self, socket_path: Path, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = connect_unix(self.socket_path, self.timeout)


class DockerApi:
    """The few Docker Engine API calls doctor needs, over `$DOCKER_HOST` or the default socket."""

    def __init__(self, host: str | None) -> None:
        self.host = host or f"unix://{DEFAULT_DOCKER_SOCKET}"

    def _connection(self) -> http.client.HTTPConnection:
        url = urlparse(self.host)
        if url.scheme == "unix":
            return UnixHTTPConnection(Path(url.path), DOCKER_TIMEOUT_SECONDS)
        if url.scheme == "tcp" and not os.environ.get("DOCKER_TLS_VERIFY"):
            return http.client.HTTPConnection(url.hostname or "localhost", url.port or 2375,
                                              timeout=DOCKER_TIMEOUT_SECONDS)
        raise DockerUnreachable(f"DOCKER_HOST={self.host} is not supported here (only unix:// and plain tcp://)")

    def get(self, path: str) -> tuple[int, bytes]:
        connection = self._connection()
        try:
            connection.request("GET", path, headers={"Host": "docker"})
            response = connection.getresponse()
            return response.status, response.read()
        except PermissionError:
            raise DockerUnreachable(f"permission denied on {self.host}") from None
        except FileNotFoundError:
            raise DockerUnreachable(f"no Docker socket at {self.host}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DockerUnreachable(f"cannot talk to {self.host}: {exc}") from None
        finally:
            connection.close()


def check_docker(api: DockerApi) -> tuple[Check, bool]:
    """The engine check, and whether the engine answered (the image check needs it)."""
    name = "docker"
    try:
        status, _ = api.get("/_ping")
        if status != 200:
            return Check(name, "fail", f"{api.host} answered /_ping with HTTP {status}",
                         "check the Docker engine's health (systemctl status docker)"), False
        _, version_body = api.get("/version")
    except DockerUnreachable as exc:
        fix = ("add your user to the 'docker' group (then log in again)" if "permission denied" in str(exc)
               else "install Docker Engine and start it (systemctl start docker), or set DOCKER_HOST")
        return Check(name, "fail", str(exc), fix), False
    try:
        version = json.loads(version_body)
        detail = f"engine {version.get('Version', '?')} (API {version.get('ApiVersion', '?')}) at {api.host}"
    except ValueError:
        detail = f"engine at {api.host}"
    return Check(name, "ok", detail), True


def sandbox_image_name(daemon_status: dict[str, Any] | None) -> str:
    """The image attempts will use: what a running daemon says, else its settings' sources."""
    if daemon_status and daemon_status.get("sandbox_image"):
        return str(daemon_status["sandbox_image"])
    if os.environ.get("KILOD_SANDBOX_IMAGE"):
        return os.environ["KILOD_SANDBOX_IMAGE"]
    try:
        with config_file().open("rb") as handle:
            configured = tomllib.load(handle).get("sandbox_image")
    except (OSError, tomllib.TOMLDecodeError):
        configured = None
    return str(configured) if configured else DEFAULT_SANDBOX_IMAGE


def check_image(api: DockerApi, image: str) -> Check:
    name = "sandbox image"
    fix = "kilod images build"
    try:
        status, body = api.get(f"/images/{quote(image, safe='/:@')}/json")
    except DockerUnreachable as exc:
        return Check(name, "fail", str(exc), fix)
    if status == 404:
        return Check(name, "fail", f"{image} is not present", fix)
    if status != 200:
        return Check(name, "fail", f"inspecting {image} answered HTTP {status}", fix)
    parts = [image]
    try:
        info = json.loads(body)
        parts.append(str(info["Id"]).removeprefix("sha256:")[:12])
        parts.append(f"({int(info['Size']) / 1024**2:.0f} MiB)")
    except (ValueError, TypeError, KeyError):
        pass  # present is what matters; id and size are only shown
    return Check(name, "ok", " ".join(parts))


def parse_git_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def check_git() -> Check:
    name = "git"
    fix = f"install git {MIN_GIT[0]}.{MIN_GIT[1]} or newer"
    try:
        output = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True,
                                timeout=10).stdout.strip()
    except FileNotFoundError:
        return Check(name, "fail", "git is not on PATH", fix)
    except (subprocess.SubprocessError, OSError) as exc:
        return Check(name, "fail", f"'git --version' failed: {exc}", fix)
    version = parse_git_version(output)
    if version is None:
        return Check(name, "fail", f"cannot read the version in '{output}'", fix)
    shown = ".".join(map(str, version))
    if version[:2] < MIN_GIT:
        return Check(name, "fail", f"git {shown} is too old (need ≥ {MIN_GIT[0]}.{MIN_GIT[1]})", fix)
    return Check(name, "ok", f"git {shown}")


def nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (the data dir may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")


def min_free_bytes(status: dict[str, Any] | None) -> int:
    """The daemon's free-space floor: from the running daemon, else KILOD_MIN_FREE_BYTES, else the default."""
    disk = (status or {}).get("disk")
    if isinstance(disk, dict) and isinstance(disk.get("min_free_bytes"), int):
        return int(disk["min_free_bytes"])
    text = os.environ.get("KILOD_MIN_FREE_BYTES", "")
    return int(text) if text.isdigit() else DEFAULT_MIN_FREE_BYTES


def check_disk(directory: Path, floor: int = DEFAULT_MIN_FREE_BYTES) -> Check:
    name = "disk"
    where = nearest_existing(directory)
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return Check(name, "fail", f"cannot measure free space in {where}: {exc}", "check the data dir's disk")
    detail = f"{free / 1024**3:.1f} GiB free in {where}; new attempts need {floor / 1024**2:.0f} MiB"
    if free < floor:
        return Check(name, "fail", detail + " (below the floor: new cards are refused, queued attempts wait)",
                     "free some space, or set KILOD_DATA_DIR to a larger disk (KILOD_MIN_FREE_BYTES sets the floor)")
    if free < COMFORTABLE_FREE_BYTES:
        return Check(name, "warn", detail + f" (less than {COMFORTABLE_FREE_BYTES // 1024**3} GiB: worktrees and "
                                            "images fill it quickly; a full disk pauses running attempts)",
                     "free some space, or set KILOD_DATA_DIR to a larger disk")
    return Check(name, "ok", detail)


def check_daemon(client: Client) -> tuple[Check, dict[str, Any] | None]:
    """Whether a daemon answers; not running is only a warning (doctor runs before the first start)."""
    name = "daemon"
    if not client.healthy():
        return Check(name, "warn", f"not running (no answer on {client.socket_path})",
                     "start it with 'kilod serve' or 'kilod demo'"), None
    try:
        status = client.get("/v1/status")
    except Exception:  # healthy a moment ago; the details are a bonus
        status = None
    if not isinstance(status, dict):
        return Check(name, "ok", f"answering on {client.socket_path}"), None
    return Check(name, "ok", f"kilod {status.get('version', '?')} (pid {status.get('pid', '?')}) "
                             f"on {client.socket_path}"), status


def run_checks(client: Client) -> list[Check]:
    daemon, status = check_daemon(client)
    api = DockerApi(os.environ.get("DOCKER_HOST"))
    docker, engine_up = check_docker(api)
    image_name = sandbox_image_name(status)
    image = (check_image(api, image_name) if engine_up
             else Check("sandbox image", "fail", f"{image_name}: unknown (the Docker engine is unreachable)",
                        "fix docker first, then run 'kilod images build'"))
    where = Path(status["data_dir"]) if status and isinstance(status.get("data_dir"), str) else data_dir()
    checks = [docker, image, check_git(), check_disk(where, min_free_bytes(status)), daemon]
    used = disk_line(client) if status is not None else None
    if used is not None:
        checks.append(Check("disk used", "ok", used, "kilod ctl gc; kilod cache clear; kilod images prune"))
    return checks


def print_checks(checks: list[Check], write: Callable[[str], object] = sys.stdout.write) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        write(f"{LABELS[check.status]:<4}  {check.name:<{width}}  {check.detail}\n")
        if check.status != "ok" and check.fix:
            write(f"{'':<4}  {'':<{width}}  → {check.fix}\n")


def doctor(client: Client, as_json: bool) -> int:
    checks = run_checks(client)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print_checks(checks)
    return 1 if failed else 0
