"""The Docker sandbox: one labelled, hardened container per attempt (see `kilod.sandbox.base`).

The only module that imports docker-py; its errors are mapped into kilod's error
tree here. Blocking: every method is called from a thread.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import secrets
import shlex
import tarfile
import threading
import time
from collections.abc import Callable
from functools import cached_property, partial
from pathlib import PurePosixPath

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount
from docker.utils import decode_json_header

from kilod.environments.egress import remove_network_if_unused
from kilod.errors import Conflict, Invalid, NotFound, Unavailable
from kilod.sandbox.base import (
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    WORKSPACE,
    ContainerSpec,
    ExecResult,
    OutputSink,
    SandboxInfo,
    absolute,
)
from kilod.sandbox.docker_exec import ExecClient, ExecError, engine_socket, exit_code_of

# PID 1 of every sandbox: sleeps until stopped, needs nothing but sh.
IDLE_COMMAND = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
# Seconds past an exec's timeout before the daemon stops reading it (its `timeout -k 5` ends it well before).
EXEC_GRACE = 30
# Pauses between asking an ended exec for its exit code again (~3 s in all): see settled_exit_code.
EXIT_CODE_PAUSES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5)


def settled_exit_code(exit_code: Callable[[], int | None]) -> int | None:
    """An ended exec's exit code, asked again while the engine has not recorded it yet (None: it never did).

    The output stream can end before the engine has processed the command's exit, and an
    inspect in between says "running, no exit code"; asked at once, the command looked
    timed out (an agent CLI's liveness check read a live agent as gone).
    """
    for pause in EXIT_CODE_PAUSES:
        code = exit_code()
        if code is not None:
            return code
        time.sleep(pause)
    return exit_code()


class DockerSandbox:
    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None
        self._has_shell: set[tuple[str, int, int]] = set()   # (image id, uid, gid) whose sh ran
        # Docker answers 204 to a remove that looked the container up before another remove finished it
        # (moby ContainerRm: "check if container wasn't deregistered by previous rm since Get"), so two
        # removes of one name in this process take turns: the second then sees it gone and says so.
        self._removing: dict[str, tuple[threading.Lock, int]] = {}   # name -> (its lock, removes holding it)
        self._removing_guard = threading.Lock()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=120)
                self._client.ping()
            except docker.errors.DockerException as exc:
                self._client = None
                raise Unavailable(f"cannot reach the Docker engine: {exc}") from exc
        return self._client

    def image_present(self, image: str) -> bool:
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    # -- lifecycle -----------------------------------------------------------

    def ensure(self, spec: ContainerSpec) -> str:
        """Create and start the container, or adopt and start the one already there."""
        container = self._by_name(spec.name)
        if container is None:
            container = self._create(spec)
        labels = container.labels or {}
        if labels.get(LABEL_ATTEMPT) != spec.attempt_id or labels.get(LABEL_INSTANCE) != spec.instance:
            raise Conflict(f"a container named {spec.name} exists but is not this attempt's; remove it by hand")
        if container.status != "running":
            try:
                container.start()
                # everything kilod runs inside goes through sh: an image without one fails here, clearly.
                # Once per image (by id: its content) and user; an exec is a good part of a start's latency
                shell = (str(container.attrs.get("Image", "")), spec.uid, spec.gid)
                detail = ""
                if shell not in self._has_shell:
                    probe = container.exec_run(["sh", "-c", "exit 0"], user=f"{spec.uid}:{spec.gid}")
                    detail = "" if probe.exit_code == 0 else f"sh exited {probe.exit_code}: {probe.output!r}"
                    if not detail and shell[0]:
                        self._has_shell.add(shell)
            except docker.errors.APIError as exc:
                detail = str(exc.explanation or exc)
            if detail:
                raise Unavailable(f"cannot start {spec.name}: {detail[:500]}; kilod needs sh in the image "
                                  f"({spec.image}): use a Debian-, Ubuntu- or Alpine-based one")
        return str(container.id)

    def _create(self, spec: ContainerSpec) -> Container:
        if not self.image_present(spec.image):
            raise Unavailable(
                f"sandbox image '{spec.image}' is not present; build it with `kilod images build`"
            )
        mounts = [
            Mount(WORKSPACE, spec.worktree, type="bind", read_only=False),
            Mount(f"{WORKSPACE}/.git", spec.git_pointer, type="bind", read_only=True),
            Mount(spec.repo_git_dir, spec.repo_git_dir, type="bind", read_only=True),
            *(Mount(m.target, m.source, type=m.kind, read_only=m.read_only) for m in spec.mounts),
        ]
        try:
            return self.client.containers.create(
                spec.image,
                command=IDLE_COMMAND,
                name=spec.name,
                hostname=spec.attempt_id[:63],
                labels=spec.labels(),
                user=f"{spec.uid}:{spec.gid}",
                working_dir=WORKSPACE,
                environment=spec.environment(),
                mounts=mounts,
                network_mode=spec.resolved_network_mode(),
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                init=True,
                privileged=False,
                mem_limit=spec.memory_limit,
                nano_cpus=int(spec.cpu_limit * 1e9),
                pids_limit=spec.pids_limit,
            )
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # created meanwhile: adopt it
                existing = self._by_name(spec.name)
                if existing is not None:
                    return existing
            raise Unavailable(f"cannot create container {spec.name}: {exc.explanation or exc}") from exc

    def _by_name(self, name: str) -> Container | None:
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    def _labelled(self, name: str, doing: str) -> Container | None:
        container = self._by_name(name)
        if container is not None and LABEL_ATTEMPT not in (container.labels or {}):
            raise Conflict(f"refusing to {doing} {name}: it carries no kilod label")
        return container

    def stop(self, name: str) -> bool:
        """Stop a container this daemon labelled, keeping it; False if it was not there."""
        container = self._labelled(name, "stop")
        if container is None:
            return False
        try:
            container.stop(timeout=10)
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot stop container {name}: {exc.explanation or exc}") from exc
        return True

    def remove(self, name: str) -> bool:
        """Remove a container this daemon labelled; False if it was already gone."""
        with self._removing_guard:
            lock, holders = self._removing.get(name, (threading.Lock(), 0))
            self._removing[name] = (lock, holders + 1)
        try:
            with lock:
                return self._remove(name)
        finally:
            with self._removing_guard:
                lock, holders = self._removing[name]
                if holders == 1:
                    del self._removing[name]
                else:
                    self._removing[name] = (lock, holders - 1)

    def _remove(self, name: str) -> bool:
        container = self._labelled(name, "remove")
        if container is None:
            return False
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            return False  # removed meanwhile (a discard and the reconciler race): gone is what we wanted
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "in progress" in str(exc.explanation or exc):
                return False  # someone else is removing it right now
            raise
        # an egress network (kilod.environments) goes with the last container on it
        remove_network_if_unused(self.client, (container.labels or {}).get(LABEL_ATTEMPT, ""))
        return True

    def is_running(self, container_id: str) -> bool:
        """Whether the container with this id (not merely one of its name) is there and running.

        A container being removed, dead or stopped counts as gone: what ran in it is gone too.
        """
        try:
            container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot inspect container {container_id[:12]}: {exc.explanation or exc}") from exc
        return str(container.status) == "running"

    def list_labelled(self, instance: str) -> list[SandboxInfo]:
        # an attempt's containers only (sandbox, egress proxy): not a cache volume's short-lived init container.
        # The list's own fields, without inspecting each container (what containers.list does): the reconciler
        # asks every few seconds, and 20 inspects each time are Python work holding the GIL the API needs
        listed = self.client.api.containers(all=True, filters={"label": [f"{LABEL_INSTANCE}={instance}",
                                                                         LABEL_ATTEMPT]})
        return [
            SandboxInfo(id=str(c["Id"]), name=str((c.get("Names") or ["/"])[0]).lstrip("/"),
                        attempt_id=(c.get("Labels") or {}).get(LABEL_ATTEMPT, ""), status=str(c.get("State", "")))
            for c in listed
        ]

    def running_ids(self, instance: str) -> set[str]:
        # the container guard's one question a second for all live attempts (kilod.container_guard)
        try:
            listed = self.client.api.containers(quiet=True, filters={"label": f"{LABEL_INSTANCE}={instance}",
                                                                     "status": "running"})
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot list the running containers: {exc.explanation or exc}") from exc
        return {str(c["Id"]) for c in listed}

    # -- running things inside ------------------------------------------------

    def exec(self, container_id: str, command: str, timeout: float, user: str | None = None,
             on_output: OutputSink | None = None) -> ExecResult:
        """Run `command` with sh in /workspace; output is stdout and stderr interleaved, streamed to `on_output`.

        The command's own `timeout` (coreutils, busybox) kills it, and its process group,
        after `timeout` seconds. The stream is read as it comes (Docker's multiplexed frames),
        so a caller sees a long command's output while it runs; the stream is closed
        EXEC_GRACE seconds later should it still be open (an image without `timeout`, or a
        background child holding the output open), so the daemon is never held forever.
        """
        seconds = max(1, int(timeout))
        # `timeout` when the image has it (coreutils, busybox); plain sh otherwise
        wrapper = (
            f'if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 {seconds} sh -c "$0"; fi; '
            'exec sh -c "$0"'
        )
        # a UTF-8 character may be split between two frames: decode incrementally
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts: list[str] = []

        def take(text: str) -> None:
            if text:
                parts.append(text)
                if on_output is not None:
                    on_output(text)

        # the container's own environment (ContainerSpec.environment) applies to every exec
        argv = ["sh", "-c", wrapper, command]
        run = self._exec_sdk if self._exec_client is None else self._exec_lean
        timed_out, exit_code = run(container_id, argv, user or "", seconds + EXEC_GRACE,
                                   lambda chunk: take(decoder.decode(chunk)))
        take(decoder.decode(b"", final=True))
        output = "".join(parts)
        if timed_out or exit_code is None:  # still running: not the command's own end
            return ExecResult(exit_code=-1, output=output, timed_out=True)
        return ExecResult(exit_code=exit_code, output=output, timed_out=exit_code in (124, 137))

    @cached_property
    def _exec_client(self) -> ExecClient | None:
        """Exec over the engine's unix socket (kilod.sandbox.docker_exec); None: through docker-py."""
        path = engine_socket()
        return None if path is None else ExecClient(path, self.client.api.api_version)

    def _exec_lean(self, container_id: str, argv: list[str], user: str, limit: float,
                   feed: Callable[[bytes], None]) -> tuple[bool, int | None]:
        """(timed out, exit code) of `argv` run in the container, its output fed as it comes."""
        client = self._exec_client
        assert client is not None
        try:
            exec_id = client.create(container_id, argv, WORKSPACE, user)
            try:
                for chunk in client.start(exec_id, time.monotonic() + limit):
                    feed(chunk)
            except TimeoutError:
                return True, None
            return False, settled_exit_code(partial(client.exit_code, exec_id))
        except ExecError as exc:
            if exc.status == 404:
                raise Unavailable(f"the attempt's container {container_id[:12]} is gone") from None
            raise Unavailable(f"exec failed: {exc}") from exc

    def _exec_sdk(self, container_id: str, argv: list[str], user: str, limit: float,
                  feed: Callable[[bytes], None]) -> tuple[bool, int | None]:
        """`_exec_lean` through docker-py, for an engine not on a unix socket; a watch thread for the limit."""
        api = self.client.api
        try:
            created = api.exec_create(container_id, argv, workdir=WORKSPACE, user=user)
            stream = api.exec_start(created["Id"], stream=True, demux=False)
        except docker.errors.NotFound:
            raise Unavailable(f"the attempt's container {container_id[:12]} is gone") from None
        except docker.errors.APIError as exc:
            raise Unavailable(f"exec failed: {exc.explanation or exc}") from exc
        watched_out = threading.Event()

        def cut_off() -> None:
            watched_out.set()
            with contextlib.suppress(Exception):  # already closed: nothing to free
                stream.close()

        watch = threading.Timer(limit, cut_off)
        watch.daemon = True
        watch.start()
        try:
            for chunk in stream:
                feed(chunk)
        except (OSError, ValueError) as exc:  # the socket closed under the read: by the watch, or the engine
            if not watched_out.is_set():
                raise Unavailable(f"exec failed: the output stream broke ({exc})") from exc
        finally:
            watch.cancel()
        if watched_out.is_set():
            return True, None
        try:
            return False, settled_exit_code(lambda: exit_code_of(api.exec_inspect(created["Id"])))
        except docker.errors.APIError as exc:
            raise Unavailable(f"exec failed: {exc.explanation or exc}") from exc

    def _exec_argv(self, container_id: str, argv: list[str]) -> ExecResult:
        return self.exec(container_id, " ".join(shlex.quote(a) for a in argv), timeout=60)

    def copy_out(self, container_id: str, path: str, limit: int) -> tuple[bytes, bool]:
        """Up to `limit` bytes of a regular file inside the container, and whether it was cut.

        Read by the container's own user (`head` in an exec), never by the engine as root:
        what the agent cannot read, kilod does not read for it.
        """
        container = self._get(container_id)
        script = ('[ -d "$1" ] && exit 21; [ -e "$1" ] || exit 22; [ -f "$1" ] || exit 23; '
                  'exec head -c "$2" -- "$1"')
        try:
            result = container.exec_run(["sh", "-c", script, "sh", absolute(path), str(limit + 1)],
                                        workdir=WORKSPACE, demux=True)
        except docker.errors.APIError as exc:
            raise Unavailable(f"exec failed: {exc.explanation or exc}") from exc
        stdout, stderr = result.output if isinstance(result.output, tuple) else (b"", b"")
        code = result.exit_code
        if code == 21:
            raise Invalid(f"{path} is a directory; use list_files")
        if code == 22:
            raise NotFound(f"no such file: {path}")
        if code == 23:
            raise Invalid(f"{path} is not a regular file")
        if code != 0:
            message = (stderr or b"").decode("utf-8", "replace").strip()
            raise Invalid(f"cannot read {path}: {message or f'exit {code}'}")
        data = stdout or b""
        return data[:limit], len(data) > limit

    def copy_in(self, container_id: str, path: str, data: bytes, uid: int, gid: int, mode: int = 0o644) -> None:
        """Write a file as uid:gid, with that user's permissions (folders made as needed).

        The engine unpacks archives as root, so the bytes go to a root-owned folder with
        an unguessable name in the sticky /tmp (the agent can neither swap it for a link
        nor rename it), and the sandbox's user copies them to the target: a file it may
        not write is refused, and nothing is ever planted owned by root.
        """
        target = PurePosixPath(absolute(path))
        stage = f"kilod-in-{secrets.token_hex(12)}"
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            folder = tarfile.TarInfo(stage)
            folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(folder)
            info = tarfile.TarInfo(f"{stage}/data")
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        container = self._get(container_id)
        try:
            if not container.put_archive("/tmp", archive.getvalue()):
                raise Invalid(f"cannot write {path}")
        except docker.errors.APIError as exc:
            raise Invalid(f"cannot write {path}: {exc.explanation or exc}") from exc
        script = ('mkdir -p -- "$(dirname -- "$1")" && cat -- "$2" > "$1" && chmod "$3" -- "$1"')
        try:
            command = " ".join(shlex.quote(a) for a in ["sh", "-c", script, "sh", str(target), f"/tmp/{stage}/data",
                                                         f"{mode & 0o7777:o}"])
            written = self.exec(container_id, command, timeout=60, user=f"{uid}:{gid}")
        finally:
            self.exec(container_id, f"rm -rf -- /tmp/{stage}", timeout=60, user="0:0")
        if written.exit_code != 0:
            raise Invalid(f"cannot write {path}: {written.output.strip() or f'exit {written.exit_code}'}")

    def file_mode(self, container_id: str, path: str) -> int | None:
        """Permission bits of a file in the container, or None if it does not exist."""
        api = self.client.api
        # HEAD on the archive endpoint stats the path without transferring the file
        url = api._url("/containers/{0}/archive", container_id)  # type: ignore[attr-defined]
        response = api.head(url, params={"path": absolute(path)})
        if response.status_code != 200:
            return None
        stat = decode_json_header(response.headers.get("X-Docker-Container-Path-Stat", ""))
        return int(stat.get("mode", 0o644)) & 0o7777

    def _get(self, container_id: str) -> Container:
        try:
            return self.client.containers.get(container_id)
        except docker.errors.NotFound:
            raise Unavailable(f"the attempt's container {container_id[:12]} is gone") from None

