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


def _file(kind: str, key: str) -> str:
    return shlex.quote(f"{STATE_DIR}/{kind}-{key}")


def shell_script(command: str, key: str) -> str:
    """What `Sandbox.exec` runs (with sh, under timeout) for one shell call.

    Besides streaming its output, the call leaves in the container its process group
    (`pgid-KEY`, removed when it ends), its output (`out-KEY`) and exit code
    (`status-KEY`) until the next call: a daemon that crashed meanwhile can learn how
    the call ended without running it again.
    """
    body = "\n".join([
        f"__k={STATE_DIR}",
        '[ -f "$__k/env" ] && . "$__k/env" >/dev/null 2>&1',
        'cd "$(cat "$__k/cwd" 2>/dev/null || echo /workspace)" 2>/dev/null || cd /workspace',
        "trap '__s=$?; pwd > \"$__k/cwd\" 2>/dev/null; export -p > \"$__k/env\" 2>/dev/null; exit $__s' EXIT",
        command,
    ])
    quoted = shlex.quote(body)
    return "\n".join([
        f'mkdir -p {STATE_DIR} && rm -f {STATE_DIR}/out-* {STATE_DIR}/status-* {STATE_DIR}/pgid-*',
        f'echo "$PPID" > {_file("pgid", key)}',
        f"{{ if command -v bash >/dev/null 2>&1; then bash -c {quoted}; else sh -c {quoted}; fi; "
        f'echo "$?" > {_file("status", key)}; }} 2>&1 | tee {_file("out", key)}',
        f's=$(cat {_file("status", key)} 2>/dev/null || echo 1); rm -f {_file("pgid", key)}; exit "$s"',
    ])


def kill_script(key: str) -> str:
    """Kills the call's process group if it is still there; prints `killed` if it was."""
    pgid = _file("pgid", key)
    return (
        f"p=$(cat {pgid} 2>/dev/null); rm -f {pgid}; "
        'if [ -n "$p" ] && [ "$p" -gt 1 ] 2>/dev/null && kill -0 "-$p" 2>/dev/null; '
        'then kill -KILL "-$p" && echo killed; fi'
    )


def orphan_script(key: str, wait: int, tail: int) -> str:
    """For a call whose daemon died: wait up to `wait` s for it to end (else kill it), then say how it ended.

    Prints `ended: exit N`, `ended: killed` or `ended: unknown`, a line `---`, then the tail of its output.
    """
    pgid, status, out = _file("pgid", key), _file("status", key), _file("out", key)
    running = f'[ -f {pgid} ] && [ -n "$p" ] && [ "$p" -gt 1 ] 2>/dev/null && kill -0 "-$p" 2>/dev/null'
    return "\n".join([
        f"p=$(cat {pgid} 2>/dev/null); i=0",
        f"while {running} && [ $i -lt {int(wait)} ]; do sleep 1; i=$((i+1)); done",
        f'if {running}; then kill -KILL "-$p"; echo "ended: killed"',
        f'elif [ -f {status} ]; then echo "ended: exit $(cat {status})"; else echo "ended: unknown"; fi',
        f"echo ---; tail -c {int(tail)} {out} 2>/dev/null; true",
    ])


def reset_script() -> str:
    """Forget the saved directory and environment (a new attempt run starts clean)."""
    return f"rm -f {STATE_DIR}/cwd {STATE_DIR}/env"
