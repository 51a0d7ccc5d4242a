"""The desk's doors into a worktree: the attempt's folder in an editor, a shell in the sandbox
(or on the host), each after a warning about the files the agent changed that can run code.

Standard library only at import time. Messages go to stderr; failures raise `CliError`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from kilod_cli.client import ApiError, Client, CliError
from kilod_cli.desk import EXIT_FAILURE, EXIT_OK, attempt_path, say
from kilod_cli.text import visible

DEFAULT_EDITOR = "code --new-window {path}"
DEFAULT_HOST_SHELL = "/bin/sh"
# Inside the sandbox: bash when the image has it, sh otherwise (an image needs only sh).
SANDBOX_SHELL = ["sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]
NESTED_REPOSITORY = "nested repository: its own .git can set git config and hooks that run when git runs in it"


# -- risks ---------------------------------------------------------------


def flagged_paths(diff: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, why) for everything in a diff that can run code on a person's machine later."""
    flagged: list[tuple[str, str]] = []
    named: set[str] = set()
    for file in diff.get("files") or []:
        reasons = [str(r) for r in file.get("risks") or []]
        if reasons:
            path = str(file["path"])
            if file.get("status") == "deleted":
                path += " (deleted)"
            flagged.append((path, "; ".join(reasons)))
            named.update(reasons)
    for nested in diff.get("nested_repositories") or []:
        flagged.append((str(nested), NESTED_REPOSITORY))
    named.add("nested repository")
    # a risk the daemon reports for the whole diff that no file above accounts for
    flagged.extend(("(this attempt)", str(risk)) for risk in diff.get("risks") or [] if str(risk) not in named)
    return flagged


def warn_about(flagged: list[tuple[str, str]], risk: str) -> None:
    """A warning block on stderr: `risk` ("opening this folder in an editor can run code"), then each path and why."""
    if not flagged:
        return
    width = max(len(visible(path)) for path, _ in flagged)
    lines = [f"kilod: warning: {risk}: the agent changed files that editors, git or build tools act on; "
             "read them first (kilod ctl diff):"]
    lines += [f"  {visible(path):<{width}}  {visible(why)}" for path, why in flagged]
    say("\n".join(lines))


def _worktree_of(client: Client, attempt_id: str) -> tuple[dict[str, Any], Path]:
    attempt: dict[str, Any] = client.get(attempt_path(attempt_id))
    worktree = Path(str(attempt.get("worktree") or ""))
    if not attempt.get("worktree") or not worktree.is_dir():
        raise CliError(f"attempt {attempt_id} has no worktree on this machine (state: {attempt.get('state')}; "
                       f"expected at {worktree})")
    return attempt, worktree


# -- open ----------------------------------------------------------------


def editor_command(template: str, path: Path) -> list[str]:
    """KILOD_EDITOR split like a shell would; `{path}` replaced, or the path appended if absent."""
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise CliError(f"KILOD_EDITOR is not a valid command line ({exc}): {template}") from None
    if not argv:
        raise CliError("KILOD_EDITOR is empty; set it to an editor command, e.g. 'code --new-window {path}'")
    if any("{path}" in arg for arg in argv):
        return [arg.replace("{path}", str(path)) for arg in argv]
    return [*argv, str(path)]


def open_editor(client: Client, attempt_id: str) -> int:
    _, worktree = _worktree_of(client, attempt_id)
    warn_about(flagged_paths(client.get(attempt_path(attempt_id, "diff"))),
               "opening this folder in an editor can run code")
    argv = editor_command(os.environ.get("KILOD_EDITOR") or DEFAULT_EDITOR, worktree)
    print(worktree, flush=True)
    if shutil.which(argv[0]) is None:
        say(f"kilod: editor '{argv[0]}' not found (set KILOD_EDITOR); open the worktree yourself:\n"
             f"  {shlex.join(argv)}")
        return EXIT_OK
    try:
        done = subprocess.run(argv, check=False)
    except OSError as exc:
        raise CliError(f"could not run {shlex.join(argv)}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise CliError(f"the editor exited with code {done.returncode}: {shlex.join(argv)}")
    return EXIT_OK


# -- shell ---------------------------------------------------------------


def _exec(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    """Become `argv` (its TTY, signals and exit code are its own). Returns only on failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if cwd is not None:
            os.chdir(cwd)
        if env is None:
            os.execvp(argv[0], argv)
        else:
            os.execvpe(argv[0], argv, env)
    except OSError as exc:
        raise CliError(f"could not run {argv[0]}: {exc.strerror or exc}") from None
    return EXIT_FAILURE  # not reached: exec replaced this process


def shell(client: Client, attempt_id: str, host: bool) -> int:
    if host:
        attempt, worktree = _worktree_of(client, attempt_id)
        with contextlib.suppress(ApiError):  # the warning is a courtesy here; the shell is what was asked for
            warn_about(flagged_paths(client.get(attempt_path(attempt_id, "diff"))),
                       "a shell in this folder can run code (a prompt that runs git, direnv, make, ...)")
        program = os.environ.get("SHELL") or DEFAULT_HOST_SHELL
        say(f"shell on the host in {worktree} (attempt {attempt['id']}); exit to leave")
        return _exec([program], cwd=worktree, env={**os.environ, "KILOD_ATTEMPT": str(attempt["id"])})
    docker = shutil.which("docker")
    if docker is None:
        raise CliError("docker is not on PATH; install the Docker CLI to open a shell in the sandbox "
                       "(or use --host for a shell in the worktree on this machine)")
    target = client.post(attempt_path(attempt_id, "shell"))
    flags = "-it" if sys.stdin.isatty() else "-i"
    argv = ["docker", "exec", flags, "-u", str(target["user"]), "-w", str(target["workdir"]),
            str(target["container"]), *SANDBOX_SHELL]
    say(f"shell in container {target['container']} as {target['user']} in {target['workdir']} "
         f"(the worktree {target['worktree']}); exit to leave")
    return _exec(argv)
