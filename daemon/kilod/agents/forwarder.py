"""The gateway forwarder: a socat sidecar in the attempt's network namespace.

Why a sidecar and not a socket in the agent's container: the agent container keeps
`network=none` and holds nothing but an ordinary `http://127.0.0.1:PORT` base URL and its
attempt's token. The sidecar joins the attempt container's network namespace
(`network_mode=container:<id>`), listens on 127.0.0.1:PORT there, and forwards each
connection to the attempt's gateway unix socket, whose directory is mounted into the
sidecar only. So the agent can reach its own gateway and nothing else: no socket file to
point elsewhere, no route out, and another attempt's container shares neither the
namespace nor the mount. Nothing inside the agent's image is needed (a repository's own
image works), and the same holds when the card has a network (the namespace then also
has a bridge; 127.0.0.1 is still its own) and under Docker-in-Docker (the socket lives
in the data dir, which the engine sees at the same path).

The sidecar is the existing tool socat in kilod's own sandbox image, hardened like an
attempt container (no capabilities, no new privileges, read-only root, small limits),
labelled like it (the reconciler removes it with its attempt) and named
`kilod-<attempt>-gateway`. A namespace dies with its container: when the attempt
container was re-created or restarted, the sidecar is replaced. While the daemon is down (a
kill -9, a pod's container restart) a connection waits for the socket to come back, and the
next daemon keeps that sidecar, so the agent's call goes on rather than failing.

Blocking (docker-py): call from a thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from kilod.errors import Conflict, Unavailable
from kilod.sandbox.base import LABEL_ATTEMPT, LABEL_CARD, LABEL_INSTANCE
from kilod.sandbox.docker import DockerSandbox

PORT = 41414                        # in the attempt's own namespace: nothing else to collide with
SOCKET_DIR = "/run/kilod-gateway"   # where the attempt's gateway socket directory is mounted (sidecar only)
LABEL_ROLE = "kilod.role"
LABEL_TARGET = "kilod.forwards-to"
BASE_URL = f"http://127.0.0.1:{PORT}"
RECONNECT_SECONDS = 120             # how long a connection waits for the gateway's socket (a daemon restart)


def forwarder_name(attempt_id: str) -> str:
    return f"kilod-{attempt_id}-gateway"


@dataclass(frozen=True)
class ForwarderSpec:
    attempt_id: str
    card_id: str
    instance: str
    container_id: str     # the attempt's container, whose network namespace the sidecar joins
    socket: Path          # the attempt's gateway socket on the engine's host
    image: str
    uid: int
    gid: int


def command(socket_name: str) -> list[str]:
    # retry: while the daemon restarts (a kill -9, a pod's container restart) nobody listens on the
    # socket; a connection waits for it instead of failing, so the agent's call simply takes longer
    return ["socat", f"TCP-LISTEN:{PORT},bind=127.0.0.1,reuseaddr,fork",
            f"UNIX-CONNECT:{SOCKET_DIR}/{socket_name},retry={RECONNECT_SECONDS},interval=1"]


def _started(container: Container) -> datetime:
    """When the container last started (Docker gives nanoseconds; Python parses microseconds)."""
    stamp = str(container.attrs["State"]["StartedAt"]).rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC) + timedelta(microseconds=int((fraction + "000000")[:6]))


def _still_serves(sidecar: Container, target: Container, spec: ForwarderSpec) -> bool:
    """A sidecar left by a daemon that was killed is kept when it still bridges this attempt: running,
    in the namespace of the container as it runs now (started after it), and seeing the socket the
    gateway just made (the directory was kept). Replacing it would cut the agent's call it holds."""
    if sidecar.status != "running" or target.status != "running":
        return False
    if (sidecar.labels or {}).get(LABEL_TARGET) != str(target.id) or _started(sidecar) < _started(target):
        return False
    try:
        probe = sidecar.exec_run(["test", "-S", f"{SOCKET_DIR}/{spec.socket.name}"], user=f"{spec.uid}:{spec.gid}")
    except docker.errors.APIError:
        return False
    return probe.exit_code == 0


def ensure_forwarder(sandbox: DockerSandbox, spec: ForwarderSpec) -> str:
    """Start the sidecar for this attempt container (replacing an earlier one that no longer bridges
    it); returns its id."""
    client = sandbox.client
    name = forwarder_name(spec.attempt_id)
    try:
        target = client.containers.get(spec.container_id)
    except docker.errors.NotFound:
        raise Unavailable(f"the attempt's container {spec.container_id[:12]} is gone") from None
    existing = _get(sandbox, name)
    if existing is not None:
        labels = existing.labels or {}
        if labels.get(LABEL_ATTEMPT) != spec.attempt_id or labels.get(LABEL_INSTANCE) != spec.instance:
            raise Conflict(f"a container named {name} exists but is not this attempt's; remove it by hand")
        if _still_serves(existing, target, spec):
            return str(existing.id)
        # Otherwise a new one: the old one's namespace may have died with a re-created container, and
        # its mount may hold a socket directory the gateway has since removed and made anew.
        existing.remove(force=True)
    if not sandbox.image_present(spec.image):
        raise Unavailable(f"the forwarder image '{spec.image}' is not in the Docker engine; build it with "
                          "`kilod images build`, or set KILOD_FORWARDER_IMAGE to an image with socat that the "
                          "engine has (with the Helm chart's dind engine: one in docker.dind.pullImages)")
    try:
        sidecar = client.containers.run(
            spec.image,
            command=command(spec.socket.name),
            name=name,
            detach=True,
            labels={LABEL_ATTEMPT: spec.attempt_id, LABEL_CARD: spec.card_id, LABEL_INSTANCE: spec.instance,
                    LABEL_ROLE: "forwarder", LABEL_TARGET: str(target.id)},
            user=f"{spec.uid}:{spec.gid}",
            network_mode=f"container:{target.id}",
            mounts=[Mount(SOCKET_DIR, str(spec.socket.parent), type="bind", read_only=True)],
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            init=True,
            mem_limit="64m",
            pids_limit=64,
            nano_cpus=int(0.5e9),
        )
    except docker.errors.APIError as exc:
        raise Unavailable(f"cannot start the gateway forwarder {name}: {exc.explanation or exc}") from exc
    return str(sidecar.id)


def remove_forwarder(sandbox: DockerSandbox, attempt_id: str) -> None:
    existing = _get(sandbox, forwarder_name(attempt_id))
    if existing is not None and (existing.labels or {}).get(LABEL_ROLE) == "forwarder":
        with contextlib.suppress(docker.errors.NotFound):  # the reconciler may have been quicker
            existing.remove(force=True)


def _get(sandbox: DockerSandbox, name: str) -> Container | None:
    try:
        return sandbox.client.containers.get(name)
    except docker.errors.NotFound:
        return None
