"""Structured logs: JSON lines when stderr is not a terminal, text on request, ids as fields."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kilod.logs import JsonFormatter, TextFormatter
from tests.kilod_testing import ApiError, DaemonProcess, make_repo, new_instance, remove_labelled, rmtree, short_tmpdir

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def record(message: str = "attempt %s started", *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("kilod.pipeline", logging.INFO, __file__, 1, message, args or ("a1",), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_json_lines_carry_time_level_logger_message_and_the_ids_given() -> None:
    line = JsonFormatter().format(record(card_id="3fa9c2d1", attempt_id="3fa9c2d1-1", model="scripted/hello"))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "INFO" and entry["logger"] == "kilod.pipeline"
    assert entry["message"] == "attempt a1 started"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert (entry["card_id"], entry["attempt_id"], entry["model"]) == ("3fa9c2d1", "3fa9c2d1-1", "scripted/hello")
    assert set(json.loads(JsonFormatter().format(record()))) == {"time", "level", "logger", "message"}


def test_json_keeps_an_exception_in_its_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        made = record()
        made.exc_info = sys.exc_info()
    line = JsonFormatter().format(made)
    assert "\n" not in line
    assert "ValueError: bad" in json.loads(line)["exception"]


def test_text_names_the_ids_after_the_message() -> None:
    line = TextFormatter().format(record(card_id="3fa9c2d1", attempt_id="3fa9c2d1-1"))
    assert TEXT_LINE.match(line)
    assert line.endswith("kilod.pipeline: attempt a1 started [card=3fa9c2d1 attempt=3fa9c2d1-1]")


def test_libraries_with_their_own_handler_log_through_the_root_too() -> None:
    """litellm adds a stderr handler of its own when imported; its records still come out as JSON."""
    script = textwrap.dedent("""
        import logging, sys
        from kilod.logs import configure_logging
        assert configure_logging(sys.stderr, "auto", "INFO") == "json"   # stderr is a pipe
        theirs = logging.getLogger("LiteLLM")
        theirs.addHandler(logging.StreamHandler(sys.stderr))   # what litellm does at import
        theirs.warning("from the library")
        import warnings; warnings.warn("deprecated thing")
        logging.getLogger("kilod.x").info("ours", extra={"attempt_id": "c1-1"})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert entries[0]["message"] == "from the library"
    assert "deprecated thing" in entries[1]["message"] and entries[1]["level"] == "WARNING"
    assert entries[2] == {**entries[2], "message": "ours", "attempt_id": "c1-1"}
    assert len(entries) == 3


# -- a real daemon, its stderr a pipe --------------------------------------


class PipedDaemon(DaemonProcess):
    """The daemon with stderr on a pipe (not a terminal), read line by line as it comes."""

    def start(self, timeout: float = 60.0) -> PipedDaemon:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.lines: list[str] = []
        self.process = subprocess.Popen([sys.executable, "-m", "kilod"], env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"daemon exited:\n{self.log()}"
            try:
                if self.request("GET", "/healthz")["ok"]:
                    return self
            except (OSError, ApiError):
                time.sleep(0.1)
        raise TimeoutError(f"daemon did not answer:\n{self.log()}")

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines)

    def stop_and_read(self) -> list[str]:
        self.stop()
        self.reader.join(timeout=20)
        return [line for line in self.lines if line.strip()]


@pytest.fixture
def piped_daemons() -> Iterator[list[PipedDaemon]]:
    started: list[PipedDaemon] = []
    yield started
    for daemon in started:
        daemon.stop()
        remove_labelled(daemon.instance)
        rmtree(daemon.data_dir)


def start_piped(started: list[PipedDaemon], **env: str) -> PipedDaemon:
    daemon = PipedDaemon(short_tmpdir(), new_instance(), env)
    started.append(daemon)
    return daemon.start()


def test_a_daemon_on_a_pipe_writes_only_json_lines(sandbox_image: str, piped_daemons: list[PipedDaemon],
                                                   tmp_path: Path) -> None:
    daemon = start_piped(piped_daemons)
    repo = make_repo(tmp_path / "repo")
    card = daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo), "models": ["scripted/hello"]})
    daemon.wait_state(card["attempts"][0]["id"], "review")
    daemon.wait_for(lambda: any("litellm" in line for line in daemon.lines), 60, "litellm's ready line")
    lines = daemon.stop_and_read()
    assert len(lines) >= 3, lines
    for line in lines:
        entry = json.loads(line)  # every line, not just most
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    entries = [json.loads(line) for line in lines]
    assert any("listening on" in e["message"] for e in entries) and any("stopping" in e["message"] for e in entries)
    attempt_id = card["attempts"][0]["id"]
    about = [e for e in entries if e.get("attempt_id") == attempt_id]
    assert about and all(e["card_id"] == card["id"] and e["model"] == "scripted/hello" for e in about), about


def test_kilod_log_format_text_gives_text(piped_daemons: list[PipedDaemon]) -> None:
    daemon = start_piped(piped_daemons, KILOD_LOG_FORMAT="text")
    lines = daemon.stop_and_read()
    assert lines and all(TEXT_LINE.match(line) for line in lines if not line.startswith((" ", "\t"))), lines
    assert any("listening on" in line for line in lines)
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_a_bad_log_setting_is_a_warning_not_a_stop(piped_daemons: list[PipedDaemon]) -> None:
    daemon = start_piped(piped_daemons, KILOD_LOG_FORMAT="xml", KILOD_LOG_LEVEL="loud")
    entries = [json.loads(line) for line in daemon.stop_and_read()]
    warnings = [e["message"] for e in entries if e["level"] == "WARNING"]
    assert any("KILOD_LOG_FORMAT='xml'" in w for w in warnings) and any("KILOD_LOG_LEVEL='loud'" in w for w in warnings)


def test_kilod_log_level_filters(piped_daemons: list[PipedDaemon]) -> None:
    daemon = start_piped(piped_daemons, KILOD_LOG_LEVEL="WARNING")
    entries = [json.loads(line) for line in daemon.stop_and_read()]
    assert all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in entries), entries
