"""How `ctl logs` prints a command's live output and a check's result: text lines, never JSON."""

from __future__ import annotations

from kilod_cli.render import event_text


def test_output_lines_are_prefixed_by_their_step_or_check() -> None:
    setup = event_text({"time": 0, "kind": "output",
                        "payload": {"step": "setup", "command": "make", "text": "one\ntwo\n"}}).plain.splitlines()
    assert [line[9:] for line in setup] == ["output      setup │ one", "output      setup │ two"]
    check = event_text({"time": 0, "kind": "output", "payload": {"step": "checks", "name": "tests",
                                                                 "command": "pytest", "text": "1 passed"}}).plain
    assert check.endswith("output      check tests │ 1 passed") and "\n" not in check
    # what a terminal would show of a progress counter, and its escapes made visible, never obeyed
    tricky = event_text({"time": 0, "kind": "output",
                         "payload": {"step": "setup", "text": "10%\r50%\r100%\r\n\x1b[2Jdone\n"}}).plain.splitlines()
    assert [line.split("│ ", 1)[1] for line in tricky] == ["100%", "␛[2Jdone"]


def test_a_cut_output_says_so() -> None:
    cut = event_text({"time": 0, "kind": "output", "payload": {
        "step": "setup", "command": "yes", "text": "y\n", "cut": True,
        "message": "output cut: more than 20,000 bytes; the command goes on, and its end shows the last lines"}})
    assert [line.split("│ ", 1)[1] for line in cut.plain.splitlines()] == [
        "y", "… output cut: more than 20,000 bytes; the command goes on, and its end shows the last lines"]


def test_a_check_result_is_a_line_and_a_failure_shows_its_last_lines() -> None:
    passed = event_text({"time": 0, "kind": "check", "payload": {
        "name": "tests", "command": "pytest -q", "status": "passed", "exit_code": 0, "duration": 1.234,
        "timed_out": False, "output_tail": "3 passed\n"}}).plain
    assert passed.endswith("check       tests passed  (exit 0, 1.2 s)  $ pytest -q")
    failed = event_text({"time": 0, "kind": "check", "payload": {
        "name": "lint", "command": "ruff check .", "status": "error", "exit_code": 124, "duration": 600.0,
        "timed_out": True, "output_tail": "\n".join(f"line {n}" for n in range(9)) + "\n"}}).plain.splitlines()
    assert failed[0].endswith("check       lint error  (timed out, exit 124, 600.0 s)  $ ruff check .")
    assert [line.strip() for line in failed[1:]] == ["line 4", "line 5", "line 6", "line 7", "line 8"]
    assert not any(line.lstrip().startswith("{") for line in failed)
