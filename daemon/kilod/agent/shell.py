"""The shell tool's scripts: a working directory and exported variables that persist, a killable process group.

Each call is a fresh `docker exec` (nothing lives between calls but files), so the
persistence is Codex/Claude Code style: the script restores the directory and the
exported environment the previous call left in /tmp/.kilod-shell, runs the command
in that same shell (bash when the image has it, else sh), and saves both on exit.

The command runs under `timeout`, which makes itself a process-group leader; the
script records that group id, so cancelling an attempt (or finding a call orphaned
by a daemon crash) kills the command and everything it started, in the container.
"""

from __future__ import annotations

import hashlib
import re
import shlex

STATE_DIR = "/tmp/.kilod-shell"
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def call_key(call_id: str) -> str:
    """A file-name-safe key for a tool call's id (ids come from the model's provider)."""
    if _SAFE_KEY.match(call_id) and not call_id.startswith("."):
        return call_id
    return "h" + hashlib.sha256(call_id.encode()).hexdigest()[:32]


# The latest call's state, each file naming the call it belongs to (its key): `running` holds
# "PGID KEY" while the call runs (emptied when it ends), `status` "KEY CODE", `out` its output.
# Fixed names, overwritten by the next call, because removing the previous call's files would cost
# an `rm` (and `mkdir`) process before every command: ~6 ms per call here (bench/start_latency.py).
RUNNING, STATUS, OUT = (shlex.quote(f"{STATE_DIR}/{name}") for name in ("running", "status", "out"))


def _is_ours(key: str) -> str:
    """sh: true if the `running` or `status` file names this call (so `out` is its output)."""
    k = shlex.quote(key)
    return (f'{{ __r=; __s=; read -r __p __r 2>/dev/null <{RUNNING}; read -r __s __c 2>/dev/null <{STATUS}; '
            f'[ "$__r" = {k} ] || [ "$__s" = {k} ]; }}')


def _alive(key: str) -> str:
    """sh: a function `alive`, true while the call's process group runs; `$p` is its id."""
    return (f'alive() {{ p=; __r=; read -r p __r 2>/dev/null <{RUNNING}; [ "$__r" = {shlex.quote(key)} ] && '
            '[ "$p" -gt 1 ] 2>/dev/null && kill -0 "-$p" 2>/dev/null; }')


def shell_script(command: str, key: str) -> str:
    """What `Sandbox.exec` runs (with sh, under timeout) for one shell call.

    Besides streaming its output, the call leaves in the container its process group
    (in `running` until it ends), its output (`out`) and exit code (`status`) until the
    next call: a daemon that crashed meanwhile can learn how the call ended without
    running it again. Before the command only shell builtins run (no process but bash).
    """
    body = "\n".join([
        f"__k={STATE_DIR}",
        '[ -f "$__k/env" ] && . "$__k/env" >/dev/null 2>&1',
        # `read`, not `$(cat …)`: a fork and an exec fewer before every command
        '__d=; IFS= read -r __d 2>/dev/null <"$__k/cwd"; cd "${__d:-/workspace}" 2>/dev/null || cd /workspace',
        "trap '__s=$?; pwd > \"$__k/cwd\" 2>/dev/null; export -p > \"$__k/env\" 2>/dev/null; exit $__s' EXIT",
        command,
    ])
    quoted, k = shlex.quote(body), shlex.quote(key)
    return "\n".join([
        f"[ -d {STATE_DIR} ] || mkdir -p {STATE_DIR}",
        f'echo "$PPID" {k} >{RUNNING}',
        f"{{ if command -v bash >/dev/null 2>&1; then bash -c {quoted}; else sh -c {quoted}; fi; "
        f'echo {k} "$?" >{STATUS}; }} 2>&1 | tee {OUT}',
        f's=1; __s=; read -r __s __c 2>/dev/null <{STATUS}; [ "$__s" = {k} ] && s=$__c; true >{RUNNING}; exit "$s"',
    ])


def kill_script(key: str) -> str:
    """Kills the call's process group if it is still there; prints `killed` if it was."""
    return f'{_alive(key)}\nif alive; then true >{RUNNING}; kill -KILL "-$p" && echo killed; fi'


def orphan_script(key: str, wait: int, tail: int) -> str:
    """For a call whose daemon died: wait up to `wait` s for it to end (else kill it), then say how it ended.

    Prints `ended: exit N`, `ended: killed` or `ended: unknown`, a line `---`, then the tail of its output.
    """
    return "\n".join([
        _alive(key),
        f"i=0; while alive && [ $i -lt {int(wait)} ]; do sleep 1; i=$((i+1)); done",
        'if alive; then kill -KILL "-$p"; echo "ended: killed"',
        f'else __s=; read -r __s __c 2>/dev/null <{STATUS}',
        f'  if [ "$__s" = {shlex.quote(key)} ]; then echo "ended: exit $__c"; else echo "ended: unknown"; fi',
        "fi",
        f"echo ---; if {_is_ours(key)}; then tail -c {int(tail)} {OUT} 2>/dev/null; fi; true",
    ])


def reset_script() -> str:
    """Forget the saved directory and environment (a new attempt run starts clean)."""
    return f"rm -f {STATE_DIR}/cwd {STATE_DIR}/env"
