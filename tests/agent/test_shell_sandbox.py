"""The shell tool in a real container: state that persists, cancel that kills, a crash that is not re-run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod.agent.shell import shell_script
from kilod.agent.tools import ToolRunner
from tests.agent.sandboxed import processes, sandboxed_tools, wait_until

# how Sandbox.exec runs every command: under timeout, which leads the command's process group
UNDER_TIMEOUT = 'exec timeout -k 5 900 sh -c "$0"'


@pytest.fixture
def runner(tmp_path: Path, sandbox_image: str) -> Iterator[ToolRunner]:
    with sandboxed_tools(tmp_path, sandbox_image) as tools:
        yield tools


async def shell(runner: ToolRunner, command: str, call_id: str = "") -> str:
    return (await runner.run("shell", json.dumps({"command": command}), call_id)).output


async def test_the_working_directory_and_exported_variables_persist_between_calls(runner: ToolRunner) -> None:
    first = await shell(runner, "mkdir -p sub/deeper && cd sub && export GREETING='hello there' && LOCAL=1 && "
                                "echo \"in $(pwd)\"")
    assert first == "exit code 0\nin /workspace/sub\n"

    second = await shell(runner, 'pwd; echo "$GREETING/${LOCAL:-unset}"; cd deeper')
    assert second == "exit code 0\n/workspace/sub\nhello there/unset\n"

    third = await shell(runner, "pwd; exit 3")     # an explicit exit still saves the state
    assert third == "exit code 3\n/workspace/sub/deeper\n"
    assert await shell(runner, "pwd") == "exit code 0\n/workspace/sub/deeper\n"

    assert await shell(runner, "cd /nonexistent-dir") != ""   # a failed cd leaves the directory as it was
    assert await shell(runner, "pwd") == "exit code 0\n/workspace/sub/deeper\n"


async def test_cancelling_a_call_kills_its_processes_in_the_container(runner: ToolRunner) -> None:
    task = asyncio.create_task(shell(runner, "sleep 300 & sleep 301; echo never", "call_cancel"))
    assert await asyncio.to_thread(wait_until, lambda: any("sleep 301" in p for p in processes(runner)))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    left = processes(runner)
    assert not [p for p in left if "sleep 30" in p], left   # both the command and what it started in background


async def test_a_call_orphaned_by_a_crash_is_waited_for_and_reported_not_run_again(runner: ToolRunner) -> None:
    # what a killed daemon leaves behind: the call's exec running in the container with nobody reading it
    script = shell_script("sleep 2; echo ran >> runs.txt; echo finished-output", "call_orphan")
    container = runner.sandbox.client.containers.get(runner.container_id)
    container.exec_run(["sh", "-c", UNDER_TIMEOUT, script], detach=True, workdir="/workspace")
    assert await asyncio.to_thread(wait_until, lambda: any("sleep 2" in p for p in processes(runner)))

    ended, output = await runner.orphan("call_orphan")

    assert (ended, output) == ("exit 0", "finished-output\n")
    assert await shell(runner, "cat /workspace/runs.txt") == "exit code 0\nran\n"   # once


async def test_an_orphan_that_outlives_the_shell_timeout_is_killed(tmp_path: Path, sandbox_image: str) -> None:
    with sandboxed_tools(tmp_path, sandbox_image, shell_timeout=2) as runner:
        container = runner.sandbox.client.containers.get(runner.container_id)
        container.exec_run(["sh", "-c", UNDER_TIMEOUT, shell_script("echo started; sleep 600", "call_slow")],
                           detach=True, workdir="/workspace")
        assert await asyncio.to_thread(wait_until, lambda: any("sleep 600" in p for p in processes(runner)))

        ended, output = await runner.orphan("call_slow")

        assert (ended, output) == ("killed", "started\n")
        assert not [p for p in processes(runner) if "sleep 600" in p]


async def test_an_orphan_reads_only_its_own_call_never_the_next_calls_output(runner: ToolRunner) -> None:
    # the state files are the latest call's: a call id they do not name learns nothing from them
    assert await shell(runner, "echo first-output; exit 4", "call_first") == "exit code 4\nfirst-output\n"
    assert await runner.orphan("call_first") == ("exit 4", "first-output\n")

    await shell(runner, "echo second-output", "call_second")

    assert await runner.orphan("call_first") == ("unknown", "")
    assert await runner.orphan("call_second") == ("exit 0", "second-output\n")
    assert await runner.abandon("call_first") is False   # nothing of it runs, and nothing else is killed
