"""An agent process in the attempt's container that outlives the daemon.

It is started with `docker exec -d` under `setsid`, so it leads its own process group
and belongs to the container, not to the daemon: a `kill -9` of the daemon leaves it
running. A small sh wrapper records its pid (= its process group), sends its output to
files in the attempt's state dir and, when it ends, writes its exit status (write then
rename, so a half-written status is never read). The daemon reads those files on the
host side (the state dir is its own folder, bind-mounted), which is how it re-attaches
after a restart: the output is kept in a file, not only a pipe.

    <state>/runs/<key>/out    the agent's stdout (its JSON stream)
    <state>/runs/<key>/err    its stderr
    <state>/runs/<key>/pid    the process group id
    <state>/runs/<key>/exit   its exit status, once it has ended

Blocking (docker-py): call from a thread.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import docker.errors

from kilod.agents import statefiles
from kilod.agents.catalog import STATE_MOUNT
from kilod.errors import Unavailable
from kilod.sandbox.docker import DockerSandbox

# $1… is the agent's argv; KILOD_RUN the run folder as the container sees it
WRAPPER = (
    'echo $$ > "$KILOD_RUN/pid"; '
    '"$@" < /dev/null > "$KILOD_RUN/out" 2> "$KILOD_RUN/err"; '
    'echo $? > "$KILOD_RUN/exit.tmp"; mv "$KILOD_RUN/exit.tmp" "$KILOD_RUN/exit"'
)


@dataclass(frozen=True)
class RunFiles:
    """One launch's files, as the daemon (host) and the container see them.

    Read through `statefiles` (no link followed): the folder is the agent's to change.
    """

    host: Path
    key: str

    @property
    def root(self) -> Path:
        return self.host.parent.parent   # the attempt's state dir, which the daemon made

    @property
    def relative(self) -> str:
        return f"runs/{self.key}"

    @property
    def inside(self) -> str:
        return f"{STATE_MOUNT}/runs/{self.key}"

    @property
    def out(self) -> Path:
        return self.host / "out"

    @property
    def err(self) -> Path:
        return self.host / "err"

    def read(self, name: str) -> str | None:
        return statefiles.read_text(self.root, f"{self.relative}/{name}")

    def pid(self) -> int | None:
        text = (self.read("pid") or "").strip()
        return int(text) if text.isdigit() and int(text) > 1 else None

    def exit_status(self) -> int | None:
        text = self.read("exit")
        if text is None:
            return None
        text = text.strip()
        return int(text) if text.lstrip("-").isdigit() and len(text) < 12 else -1

    def started(self) -> bool:
        return (self.host / "launched").exists()

    def tail(self) -> Tail:
        return Tail(self.out, root=self.root)

    def stderr_tail(self, characters: int) -> str:
        """The end of the agent's stderr ("" when there is none to read)."""
        try:
            handle = statefiles.open_read(self.root, f"{self.relative}/err")
        except OSError:
            return ""
        with os.fdopen(handle, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - characters * 4))
            return file.read().decode("utf-8", errors="replace")[-characters:]


def run_files(state_dir: Path, key: str) -> RunFiles:
    return RunFiles(state_dir / "runs" / key, key)


class AgentProcess:
    def __init__(self, sandbox: DockerSandbox, container_id: str, user: str) -> None:
        self.sandbox = sandbox
        self.container_id = container_id
        self.user = user

    def start(self, files: RunFiles, argv: list[str], env: dict[str, str]) -> None:
        """Launch detached; `launched` is written first so a crash here never starts it twice."""
        statefiles.write_text(files.root, f"{files.relative}/launched", shlex.join(argv[:1]) + "\n")
        command = ["setsid", "sh", "-c", WRAPPER, "kilod-agent", *argv]
        try:
            container = self.sandbox.client.containers.get(self.container_id)
            container.exec_run(command, detach=True, user=self.user, workdir="/workspace",
                               environment={**env, "KILOD_RUN": files.inside})
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot start the agent in {self.container_id[:12]}: "
                              f"{exc.explanation or exc}") from exc

    def alive(self, pgid: int) -> bool:
        """Whether any process of the group still runs (False too when the container is gone)."""
        try:
            result = self.sandbox.exec(self.container_id, f"kill -0 -{pgid}", timeout=15, user=self.user)
        except Unavailable:
            return False
        return result.exit_code == 0

    def kill(self, pgid: int) -> None:
        """Kill the agent and everything it started, now.

        Its process group is not enough: an agent may start commands in sessions of their
        own (Codex runs each under a PTY). So the group is stopped first (nothing new is
        forked), every descendant is found through /proc and stopped, and then all of them
        are killed. The sandbox user's own processes: with every capability dropped, no
        other user could signal them.
        """
        with contextlib.suppress(Unavailable):  # a container that is gone took its processes with it
            self.sandbox.exec(self.container_id, KILL_TREE.replace("ROOT", str(int(pgid))), timeout=30,
                              user=self.user)


# POSIX sh, no ps/awk needed. /proc/<pid>/stat is "pid (comm) state ppid pgrp …": comm is the
# agent's to choose, so the fields are read after its last ") " (a state letter and numbers).
KILL_TREE = """
root=ROOT
kill -STOP -$root 2>/dev/null
all=" $root "
i=0
while [ $i -lt 50 ]; do
  i=$((i+1)); grew=0
  for s in /proc/[0-9]*/stat; do
    stat=$(cat "$s" 2>/dev/null) || continue
    pid=${stat%% *}
    set -- ${stat##*) }
    case "$all" in *" $pid "*) continue ;; esac
    case "$all" in *" $2 "*) ;; *) [ "$3" = "$root" ] || continue ;; esac
    kill -STOP "$pid" 2>/dev/null
    all="$all$pid "; grew=1
  done
  [ $grew = 0 ] && break
done
kill -KILL -$root 2>/dev/null
for pid in $all; do kill -KILL "$pid" 2>/dev/null; done
true
"""


class Tail:
    """Complete lines appended to a file since `offset` (a byte position).

    With `root`, the file is opened through `statefiles` from there (no link followed).
    """

    def __init__(self, path: Path, offset: int = 0, root: Path | None = None) -> None:
        self.path = path
        self.offset = offset
        self.root = root

    def _open(self) -> BinaryIO:
        if self.root is None:
            return self.path.open("rb")
        return os.fdopen(statefiles.open_read(self.root, str(self.path.relative_to(self.root))), "rb")

    def lines(self, limit: int = 4 << 20) -> list[tuple[int, str]]:
        """(offset after the line, line) for each whole line written since the last call."""
        try:
            with self._open() as handle:
                handle.seek(self.offset)
                chunk = handle.read(limit)
        except OSError:   # not there yet, or a link the agent put in its place
            return []
        out = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            out.append((self.offset + end + 1, chunk[start:end].decode("utf-8", errors="replace")))
            start = end + 1
        if start == 0 and len(chunk) >= limit:  # one giant line: take it whole rather than stall
            out.append((self.offset + len(chunk), chunk.decode("utf-8", errors="replace")))
            start = len(chunk)
        self.offset += start
        return out

    def rest(self) -> list[tuple[int, str]]:
        """Whatever is left once the writer has ended, an unterminated last line included."""
        lines = self.lines()
        try:
            with self._open() as handle:
                handle.seek(self.offset)
                tail = handle.read(4 << 20)
        except OSError:
            return lines
        if tail:
            self.offset += len(tail)
            lines.append((self.offset, tail.decode("utf-8", errors="replace")))
        return lines
