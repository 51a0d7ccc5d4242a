"""The verbs that live in their own modules are reachable from `kilod`."""

from __future__ import annotations

import subprocess
import sys


def kilod(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", *args], capture_output=True, text=True,
                          timeout=60)


def test_service_install_print_shows_the_unit_without_installing() -> None:
    done = kilod("service", "install", "--print")
    assert done.returncode == 0, done.stderr
    assert "[Service]" in done.stdout and "ExecStart=" in done.stdout and " serve" in done.stdout


def test_ctl_web_and_serve_http_are_wired() -> None:
    assert "one-time login URL" in kilod("ctl", "web", "--help").stdout
    assert "--http HOST:PORT" in kilod("serve", "--help").stdout
    assert kilod("service", "frobnicate").returncode == 2
