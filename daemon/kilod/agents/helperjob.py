"""A throwaway helper container of a sandbox image, described as data: the venv build, the python3 probe.

Python agents need the image's own python3 (kilod.agents.install, kilod.agents.venvs), so
kilod runs short-lived containers of that image. `Containers` is what runs them; the
daemon uses docker-py directly (kilod.agents.helper.DockerContainers). The CLI never
imports docker-py, so `ChildContainers` (here, stdlib only) runs the same docker-py code
in a child process (`python -m kilod.agents.helper`): no `docker` binary is needed
anywhere, which is what a containerised daemon (the Helm chart's image) has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

Say = Callable[[str], None]
LABEL_INSTALL = "kilod.agents-install"   # every helper container carries it (tests and gc find them by it)
RESULT_MARK = "kilod-helper-result: "    # the child's last stdout line: its outcome as JSON


class HelperError(Exception):
    """The helper container could not be run (no engine, no image…); the message says why."""


@dataclass(frozen=True)
class Job:
    image: str
    script: str                          # run by `sh -c` as the entrypoint
    user: str | None = None              # "uid:gid"; None: the image's own user
    network: str = "none"
    env: dict[str, str] = field(default_factory=dict)
    mounts: tuple[tuple[str, str, bool], ...] = ()   # (host path, container path, read-only)
    timeout: float = 1800.0              # seconds, then the container is killed and removed


@dataclass(frozen=True)
class Finished:
    code: int          # the script's exit status
    stdout: str        # everything it printed on stdout (its stderr went to `say`, line by line)
    timed_out: bool = False


class Containers(Protocol):
    def image_id(self, image: str) -> str: ...

    def run(self, job: Job, say: Say) -> Finished: ...


def job_from_json(data: dict[str, object]) -> Job:
    mounts = data.get("mounts") or []
    assert isinstance(mounts, list)
    env = data.get("env") or {}
    assert isinstance(env, dict)
    return Job(image=str(data["image"]), script=str(data["script"]),
               user=None if data.get("user") is None else str(data["user"]),
               network=str(data.get("network", "none")), env={str(k): str(v) for k, v in env.items()},
               mounts=tuple((str(m[0]), str(m[1]), bool(m[2])) for m in mounts),
               timeout=float(str(data.get("timeout", 1800.0))))


class ChildContainers:
    """Runs helper containers through docker-py in a child Python process (the CLI's way)."""

    def __init__(self, instance: str = "") -> None:
        self.instance = instance

    def _child(self, verb: str, stdin: str, say: Say) -> dict[str, object]:
        command = [sys.executable, "-m", "kilod.agents.helper", verb, "--instance", self.instance]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, errors="replace") as child:
            assert child.stdin is not None and child.stdout is not None and child.stderr is not None
            child.stdin.write(stdin)
            child.stdin.close()
            for line in child.stderr:   # the container's stderr (pip's progress) as it happens
                if line.strip():
                    say(line.rstrip())
            out = child.stdout.read()
        # Ctrl-C reaches the child too (same process group): it removes its container and exits
        for line in reversed(out.splitlines()):
            if line.startswith(RESULT_MARK):
                result: dict[str, object] = json.loads(line[len(RESULT_MARK):])
                if "error" in result:
                    raise HelperError(str(result["error"]))
                return result
        raise HelperError(f"the helper process ended without a result (exit {child.returncode}): {out[-300:]}")

    def image_id(self, image: str) -> str:
        return str(self._child("image-id", json.dumps({"image": image}), lambda _: None)["id"])

    def run(self, job: Job, say: Say) -> Finished:
        result = self._child("run", json.dumps(asdict(job)), say)
        return Finished(int(str(result["code"])), str(result["stdout"]), bool(result.get("timed_out")))
