"""`kilod demo --agents`: the built-in agent, Claude Code and Codex side by side on one card, no keys."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from tests.agents.conftest import installed
from tests.conftest import SANDBOX_IMAGE
from tests.kilod_testing import DaemonProcess, new_instance, remove_labelled, rmtree, short_tmpdir


def test_demo_with_agents_reviews_three_attempts_by_three_agents(agents_home: Path, sandbox_image: str) -> None:
    for name in ("claude-code", "codex"):
        installed(agents_home, name)
    data_dir, instance = short_tmpdir("kdemo-"), new_instance()
    os.symlink(agents_home / "agents", data_dir / "agents")
    env = {**os.environ, "KILOD_DATA_DIR": str(data_dir), "KILOD_INSTANCE": instance,
           "KILOD_CONFIG": str(data_dir / "none.toml"), "KILOD_SANDBOX_IMAGE": SANDBOX_IMAGE,
           "KILOD_FORWARDER_IMAGE": sandbox_image}
    env.pop("KILOD_SOCKET", None)
    try:
        done = subprocess.run([sys.executable, "-m", "kilod_cli.main", "demo", "--agents"], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        out = done.stdout
        for agent, model in (("builtin", "scripted/careful"), ("claude-code", "scripted/demo_claude"),
                             ("codex", "scripted/demo_codex")):
            assert f"{agent}  {model}  review" in out, out
        assert "test_greeter.py" in out and "greeter.py" in out   # Claude Code wrote a test, Codex edited
        assert "farewell() is added" in out                          # Claude Code's own summary
    finally:
        daemon = DaemonProcess(data_dir, instance)   # the one the demo started and left running
        with contextlib.suppress(OSError):
            daemon.request("POST", "/v1/shutdown")
            daemon.wait_for(lambda: not daemon.socket.exists(), 30, "the demo's daemon to stop")
        remove_labelled(instance)
        rmtree(data_dir)
