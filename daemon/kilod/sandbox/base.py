"""What kilod needs from a sandbox backend, and the data it passes: the one interface the rest uses.

The daemon talks to sandboxes only through `Sandbox`; `kilod.sandbox.docker` is the
Docker implementation and the only module that imports docker-py. Another backend
(Kubernetes pods, say) is one more module implementing this protocol. Every method
blocks: call it from a thread. Deterministic names (`kilod-<attempt>`) make "already
exists" mean "adopt it"; labels are how a restarted daemon finds its sandboxes again,
and nothing unlabelled is ever removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal, Protocol

LABEL_ATTEMPT = "kilod.attempt"
LABEL_CARD = "kilod.card"
LABEL_INSTANCE = "kilod.instance"
WORKSPACE = "/workspace"

# git inside the sandbox: the repository belongs to someone else and is read-only.
SANDBOX_ENV = {
    "HOME": "/tmp",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "TERM": "dumb",
}


@dataclass(frozen=True)
class MountSpec:
    """One more mount beyond the worktree and the repository's git dir."""

    source: str                 # a host path (bind) or a volume name (volume)
    target: str
    read_only: bool = True
    kind: Literal["bind", "volume"] = "bind"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    attempt_id: str
    card_id: str
    instance: str
    uid: int
    gid: int
    worktree: str
    git_pointer: str
    repo_git_dir: str
    network: bool
    memory_limit: str
    cpu_limit: float
    pids_limit: int
    extra_labels: dict[str, str] = field(default_factory=dict)
    mounts: tuple[MountSpec, ...] = ()
    env: dict[str, str] = field(default_factory=dict)    # on top of SANDBOX_ENV
    network_mode: str | None = None   # a named network; None: "bridge" when `network`, else "none"

    def labels(self) -> dict[str, str]:
        return {
            LABEL_ATTEMPT: self.attempt_id,
            LABEL_CARD: self.card_id,
            LABEL_INSTANCE: self.instance,
            **self.extra_labels,
        }

    def environment(self) -> dict[str, str]:
        return {**SANDBOX_ENV, **self.env}

    def resolved_network_mode(self) -> str:
        return self.network_mode or ("bridge" if self.network else "none")


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str          # stdout and stderr interleaved
    timed_out: bool = False


# Receives a running command's output as it comes (text; a chunk may end mid-line).
OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class SandboxInfo:
    id: str
    name: str
    attempt_id: str
    status: str


class Sandbox(Protocol):
    def ensure(self, spec: ContainerSpec) -> str:
        """Create and start the sandbox, or adopt and start the one already there; its id."""

    def exec(self, container_id: str, command: str, timeout: float, user: str | None = None,
             on_output: OutputSink | None = None) -> ExecResult:
        """Run `command` with sh in the workspace; a timeout is an ExecResult (the command killed), not an error.

        With `on_output`, the output (stdout and stderr as written) is also handed to it
        while the command runs, as text, from the calling thread; the result is the same.
        """

    def copy_in(self, container_id: str, path: str, data: bytes, uid: int, gid: int, mode: int = 0o644) -> None:
        """Write a file (folders made as needed), owned by uid:gid."""

    def copy_out(self, container_id: str, path: str, limit: int) -> tuple[bytes, bool]:
        """Up to `limit` bytes of a regular file, and whether it was cut."""

    def file_mode(self, container_id: str, path: str) -> int | None:
        """Permission bits of a file, or None if it does not exist."""

    def stop(self, name: str) -> bool:
        """Stop a labelled sandbox, keeping it (and its files); False if it was not there."""

    def remove(self, name: str) -> bool:
        """Remove a labelled sandbox; False if it was already gone."""

    def is_running(self, container_id: str) -> bool:
        """Whether the sandbox with this id (not merely one of its name) is there and running."""

    def list_labelled(self, instance: str) -> list[SandboxInfo]:
        """Every sandbox this daemon instance labelled."""

    def running_ids(self, instance: str) -> set[str]:
        """The ids of this daemon instance's running sandboxes: one request, whatever their number."""


def absolute(path: str) -> str:
    """Paths the agent gives are relative to the workspace unless absolute."""
    p = PurePosixPath(path)
    return str(p if p.is_absolute() else PurePosixPath(WORKSPACE) / p)
