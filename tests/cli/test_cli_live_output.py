"""`kilod ctl logs -f` prints a setup command's output as it comes, as text lines named by their step
(real daemon, real Docker). The command waits for a file the test creates only once the CLI has
printed its first line: seeing that line first proves it was live."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.kilod_testing import DaemonProcess

from .conftest import CLI_TIMEOUT_SECONDS, CliEnv

pytestmark = pytest.mark.docker


def test_logs_follow_prints_setup_output_live(cli: CliEnv, daemon: DaemonProcess, repo: Path) -> None:
    command = "echo ready; while [ ! -f /workspace/.go ]; do sleep 0.1; done; echo finished"
    card = daemon.request("POST", "/v1/cards", {"prompt": "say hello", "repo": str(repo),
                                                "models": ["scripted/hello"], "settings": {"setup": [command]}})
    attempt = card["attempts"][0]
    follow = subprocess.Popen([sys.executable, "-m", "kilod_cli.main", "--socket", str(daemon.socket), "ctl",
                               "logs", attempt["id"], "-f"], env=cli.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert follow.stdout is not None
        for line in follow.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    printed: list[str] = []
    try:
        while not any(line.endswith("setup │ ready") for line in printed):
            line = lines.get(timeout=CLI_TIMEOUT_SECONDS * 2)
            assert line is not None, f"ctl logs -f ended before setup's output:\n{printed}\n{follow.stderr}"
            printed.append(line)
        assert not any(line.endswith("│ finished") for line in printed)
        (Path(attempt["worktree"]) / ".go").write_text("")
        while (line := lines.get(timeout=CLI_TIMEOUT_SECONDS * 2)) is not None:
            printed.append(line)
        assert follow.wait(timeout=CLI_TIMEOUT_SECONDS) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()

    text = "\n".join(printed)
    assert any(line.endswith("output      setup │ finished") for line in printed), text
    assert f"setup: {command}" in text and "setup passed (exit 0)" in text
    assert printed[-1].endswith("running → REVIEW")
    assert not any(line.lstrip().startswith("{") or '"text"' in line for line in printed), text  # never JSON
