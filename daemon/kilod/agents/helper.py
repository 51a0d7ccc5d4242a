"""Helper containers (kilod.agents.helperjob) run with docker-py: no `docker` binary needed.

The daemon calls `DockerContainers` from a thread; the CLI, which never imports docker-py,
runs this module as a child process (`python -m kilod.agents.helper run|image-id`, the job
as JSON on stdin, the container's stderr on its stderr, the outcome as the last stdout
line). Docker's errors become `HelperError` here, once; callers turn that into their own.
The container is removed whatever happens: success, failure, timeout, Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import sys
import threading
from dataclasses import asdict

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from kilod.agents.helperjob import LABEL_INSTALL, RESULT_MARK, Finished, HelperError, Job, Say, job_from_json

LABEL_INSTANCE = "kilod.instance"   # as kilod.sandbox.base (not imported: this module runs in the CLI's child)


def _explain(exc: docker.errors.DockerException) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc)


class DockerContainers:
    def __init__(self, instance: str = "") -> None:
        self.instance = instance
        self._client: docker.DockerClient | None = None
        self._guard = threading.Lock()

    def client(self) -> docker.DockerClient:
        with self._guard:
            if self._client is None:
                try:
                    # no read timeout: a log stream may be quiet for minutes (pip downloading a large
                    # wheel); each job's own deadline kills its container, which ends the stream
                    client = docker.from_env(timeout=None)   # type: ignore[arg-type]
                    client.ping()
                except docker.errors.DockerException as exc:
                    raise HelperError(f"cannot reach the Docker engine: {exc}") from None
                self._client = client
            return self._client

    def image_id(self, image: str) -> str:
        try:
            return str(self.client().images.get(image).id)
        except docker.errors.ImageNotFound:
            raise HelperError(f"image {image} is not present") from None
        except docker.errors.DockerException as exc:
            raise HelperError(f"cannot inspect image {image}: {_explain(exc)}") from None

    def run(self, job: Job, say: Say) -> Finished:
        labels = {LABEL_INSTALL: "1", **({LABEL_INSTANCE: self.instance} if self.instance else {})}
        mounts = [Mount(target=inside, source=host, type="bind", read_only=ro) for host, inside, ro in job.mounts]
        try:
            container: Container = self.client().containers.create(
                job.image, command=["-c", job.script], entrypoint=["sh"], user=job.user or "",
                network_mode=job.network, environment=job.env, mounts=mounts, labels=labels, detach=True)
        except docker.errors.ImageNotFound:
            raise HelperError(f"image {job.image} is not present") from None
        except docker.errors.DockerException as exc:
            raise HelperError(f"cannot create a helper container of {job.image}: {_explain(exc)}") from None
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            with contextlib.suppress(docker.errors.DockerException):
                container.kill()

        watchdog = threading.Timer(job.timeout, expire)
        watchdog.daemon = True
        try:
            container.start()
            watchdog.start()
            pending = b""
            for chunk in container.logs(stream=True, follow=True, stdout=False, stderr=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        say(line.decode(errors="replace").rstrip())
            if pending.strip():
                say(pending.decode(errors="replace").rstrip())
            code = int(container.wait()["StatusCode"])
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        except docker.errors.DockerException as exc:
            raise HelperError(f"the helper container of {job.image} failed: {_explain(exc)}") from None
        finally:
            watchdog.cancel()
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        return Finished(code, out, timed_out.is_set())


@functools.cache
def for_instance(instance: str) -> DockerContainers:
    """The daemon's one client for its helper containers (docker-py's client is shared across threads)."""
    return DockerContainers(instance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kilod.agents.helper")
    parser.add_argument("verb", choices=["run", "image-id"])
    parser.add_argument("--instance", default="")
    args = parser.parse_args(argv)
    # stopped (the CLI's Ctrl-C reaches it as SIGINT, a supervisor's as SIGTERM): unwind, so `run`
    # removes its container on the way out
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    request = json.loads(sys.stdin.read())
    containers = DockerContainers(args.instance)
    result: dict[str, object]
    try:
        if args.verb == "image-id":
            result = {"id": containers.image_id(str(request["image"]))}
        else:
            result = asdict(containers.run(job_from_json(request), lambda line: print(line, file=sys.stderr,
                                                                                         flush=True)))
    except HelperError as exc:
        result = {"error": str(exc)}
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
