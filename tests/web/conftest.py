"""Fixtures for the web board: a daemon with its TCP listener on, and a real browser (Debian's chromium)."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kilod_testing import REPO_ROOT, DaemonProcess, new_instance, remove_labelled, rmtree, short_tmpdir

CHROMIUM = os.environ.get("KILOD_TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 860}
# screenshots for people to look at: gitignored, kept by CI as artifacts (KILOD_TEST_ARTIFACTS moves them)
ARTIFACTS = Path(os.environ.get("KILOD_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "web"


@pytest.fixture
def shots() -> Path:
    """Where this run's screenshots go (test-artifacts/web/, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def trust(daemon: DaemonProcess, repo: Path) -> None:
    """Trust the repository's .kilod.toml as a person would (setup and copy apply only once trusted)."""
    shown = daemon.request("GET", f"/v1/repos/trust?repo={repo}")
    daemon.request("POST", "/v1/repos/trust", {"repo": str(repo), "sha256": shown["sha256"]})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class WebDaemon:
    """A started daemon serving the web board on 127.0.0.1:<port>."""

    def __init__(self, daemon: DaemonProcess, port: int) -> None:
        self.daemon = daemon
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"

    @property
    def token(self) -> str:
        return (self.daemon.data_dir / "token").read_text().strip()

    def login_url(self) -> str:
        url: str = self.daemon.request("POST", "/v1/web/login")["url"]
        return url


@pytest.fixture
def web_daemon_factory(daemon_factory: type[DaemonProcess]) -> Any:
    def start(extra_env: dict[str, str] | None = None) -> WebDaemon:
        port = free_port()
        daemon = daemon_factory({"KILOD_HTTP": f"127.0.0.1:{port}", **(extra_env or {})}).start()
        return WebDaemon(daemon, port)

    return start


@pytest.fixture
def web_daemon(web_daemon_factory: Any) -> WebDaemon:
    daemon: WebDaemon = web_daemon_factory()
    return daemon


@pytest.fixture(scope="module")
def shared_web(sandbox_image: str) -> Iterator[WebDaemon]:
    """One web daemon for a whole module of tests that do not disturb each other (a daemon costs seconds)."""
    data_dir = short_tmpdir()
    instance = new_instance()
    port = free_port()
    daemon = DaemonProcess(data_dir, instance, {"KILOD_HTTP": f"127.0.0.1:{port}"})
    try:
        yield WebDaemon(daemon.start(), port)
    finally:
        daemon.stop()
        remove_labelled(instance)
        rmtree(data_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium driven by playwright; never downloaded (`playwright install` is not used).

    Module-scoped: playwright's sync API keeps an event loop running, which async tests
    in other modules (pytest-asyncio) cannot share.
    """
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = f"no chromium at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; console errors fail the test."""
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    context.close()
