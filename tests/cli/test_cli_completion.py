"""`kilod completion`: the scripts, sourced in real shells, complete verbs, options, states and ids."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kilod_cli.completion import levels
from kilod_cli.main import build_parser

from .conftest import CLI_TIMEOUT_SECONDS, CliEnv, FakeDaemon
from .test_cli_board import filter_board

# `kilod ARGS` as typed, completed at the end: what the bash completion offers.
BASH_PROBE = """\
source "$1"
complete -p kilod
shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMPREPLY=()
_kilod
((${#COMPREPLY[@]} == 0)) || printf '%s\\n' "${COMPREPLY[@]}"
"""


@pytest.fixture
def on_path(cli: CliEnv) -> dict[str, str]:
    """The env with a `kilod` on PATH that is this checkout's CLI (the scripts call `kilod completion --list`)."""
    import sys

    bin_dir = cli.root / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "kilod"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m kilod_cli.main \"$@\"\n")
    wrapper.chmod(0o755)
    return cli.env_with({"PATH": f"{bin_dir}:{cli.env['PATH']}"})


def script(cli: CliEnv, shell: str) -> Path:
    result = cli.run("completion", shell)
    assert result.returncode == 0, result.stderr
    path = cli.root / f"kilod.{shell}"
    path.write_text(result.stdout)
    return path


def bash_complete(cli: CliEnv, env: dict[str, str], *words: str) -> list[str]:
    done = subprocess.run(["bash", "-c", BASH_PROBE, "probe", str(script(cli, "bash")), "kilod", *words],
                          env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "complete -o default -F _kilod kilod"  # `complete -p kilod` after sourcing
    return lines[1:]


def test_bash_completes_verbs_and_options(cli: CliEnv, on_path: dict[str, str]) -> None:
    assert bash_complete(cli, on_path, "") == ["serve", "demo", "doctor", "images", "service", "agents", "cache", "ctl",
                                                  "completion"]
    assert bash_complete(cli, on_path, "ctl", "sh") == ["show", "shell", "shutdown"]
    assert bash_complete(cli, on_path, "ctl", "un") == ["unarchive"]
    assert bash_complete(cli, on_path, "ctl", "delete", "--y") == ["--yes"]
    assert bash_complete(cli, on_path, "--socket", "/x", "ctl", "bo") == ["board"]  # an option's value skipped
    assert bash_complete(cli, on_path, "ctl", "board", "--s") == ["--socket", "--state"]
    assert bash_complete(cli, on_path, "images", "build", "") == ["sandbox", "daemon", "proxy", "dind"]


def test_bash_asks_the_daemon_for_ids_and_states(cli: CliEnv, on_path: dict[str, str],
                                                 fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, filter_board()))
    assert sorted(bash_complete(cli, on_path, "ctl", "show", "")) == sorted([
        "a0000001", "a0000001-1", "a0000001-2", "b0000002", "b0000002-1", "c0000003", "c0000003-1"])
    assert bash_complete(cli, on_path, "ctl", "diff", "a") == ["a0000001-1", "a0000001-2"]  # attempts only
    assert bash_complete(cli, on_path, "ctl", "compare", "b") == ["b0000002"]  # cards only
    assert bash_complete(cli, on_path, "ctl", "comment", "a0000001-1", "") == []  # the id is given already
    assert "paused" in bash_complete(cli, on_path, "ctl", "board", "--state", "")  # the daemon's states


def test_with_no_daemon_completion_is_quietly_nothing(cli: CliEnv, on_path: dict[str, str]) -> None:
    assert bash_complete(cli, on_path, "ctl", "show", "") == []
    listed = cli.run("completion", "--list", "ids")
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")


def test_ids_that_are_not_one_plain_word_are_not_offered(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    board = filter_board()
    board["columns"][0]["cards"][0]["id"] = "c0000003 rm -rf"
    board["columns"][1]["cards"][0]["id"] = "b\x1b[2J"
    fake_daemon.on("GET", "/v1/board", (200, board))
    listed = cli.run("completion", "--list", "cards")
    assert listed.stdout.split() == ["a0000001"]


def test_every_verb_and_option_is_in_the_scripts(cli: CliEnv) -> None:
    tree = levels(build_parser())
    board = next(level for level in tree if level.path == "kilod ctl board")
    assert {"--repo", "--model", "--state", "--text", "--all", "--watch"} <= set(board.options)
    assert board.valued["--state"] == "states" and board.valued["--repo"] == "dir"
    bash, fish = script(cli, "bash").read_text(), script(cli, "fish").read_text()
    for level in tree:
        for verb in level.verbs:
            assert verb in bash and f"-a {verb} " in fish, (level.path, verb)


def test_zsh_registers_the_completion(cli: CliEnv) -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed")
    source = shlex.quote(str(script(cli, "zsh")))
    probe = f"autoload -U compinit && compinit -u; source {source}; print -r -- $_comps[kilod]"
    done = subprocess.run([zsh, "-f", "-c", probe], capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS,
                          env=cli.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "_bash_complete -o default -F _kilod"


def test_fish_completes_verbs_options_and_ids(cli: CliEnv, on_path: dict[str, str], fake_daemon: FakeDaemon) -> None:
    fish = shutil.which("fish")
    if fish is None:
        pytest.skip("fish is not installed")
    fake_daemon.on("GET", "/v1/board", (200, filter_board()))
    path = shlex.quote(str(script(cli, "fish")))

    def complete(line: str) -> list[str]:
        done = subprocess.run([fish, "--no-config", "-c", f"source {path}; complete -C {shlex.quote(line)}"],
                              capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, env=on_path)
        assert done.returncode == 0, done.stderr
        return [line.split("\t")[0] for line in done.stdout.splitlines()]

    assert complete("kilod ctl bo") == ["board"]
    assert complete("kilod ctl board --st") == ["--state"]
    assert complete("kilod ctl diff b") == ["b0000002-1"]
    assert "paused" in complete("kilod ctl board --state ")
