"""A real sandbox container for tool tests: labelled with a test instance, removed by that label."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kilod.agent.tools import ToolRunner
from kilod.sandbox.base import ContainerSpec
from kilod.sandbox.docker import DockerSandbox
from tests.kilod_testing import new_instance, remove_labelled

UID = 1000


@contextmanager
def sandboxed_tools(tmp_path: Path, image: str, shell_timeout: float = 30.0) -> Iterator[ToolRunner]:
    worktree, git_dir = tmp_path / "work", tmp_path / "gitdir"
    worktree.mkdir()
    git_dir.mkdir()
    (worktree / ".git").write_text(f"gitdir: {git_dir}\n")
    if os.getuid() == 0:
        os.chown(worktree, UID, UID)
    instance = new_instance()
    sandbox = DockerSandbox()
    spec = ContainerSpec(name=f"kilod-{instance}", image=image, attempt_id=instance, card_id="tools", instance=instance,
                         uid=UID, gid=UID, worktree=str(worktree), git_pointer=str(worktree / ".git"),
                         repo_git_dir=str(git_dir), network=False, memory_limit="512m", cpu_limit=1.0,
                         pids_limit=256)
    try:
        container_id = sandbox.ensure(spec)
        yield ToolRunner(sandbox, container_id, UID, UID, shell_timeout=shell_timeout, output_limit=16_000)
    finally:
        remove_labelled(instance)


def processes(runner: ToolRunner) -> list[str]:
    """Command lines of the processes in the runner's container (the image has no ps)."""
    script = 'for f in /proc/[0-9]*/cmdline; do tr "\\0\\n" "  " < "$f" 2>/dev/null; echo; done'
    output = runner.sandbox.exec(runner.container_id, script, 30).output
    return [line.strip() for line in output.splitlines() if line.strip()]


def wait_until(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.1)
    return False
