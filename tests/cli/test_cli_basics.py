"""The CLI as a process, with no daemon: version, usage errors, exit code 3, import hygiene."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kilod import __version__
from kilod_cli import main as cli_main

from .conftest import CliEnv

HEAVY_MODULES = ("litellm", "docker", "aiohttp", "pydantic", "pydantic_settings", "kilod.app", "rich", "pygments")


def test_version(cli: CliEnv) -> None:
    result = cli.run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kilod {__version__}"


def test_console_script_runs() -> None:
    script = Path(sys.executable).parent / "kilod"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not installed in this env)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"kilod {__version__}"


@pytest.mark.parametrize("args", [
    ["ctl", "board"],
    ["ctl", "board", "--json"],
    ["ctl", "status", "--json"],
    ["ctl", "show", "abc"],
    ["ctl", "logs", "abc-1", "-f"],
    ["ctl", "new", "do something"],
    ["ctl", "shutdown"],
    ["ctl", "diff", "abc-1"],
    ["ctl", "diff", "abc-1", "--stat"],
    ["ctl", "comment", "abc-1", "a.py:1", "hm"],
    ["ctl", "comments", "abc-1", "--json"],
    ["ctl", "followup", "abc-1", "more", "-f"],
    ["ctl", "open", "abc-1"],
    ["ctl", "shell", "abc-1", "--host"],
    ["ctl", "approve", "abc-1"],
    ["ctl", "merge", "abc-1"],
    ["ctl", "discard", "abc-1"],
    ["ctl", "cancel", "abc-1"],
    ["ctl", "retry", "abc-1"],
    ["ctl", "new", "do something", "-n", "3", "--budget-tokens", "100", "--check", "pytest -q"],
    ["ctl", "compare", "abc"],
    ["ctl", "compare", "abc", "--diff", "a.py"],
    ["ctl", "pick", "abc-1", "--merge"],
])
def test_no_daemon_exits_3_with_how_to_start_one(cli: CliEnv, args: list[str]) -> None:
    result = cli.run(*args)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"kilod: the daemon is not running (no socket at {cli.socket}); "
        "start it with 'kilod serve' or 'kilod demo'"
    )


def test_socket_option_overrides_the_environment(cli: CliEnv) -> None:
    elsewhere = cli.root / "elsewhere.sock"
    before_verb = cli.run("--socket", str(elsewhere), "ctl", "status")
    after_verb = cli.run("ctl", "status", "--socket", str(elsewhere))
    for result in (before_verb, after_verb):
        assert result.returncode == 3
        assert f"no socket at {elsewhere}" in result.stderr


def test_a_stale_socket_file_counts_as_not_running(cli: CliEnv) -> None:
    import socket

    # a socket file nobody listens on: what a killed daemon leaves behind
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(cli.socket))
    listener.close()
    result = cli.run("ctl", "board")
    assert result.returncode == 3, result.stderr


@pytest.mark.parametrize("args", [
    [],
    ["ctl"],
    ["ctl", "bogus"],
    ["ctl", "board", "--bogus"],
    ["ctl", "board", "--watch", "--json"],
    ["ctl", "show"],
    ["ctl", "new"],
    ["images", "build", "bogus"],
    ["images"],
    ["ctl", "diff"],
    ["ctl", "diff", "abc"],  # a card id where an attempt is needed
    ["ctl", "comment", "abc-1", "a.py", "text"],
    ["ctl", "comment", "abc-1", "a.py:0", "text"],
    ["ctl", "followup", "abc-1"],
    ["ctl", "merge", "abc-1", "--merge"],
    ["ctl", "shell", "abc-1", "--bogus"],
    ["ctl", "new", "x", "-n", "9"],
    ["ctl", "new", "x", "--budget-cost", "0"],
    ["ctl", "compare"],
    ["ctl", "compare", "abc", "--diff"],
    ["ctl", "pick", "abc"],  # a card id where an attempt is needed
    ["ctl", "pick", "abc-1", "--tree", "t"],
])
def test_usage_errors_exit_2(cli: CliEnv, args: list[str]) -> None:
    result = cli.run(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert result.stdout == ""


def test_help_exits_0(cli: CliEnv) -> None:
    result = cli.run("ctl", "new", "--help")
    assert result.returncode == 0
    assert "--network" in result.stdout and "--model" in result.stdout


def _modules_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\n"
        "import json\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert _modules_after("import kilod_cli.main") == []


def test_parsing_a_verb_loads_nothing_heavy() -> None:
    code = (
        "import contextlib, io, kilod_cli.main as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.build_parser().parse_args(['ctl', 'board', '--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.build_parser().parse_args(['ctl', '--help'])\n"
        "cli.build_parser().parse_args(['ctl', 'logs', 'abc-1', '-f', '--json'])\n"
        "for verb in (['diff', 'abc-1', '--stat'], ['comment', 'abc-1', 'a.py:3', 'x'], ['comments', 'abc-1'],\n"
        "             ['followup', 'abc-1', 'x', '-f'], ['shell', 'abc-1', '--host'], ['open', 'abc-1'],\n"
        "             ['approve', 'abc-1', '--merge', '-m', 'x'], ['merge', 'abc-1'], ['discard', 'abc-1'],\n"
        "             ['cancel', 'abc-1'], ['retry', 'abc-1'], ['compare', 'abc', '--diff', 'a.py', '--json'],\n"
        "             ['pick', 'abc-1', '-m', 'x', '--merge'],\n"
        "             ['new', 'x', '-n', '2', '--budget-tokens', '5', '--budget-cost', '1', '--setup', 's',\n"
        "              '--check', 'c', '--copy', '.env']):\n"
        "    cli.build_parser().parse_args(['ctl', *verb])\n"
    )
    assert _modules_after(code) == []


# The review desk's modules: the verbs that print data or talk to the daemon load no rich;
# the diff view loads rich and pygments, and still none of the daemon's dependencies.
DESK_MODULES = ("kilod_cli.desk", "kilod_cli.desk_open", "kilod_cli.text", "kilod_cli.client", "kilod_cli.compare")


@pytest.mark.parametrize("module", DESK_MODULES)
def test_the_desk_modules_load_nothing_heavy(module: str) -> None:
    assert _modules_after(f"import {module}") == []


def test_the_diff_view_loads_only_rich_and_pygments() -> None:
    loaded = _modules_after("import kilod_cli.diffview")
    assert "rich" in loaded and "pygments" in loaded
    assert [m for m in loaded if m.split(".")[0] not in ("rich", "pygments")] == []


def test_the_compare_view_loads_only_rich() -> None:
    loaded = _modules_after("import kilod_cli.compareview")
    assert "rich" in loaded
    assert [m for m in loaded if m.split(".")[0] != "rich"] == []  # pygments only for --diff on a terminal


@pytest.mark.parametrize("verb", [
    ["board", "--json"],
    ["diff", "abc-1", "--json"],
    ["diff", "abc-1", "--stat", "--json"],
    ["comments", "abc-1", "--json"],
    ["approve", "abc-1", "--json"],
    ["merge", "abc-1"],
    ["discard", "abc-1"],
    ["cancel", "abc-1"],
    ["retry", "abc-1", "--json"],
    ["comment", "abc-1", "a.py:1", "x"],
    ["followup", "abc-1", "x"],
    ["open", "abc-1"],
    ["shell", "abc-1", "--host"],
    ["compare", "abc", "--json"],
    ["compare", "abc", "--diff", "a.py"],
    ["pick", "abc-1"],
    ["new", "x", "-n", "2", "--check", "c"],
])
def test_a_json_verb_without_daemon_loads_nothing_heavy(cli: CliEnv, verb: list[str]) -> None:
    code = (
        "import os, kilod_cli.main as cli\n"
        f"os.environ['KILOD_SOCKET'] = {str(cli.socket)!r}\n"
        f"assert cli.main(['ctl', *{verb!r}]) == 3\n"
    )
    assert _modules_after(code) == []


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(found.choices)


def test_a_command_line_naming_a_verb_builds_that_verb_exactly_as_the_whole_parser_does() -> None:
    whole = _verbs(cli_main.build_parser())
    whole_ctl = _verbs(whole["ctl"])
    assert set(whole) == {*cli_main.TOP_VERBS, "ctl"} and set(whole_ctl) == set(cli_main.CTL_VERBS)
    for verb in cli_main.TOP_VERBS:
        narrow = _verbs(cli_main.build_parser([verb, "--json"]))
        assert set(narrow) <= set(whole) and narrow[verb].format_help() == whole[verb].format_help()
    for verb in cli_main.CTL_VERBS:
        narrow = _verbs(cli_main.build_parser(["--socket", "ctl", "ctl", verb, "x"]))
        assert set(narrow) == {"ctl"}
        assert _verbs(narrow["ctl"])[verb].format_help() == whole_ctl[verb].format_help()
    # help at a level, or no verb known there, builds that level whole: its message names every verb
    assert set(_verbs(cli_main.build_parser(["--help", "ctl"]))) == set(whole)
    assert set(_verbs(_verbs(cli_main.build_parser(["ctl", "-h", "board"]))["ctl"])) == set(whole_ctl)
    assert set(_verbs(_verbs(cli_main.build_parser(["ctl", "bord"]))["ctl"])) == set(whole_ctl)
    assert set(_verbs(cli_main.build_parser(["srve"]))) == set(whole)


def test_a_mistyped_verb_is_told_with_every_verb_to_choose_from(cli: CliEnv) -> None:
    result = cli.run("ctl", "bord")
    assert result.returncode == 2
    assert "invalid choice: 'bord'" in result.stderr and "'board'" in result.stderr and "'approve'" in result.stderr
