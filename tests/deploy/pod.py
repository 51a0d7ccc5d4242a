"""A Kubernetes pod from the chart's rendered manifests, run as plain Docker containers.

No cluster here, so the test plays kubelet for one pod: every setting comes from what Helm
rendered (the Deployment's pod spec, its ConfigMap and Secret), translated one to one:

    pod network namespace       an infra container (`sleep`) the others join (`--network container:`)
    volumes (PVC, emptyDir)     labelled Docker volumes; fsGroup makes them group-writable, as kubelet does
    command / args              --entrypoint command[0], then command[1:] + args
    envFrom ConfigMap/Secret    -e KEY=VALUE (the Secret's base64 decoded), then the container's env
    securityContext             --user runAsUser:runAsGroup, --group-add (supplementalGroups, fsGroup),
                                --privileged (see privileged_args), --cap-drop/--cap-add,
                                no-new-privileges, seccomp
    exec probes                 `docker exec` of the same command

Everything is labelled `kilod.test=<run id>` and removed by that label.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFRA_IMAGE_COMMAND = ["sleep", "infinity"]
# Linux capabilities by bit number (capability.h), to name the ones this machine lacks
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
# what `privileged` gives besides every capability, for an engine that cannot grant them all
PRIVILEGED_LIKE = ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                   "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm"]
# … and writable cgroups, remounted once it runs (a privileged container gets them so)
CGROUPS_WRITABLE = ("for m in $(awk '$3 == \"cgroup\" || $3 == \"cgroup2\" { print $2 }' /proc/mounts); do "
                    "mount -o remount,bind,rw \"$m\"; done")


def missing_capabilities() -> list[str]:
    """Capabilities outside this machine's bounding set (the engine runs here and cannot grant them)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            bounding = int(line.split()[1], 16)
            return [name for bit, name in enumerate(CAPABILITIES) if not bounding >> bit & 1]
    return []


def privileged_args() -> list[str]:
    """`--privileged`, or where the machine withholds a capability (runc then cannot start a privileged
    container: "unable to apply caps"), every capability it has and the rest of what privileged means."""
    missing = missing_capabilities()
    if not missing:
        return ["--privileged"]
    return ["--cap-add", "ALL", *(a for cap in missing for a in ("--cap-drop", cap)), *PRIVILEGED_LIKE]


def docker(*args: str, timeout: float = 120, check: bool = True, stdin: Any = None,
           input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, stdin=stdin,
                          input=input_text)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:6])} … failed ({done.returncode}):\n{done.stdout[-3000:]}"
                             f"\n{done.stderr[-3000:]}")
    return done


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@dataclass
class PodSpec:
    """What one pod needs, read from the rendered manifests."""

    spec: dict[str, Any]
    config_maps: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]

    @classmethod
    def from_manifests(cls, docs: list[dict[str, Any]]) -> PodSpec:
        [deployment] = by_kind(docs, "Deployment")
        maps = {d["metadata"]["name"]: dict(d.get("data") or {}) for d in by_kind(docs, "ConfigMap")}
        secrets = {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
                   for d in by_kind(docs, "Secret")}
        return cls(deployment["spec"]["template"]["spec"], maps, secrets)

    def container(self, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [c for c in self.spec["containers"] if c["name"] == name]
        assert len(found) == 1, f"no single container {name!r} in the pod"
        return found[0]

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.config_maps[source["configMapRef"]["name"]])
            if "secretRef" in source:
                env.update(self.secrets[source["secretRef"]["name"]])
        for item in container.get("env", []):
            env[item["name"]] = str(item.get("value", ""))
        return env

    def run_args(self, container: dict[str, Any], volumes: dict[str, str]) -> list[str]:
        """`docker run` arguments (after `run -d --name … --network …`) for one of its containers."""
        pod_security = self.spec.get("securityContext") or {}
        security = container.get("securityContext") or {}
        args: list[str] = []
        uid = security.get("runAsUser", pod_security.get("runAsUser"))
        gid = security.get("runAsGroup", pod_security.get("runAsGroup"))
        if uid is not None:
            args += ["--user", f"{uid}:{gid if gid is not None else uid}"]
        groups = [*pod_security.get("supplementalGroups", []),
                  *([pod_security["fsGroup"]] if "fsGroup" in pod_security else [])]
        for group in dict.fromkeys(groups):
            args += ["--group-add", str(group)]
        if security.get("privileged"):
            args += privileged_args()
        caps = security.get("capabilities") or {}
        args += [f"--cap-drop={c}" for c in caps.get("drop", [])] + [f"--cap-add={c}" for c in caps.get("add", [])]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if (security.get("seccompProfile") or {}).get("type") == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        for key, value in self.env(container).items():
            args += ["-e", f"{key}={value}"]
        for mount in container.get("volumeMounts", []):
            args += ["-v", f"{volumes[mount['name']]}:{mount['mountPath']}"]
        command = list(container.get("command") or [])
        if command:
            args += ["--entrypoint", command[0]]
        return [*args, container["image"], *command[1:], *container.get("args", [])]


@dataclass
class Pod:
    """The pod's containers on the host's engine, named `<prefix>-<container>`."""

    spec: PodSpec
    prefix: str
    label: str
    network: str
    volumes: dict[str, str] = field(default_factory=dict)

    def name(self, container: str) -> str:
        return f"{self.prefix}-{container}"

    def start(self, infra_image: str) -> None:
        """Volumes, the pod's network namespace, then every container at once (as kubelet starts them)."""
        for volume in self.spec.spec["volumes"]:
            name = f"{self.prefix}-{volume['name']}"
            docker("volume", "create", "--label", self.label, name)
            self.volumes[volume["name"]] = name
        group = (self.spec.spec.get("securityContext") or {}).get("fsGroup")
        if group is not None:  # kubelet's fsGroup: each volume's root owned by the group, setgid, writable
            mounts = [a for n, v in enumerate(self.volumes.values()) for a in ("-v", f"{v}:/v/{n}")]
            docker("run", "--rm", "--label", self.label, "--user", "0", "--network", "none", *mounts,
                   "--entrypoint", "sh", infra_image, "-c", f"chgrp {group} /v/* && chmod 2775 /v/*")
        docker("run", "-d", "--name", self.name("pod"), "--label", self.label, "--network", self.network,
               "--entrypoint", INFRA_IMAGE_COMMAND[0], infra_image, *INFRA_IMAGE_COMMAND[1:])
        for container in self.spec.spec["containers"]:
            docker("run", "-d", "--name", self.name(container["name"]), "--label", self.label,
                   "--network", f"container:{self.name('pod')}", *self.spec.run_args(container, self.volumes))
        for container in self.spec.spec["containers"]:
            if (container.get("securityContext") or {}).get("privileged") and "--privileged" not in privileged_args():
                docker("exec", "-u", "0", self.name(container["name"]), "sh", "-c", CGROUPS_WRITABLE)

    def ip(self) -> str:
        networks = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", self.name("pod")).stdout)
        return str(networks[self.network]["IPAddress"])

    def exec(self, container: str, *command: str, timeout: float = 120, check: bool = True,
             stdin: Any = None) -> subprocess.CompletedProcess[str]:
        interactive = ["-i"] if stdin is not None else []
        return docker("exec", *interactive, self.name(container), *command, timeout=timeout, check=check,
                      stdin=stdin)

    def logs(self, container: str) -> str:
        done = docker("logs", self.name(container), check=False)
        return done.stdout + done.stderr

    def running(self, container: str) -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", self.name(container), check=False).stdout.strip()
        return state == "true"

    def wait_probe(self, container: str, probe: str = "startupProbe", timeout: float = 180) -> None:
        """Until the container's exec probe (from the manifest) succeeds."""
        command = self.spec.container(container)[probe]["exec"]["command"]
        self.wait_command(container, command, timeout, f"{container}'s {probe}")

    def wait_command(self, container: str, command: list[str], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.running(container), f"{container} stopped:\n{self.logs(container)[-4000:]}"
            if self.exec(container, *command, timeout=30, check=False).returncode == 0:
                return
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.logs(container)[-4000:]}")


def remove_labelled(label: str) -> None:
    """Every container, volume and network carrying `label` (the pod's and the test's)."""
    containers = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
    if containers:
        docker("rm", "-f", "-v", *containers, check=False, timeout=300)
    volumes = docker("volume", "ls", "-q", "--filter", f"label={label}", check=False).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False, timeout=300)
    networks = docker("network", "ls", "-q", "--filter", f"label={label}", check=False).stdout.split()
    if networks:
        docker("network", "rm", *networks, check=False)
