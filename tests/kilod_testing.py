"""Helpers the tests share: real git repositories, a real daemon process, real Docker.

Everything a test creates is labelled with its own instance id and removed by that
label afterwards; nothing else on the machine is touched.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_SCRIPTS = Path(__file__).resolve().parent / "scripts"
GREETER = 'def greet(name):\n    return "Hello " + name\n'
README = "# Greeter\n\n## Usage\n"
GIT_IDENTITY = ["-c", "user.name=kilod tests", "-c", "user.email=tests@kilod.invalid",
                "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *GIT_IDENTITY, "-C", str(repo), *args], check=True, capture_output=True,
                         text=True)
    return out.stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A real git repository on branch main with one commit."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in (files or {"greeter.py": GREETER, "README.md": README}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial commit")
    return path


def make_big_repo(path: Path, files: int) -> Path:
    """A packed repository of `files` small source files in nested folders (benches, scale tests)."""
    tree = {f"src/pkg{i // 500:03d}/mod{i % 500 // 50:03d}/file{i}.py": f"VALUE_{i} = {i}\n" * 20
            for i in range(files)}
    tree["README.md"] = "# big\n"
    make_repo(path, tree)
    subprocess.run(["git", "-C", str(path), "repack", "-adq"], check=True)
    subprocess.run(["git", "-C", str(path), "prune-packed"], check=True)
    return path


def short_tmpdir(prefix: str = "kd-") -> Path:
    """Unix socket paths are limited to ~107 bytes: keep daemon dirs short."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class DaemonProcess:
    """`python -m kilod` in a subprocess, with its own data dir and instance label."""

    def __init__(self, data_dir: Path, instance: str, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.instance = instance
        self.socket = data_dir / "kilod.sock"
        self.log_path = data_dir / "daemon.log"
        self.env = {
            **os.environ,
            "KILOD_DATA_DIR": str(data_dir),
            "KILOD_INSTANCE": instance,
            "KILOD_SCRIPTS_DIR": str(TEST_SCRIPTS),
            "KILOD_RECONCILE_INTERVAL": "1",
            "KILOD_CONFIG": str(data_dir / "no-config.toml"),
            **(extra_env or {}),
        }
        self.env.pop("KILOD_SOCKET", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DaemonProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "kilod"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/healthz")["ok"]:
                    return self
            except (OSError, ApiError):
                time.sleep(0.1)
        raise TimeoutError(f"daemon did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connection(self) -> http.client.HTTPConnection:
        """How requests reach this daemon (a subclass may use TCP and add credentials below)."""
        return UnixHTTPConnection(self.socket)

    def credentials(self) -> dict[str, str]:
        return {}

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        connection = self.connection()
        try:
            payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            all_headers = {"Content-Type": "application/json", **self.credentials(), **(headers or {})}
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        parsed = json.loads(data) if data else None
        if response.status >= 400:
            raise ApiError(response.status, parsed)
        return parsed

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"timed out waiting for {what}\n--- daemon log ---\n{self.log()[-4000:]}")

    def attempt(self, attempt_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/attempts/{attempt_id}")
        return result

    def events(self, attempt_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/v1/attempts/{attempt_id}/events")["events"])

    def wait_state(self, attempt_id: str, *states: str, timeout: float = 120.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            attempt = self.attempt(attempt_id)
            if attempt["state"] in ("failed",) and "failed" not in states:
                raise AssertionError(f"attempt {attempt_id} failed: {attempt['error']}\n{self.log()[-4000:]}")
            return attempt if attempt["state"] in states else None

        result: dict[str, Any] = self.wait_for(reached, timeout, f"{attempt_id} to reach {states}")
        return result

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def new_instance() -> str:
    return f"test-{secrets.token_hex(4)}"


def remove_labelled(instance: str) -> None:
    import docker

    client = docker.from_env()
    label: dict[str, str | list[str] | bool] = {"label": f"kilod.instance={instance}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    # egress networks and cache volumes (kilod.environments) go once their containers have
    for network in client.networks.list(filters=label):
        network.remove()
    for volume in client.volumes.list(filters=label):
        volume.remove(force=True)
    for image in client.images.list(filters=label):  # sandbox images built for the tests' repositories
        client.images.remove(str(image.id), force=True)
    client.close()


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
