"""The gateway inside a real daemon process: built at start, closed at stop, configured by settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kilod_testing import DaemonProcess, new_instance, rmtree, short_tmpdir


def test_the_daemon_starts_and_stops_cleanly_with_the_gateway_and_its_model_map() -> None:
    data_dir = short_tmpdir()
    daemon = DaemonProcess(data_dir, new_instance(), {"KILOD_GATEWAY_MODELS": '{"claude-haiku-4-5": "scripted/hello"}'})
    try:
        daemon.start()
        assert daemon.request("GET", "/healthz")["ok"]
        daemon.stop()
        assert daemon.process is not None and daemon.process.returncode == 0, daemon.log()
        assert "Traceback" not in daemon.log()
    finally:
        daemon.stop()
        rmtree(data_dir)


@pytest.mark.parametrize("value", ["not json", '{"a": 1}'])
def test_a_bad_model_map_is_a_clear_startup_error(value: str) -> None:
    data_dir = short_tmpdir()
    env = DaemonProcess(data_dir, new_instance(), {"KILOD_GATEWAY_MODELS": value}).env
    try:
        run = subprocess.run([sys.executable, "-m", "kilod"], env=env, capture_output=True, text=True, timeout=60)
    finally:
        rmtree(data_dir)
    assert run.returncode != 0
    assert "gateway_models" in (run.stdout + run.stderr).lower()
