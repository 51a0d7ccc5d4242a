"""Running git on the host without letting a worktree configure or run anything.

The agent writes files that kilod later reads, so git here never takes its cue from
the worktree: every command names its git dir (and work tree) explicitly, hooks and
fsmonitor are off, there is no pager and no external diff or textconv.

A non-zero exit raises `GitFailed` with git's own exit code and stderr; what that
means to kilod (a conflict, a missing thing, git being unusable) is decided once,
in `kilod.git.repository`. Questions whose "no" is an exit code (is this ref there?
is this an ancestor?) pass `accept=` and read the code instead. Blocking: call from
a thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Config that makes git inert with respect to anything planted in a worktree.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.untrackedCache=false",
    "core.quotePath=false",
    "diff.external=",
    "protocol.file.allow=user",
)
SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_EXTERNAL_DIFF": "",
    "GIT_ATTR_NOSYSTEM": "1",
    "LANGUAGE": "C",   # git's messages in English, whatever the host's locale
    "LC_ALL": "C",
}
# git dies with the daemon (PR_SET_PDEATHSIG): a `read-tree -m -u` orphaned by a kill -9 would
# otherwise go on writing the user's checkout while the next start repairs it.
TIED_TO_DAEMON = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
# Paths are bytes on disk; text here keeps undecodable bytes as surrogates so they round-trip.
ENCODING = "utf-8"
ERRORS = "surrogateescape"


class GitFailed(Exception):
    """git exited with a code the caller did not expect."""

    def __init__(self, exit_code: int, stderr: str, args: tuple[str, ...]) -> None:
        self.exit_code = exit_code
        self.stderr = stderr
        self.git_args = args
        super().__init__(f"git {self.command} exited {exit_code}: {stderr or '(no message)'}")

    @property
    def command(self) -> str:
        """The git subcommand that failed (`update-ref`, `worktree`, …)."""
        return self.git_args[0] if self.git_args else ""


@dataclass(frozen=True)
class GitResult:
    exit_code: int
    stdout: str


def git_command(*args: str, git_dir: Path | None = None, work_tree: Path | None = None,
                config: tuple[str, ...] = ()) -> list[str]:
    """A git command line with the safe config, an explicit git dir and work tree."""
    command = ["git"]
    for item in (*SAFE_CONFIG, *config):
        command += ["-c", item]
    if git_dir is not None:
        command.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        command.append(f"--work-tree={work_tree}")
    return command + list(args)


def run(*args: str, git_dir: Path | None = None, work_tree: Path | None = None, cwd: Path | None = None,
        env: dict[str, str] | None = None, stdin: str | bytes | None = None, config: tuple[str, ...] = (),
        accept: tuple[int, ...] = (0,)) -> GitResult:
    """Run git; its exit code and stdout, or GitFailed if the code is not in `accept`."""
    command = git_command(*args, git_dir=git_dir, work_tree=work_tree, config=config)
    data = stdin.encode(ENCODING, ERRORS) if isinstance(stdin, str) else stdin
    done = subprocess.run(TIED_TO_DAEMON + command, input=data, capture_output=True, cwd=cwd,
                          stdin=subprocess.DEVNULL if data is None else None,
                          env={**os.environ, **SAFE_ENV, **(env or {})})
    if done.returncode not in accept:
        raise GitFailed(done.returncode, done.stderr.decode(ENCODING, "replace").strip(), args)
    return GitResult(done.returncode, done.stdout.decode(ENCODING, ERRORS))


def run_git(*args: str, git_dir: Path | None = None, work_tree: Path | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None, stdin: str | bytes | None = None,
            config: tuple[str, ...] = ()) -> str:
    """git's stdout; GitFailed on any non-zero exit."""
    return run(*args, git_dir=git_dir, work_tree=work_tree, cwd=cwd, env=env, stdin=stdin, config=config).stdout


def rev(git_dir: Path, ref: str) -> str | None:
    """The commit `ref` names, or None when it names none (absent branch, unknown name, not a commit)."""
    found = run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", git_dir=git_dir,
                accept=(0, 1))
    return found.stdout.strip() if found.exit_code == 0 else None


def is_ancestor(git_dir: Path, ancestor: str, descendant: str) -> bool:
    return run("merge-base", "--is-ancestor", ancestor, descendant, git_dir=git_dir, accept=(0, 1)).exit_code == 0


def config_value(git_dir: Path, key: str) -> str | None:
    """A config value as git sees it for this repository; None when unset (exit 1)."""
    found = run("config", "--get", key, git_dir=git_dir, accept=(0, 1))
    return (found.stdout.strip() or None) if found.exit_code == 0 else None
