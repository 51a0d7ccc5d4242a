"""The Helm chart's Docker-in-Docker mode, run for real: Codex cards through the model gateway.

The pod is what Helm renders for `docker.mode=dind` (tests/deploy/pod.py plays kubelet): the
daemon image and the chart's `dind` sidecar running kilod's own engine image (images/dind:
Debian's docker.io on the debootstrap base), sharing the data dir volume at the same path, the
engine's socket volume and one network namespace. The sandbox image is loaded into the inner
engine (`docker save | docker load`, what `docker.dind.pullImages` does from a registry), Codex
is installed into the data dir from inside the pod (`kilod agents install codex`, its wheel
copied in as `kubectl cp` would), and the model is a local OpenAI-compatible server this test
starts on the pod network's gateway, reached from the daemon with the key in the chart's Secret.
The test talks to the daemon as a cluster client does: the pod's port with the Secret's token.

The images are built by images/build.sh, which skips a build whose content hash matches:
only the first run on a machine (or after a change) pays for them.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kilod.agents.catalog import package
from kilod.agents.install import cache_root, cached_wheel, download_wheel, install, wheelhouse
from tests.conftest import SANDBOX_IMAGE
from tests.deploy.fake_responses import CONTENT, MARKER, USAGE_IN, FakeResponses
from tests.deploy.pod import Pod, PodSpec, docker, remove_labelled
from tests.deploy.tools import CHART, REPO_ROOT, helm, unavailable
from tests.kilod_testing import ApiError, DaemonProcess, make_repo, new_instance

BUILD_TIMEOUT = 1800
pytestmark = [pytest.mark.docker, pytest.mark.timeout(BUILD_TIMEOUT + 900)]
DAEMON_IMAGE = ("kilod/daemon", "test-dind")
ENGINE_IMAGE = ("kilod/dind", "test")
MODEL = "hosted_vllm/fake-model"
POD_SANDBOX_IMAGE = "registry.invalid/kilod/sandbox:test"   # as if pulled from a registry (docker.dind.pullImages)
DAEMON_KEY = "sk-daemon-dind-0123456789"   # the provider key: in the daemon's Secret, never in a sandbox


def build_cached(target: str, repository: str, tag: str) -> None:
    """images/build.sh's content-hash check: a no-op when the image matches its sources."""
    name = f"{repository}:{tag}"
    before = docker("image", "inspect", "-f", "{{.Id}}", name, check=False).stdout.strip()
    env = {**os.environ, f"KILOD_{target.upper()}_IMAGE": name}
    done = subprocess.run(["bash", str(REPO_ROOT / "images" / "build.sh"), target], capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT, env=env)
    assert done.returncode == 0, f"images/build.sh {target} failed:\n{done.stderr[-4000:]}"
    after = docker("image", "inspect", "-f", "{{.Id}}", name).stdout.strip()
    if before and before != after:   # the tag moved on: drop the stale build, unless something still uses it
        docker("rmi", before, check=False)


class PodClient(DaemonProcess):
    """The daemon's TCP API at the pod's address, with the bearer token from the chart's Secret."""

    def __init__(self, pod: Pod, port: int, token: str) -> None:
        super().__init__(Path("/nonexistent"), "dind")
        self.pod, self.port, self.token = pod, port, token
        self.host = pod.ip()

    def log(self) -> str:
        return self.pod.logs("kilod")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def credentials(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Rig:
    pod: Pod
    client: PodClient
    model: FakeResponses
    data_dir: str        # the data dir's path in both containers (the chart's dataDir)
    repo: str            # the repository's path as the daemon and the inner engine see it

    def inner(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The docker CLI against the pod's own engine (the sidecar's DOCKER_HOST)."""
        return self.pod.exec("dind", "docker", *args, check=check)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    [answer] = helm([{"action": "render", "chart": str(CHART), "values": values, "name": "kilod",
                      "namespace": "dind-test"}])
    assert "error" not in answer, answer
    return [doc for path, text in sorted(answer["manifests"].items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def codex_wheel() -> Path:
    spec = package("codex")
    return cached_wheel(spec) or download_wheel(spec, lambda message: None)


@pytest.fixture(scope="module")
def rig(sandbox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed")
    build_cached("daemon", *DAEMON_IMAGE)
    build_cached("dind", *ENGINE_IMAGE)
    wheel = codex_wheel()
    run = new_instance()
    label = f"kilod.test={run}"
    network = f"kilod-dind-{run}"
    docker("network", "create", "--label", label, network)
    try:
        gateway = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network).stdout.strip()
        with FakeResponses(gateway) as model:
            token = secrets.token_urlsafe(24)
            docs = render({
                "image": {"repository": DAEMON_IMAGE[0], "tag": DAEMON_IMAGE[1], "pullPolicy": "Never"},
                "docker": {"mode": "dind", "dind": {"image": {"repository": ENGINE_IMAGE[0], "tag": ENGINE_IMAGE[1],
                                                              "pullPolicy": "Never"}}},
                "settings": {"sandboxImage": POD_SANDBOX_IMAGE, "stepLimit": 12},
                "extraEnv": {"HOSTED_VLLM_API_BASE": model.base_url},
                "secret": {"token": token, "modelKeys": {"HOSTED_VLLM_API_KEY": DAEMON_KEY}},
            })
            spec = PodSpec.from_manifests(docs)
            pod = Pod(spec, f"kilod-dind-{run}", label, network)
            pod.start(infra_image=sandbox_image)
            # the engine is up: load the sandbox image into it, as the sidecar's pullImages would pull it
            pod.wait_command("dind", ["docker", "version"], 180, "the pod's Docker engine")
            saved = subprocess.Popen(["docker", "save", sandbox_image], stdout=subprocess.PIPE)
            pod.exec("dind", "docker", "load", stdin=saved.stdout, timeout=600)
            assert saved.wait(60) == 0
            # under the registry name the chart is told to use, and only that: a default image name
            # (e.g. the forwarder's) that is not in the pod's engine fails the attempt here
            pod.exec("dind", "docker", "tag", sandbox_image, POD_SANDBOX_IMAGE)
            pod.exec("dind", "docker", "rmi", sandbox_image)
            pod.wait_probe("kilod")
            data_dir = spec.env(spec.container("kilod"))["KILOD_DATA_DIR"]
            with wheel.open("rb") as source:   # as `kubectl cp` would, into the daemon's own wheel cache
                pod.exec("kilod", "sh", "-c", 'mkdir -p "$KILOD_AGENTS_CACHE/wheels" && '
                         'cat > "$KILOD_AGENTS_CACHE/wheels/$1"', "sh", wheel.name, stdin=source)
            pod.exec("kilod", "kilod", "agents", "install", "codex", timeout=600)
            repo = make_repo(tmp_path_factory.mktemp("dind") / "app", {"README.md": "# dind\n"})
            packed = subprocess.Popen(["tar", "-C", str(repo.parent), "-c", repo.name], stdout=subprocess.PIPE)
            pod.exec("kilod", "sh", "-c", 'mkdir -p "$1" && tar -x -C "$1"', "sh", f"{data_dir}/repos",
                     stdin=packed.stdout)
            assert packed.wait(60) == 0
            port = int(spec.env(spec.container("kilod"))["KILOD_HTTP"].rsplit(":", 1)[1])
            yield Rig(pod, PodClient(pod, port, token), model, data_dir, f"{data_dir}/repos/{repo.name}")
    finally:
        remove_labelled(label)


def run_card(rig: Rig, name: str, **extra: Any) -> dict[str, Any]:
    card = rig.client.request("POST", "/v1/cards", {"prompt": f"write {name}", "repo": rig.repo,
                                                    "models": [f"codex:{MODEL}"], **extra})
    attempt = card["attempts"][0]
    assert (attempt["agent"], attempt["model"]) == ("codex", MODEL)
    done = rig.client.wait_state(attempt["id"], "review", timeout=300)
    assert done["summary"] == f"Wrote {name}.", rig.client.events(attempt["id"])
    outputs = [e["payload"].get("output", "") for e in rig.client.events(attempt["id"]) if e["kind"] == "tool_result"]
    assert any(MARKER in output for output in outputs), outputs
    diff = json.dumps(rig.client.request("GET", f"/v1/attempts/{attempt['id']}/diff"))
    assert name in diff and CONTENT in diff
    assert done["steps"] >= 2 and done["tokens_in"] >= 2 * USAGE_IN
    # the calls came from the pod, with the daemon's key, for the pinned model
    calls = [r for r in rig.model.requests if name in json.dumps(r["body"])]
    assert len(calls) >= 2
    assert {c["peer"] for c in calls} == {rig.client.host}
    assert {c["headers"].get("Authorization") for c in calls} == {f"Bearer {DAEMON_KEY}"}
    assert {c["body"]["model"] for c in calls} == {"fake-model"}
    return done


def inspect_inner(rig: Rig, container: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(rig.inner("inspect", container).stdout)[0]
    return found


def test_a_codex_card_runs_in_the_pods_engine_and_ends_in_review_with_its_edit(rig: Rig) -> None:
    done = run_card(rig, "dind.txt")
    sandbox = inspect_inner(rig, done["container"])
    assert sandbox["HostConfig"]["NetworkMode"] == "none"
    assert DAEMON_KEY not in json.dumps(sandbox)
    # the forwarder sidecar ran in the pod's engine and went with the run
    leftover = rig.inner("ps", "-aq", "--filter", f"name=kilod-{done['id']}-gateway").stdout.split()
    assert leftover == []
    # the host's engine ran none of it: the worktree was mounted by the pod's engine, from the data dir
    on_host = docker("ps", "-aq", "--filter", f"label=kilod.attempt={done['id']}").stdout.split()
    assert on_host == []
    assert sandbox["Mounts"] and all(m["Source"].startswith(rig.data_dir + "/") for m in sandbox["Mounts"]
                                     if m["Type"] == "bind")


def test_a_codex_card_with_a_network_reaches_the_gateway_in_the_pod(rig: Rig) -> None:
    done = run_card(rig, "net.txt", network=True)
    assert inspect_inner(rig, done["container"])["HostConfig"]["NetworkMode"] == "bridge"


def test_bad_token_is_refused_at_the_pods_port(rig: Rig) -> None:
    wrong = PodClient(rig.pod, rig.client.port, "x" * 32)
    with pytest.raises(ApiError) as refused:
        wrong.request("GET", "/v1/status")
    assert refused.value.status == 401


def test_the_daemon_container_killed_mid_run_and_restarted_reattaches_to_the_agent(rig: Rig) -> None:
    """kill -9 of the daemon's container (a crash; kubelet restarts it in the same pod): the agent
    goes on in the pod's engine, the restarted daemon re-attaches and the attempt reaches Review once."""
    card = rig.client.request("POST", "/v1/cards", {"prompt": "write slow.txt", "repo": rig.repo,
                                                    "models": [f"codex:{MODEL}"]})
    attempt_id = card["attempts"][0]["id"]
    rig.client.wait_for(lambda: any(e["kind"] == "tool_call" for e in rig.client.events(attempt_id)), 180,
                        "codex's slow command")
    container = rig.client.attempt(attempt_id)["container"]
    docker("kill", "--signal", "KILL", rig.pod.name("kilod"))
    running = rig.inner("exec", container, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
    assert "/opt/kilod/agents/codex" in running, "the agent died with the daemon"
    docker("start", rig.pod.name("kilod"))
    rig.pod.wait_probe("kilod")
    done = rig.client.wait_state(attempt_id, "review", timeout=300)
    assert done["summary"] == "Wrote slow.txt."
    events = rig.client.events(attempt_id)
    logs = [str(e["payload"].get("message", "")) for e in events if e["kind"] == "log"]
    assert sum(m.startswith("started codex") for m in logs) == 1, logs
    assert any(m.startswith("re-attaching to codex") for m in logs), logs
    assert [e["payload"]["to"] for e in events if e["kind"] == "state"].count("review") == 1
    outputs = [e["payload"].get("output", "") for e in events if e["kind"] == "tool_result"]
    assert sum(MARKER in output for output in outputs) == 1, outputs   # the command ran to its end, once
    assert CONTENT in json.dumps(rig.client.request("GET", f"/v1/attempts/{attempt_id}/diff"))


def test_a_python_agent_installs_from_inside_the_pod_whose_image_has_no_docker_binary(rig: Rig) -> None:
    """mini-swe-agent's venv is built by a helper container of the pod's engine (docker-py, no `docker`
    in the daemon's image) from the wheelhouse copied in, and its `mini` runs in the pod's sandbox image."""
    spec = package("mini-swe-agent")
    assert rig.pod.exec("kilod", "sh", "-c", "command -v docker", check=False).returncode != 0
    # the machine's wheelhouse (filled by installing on the host once per machine, as tests/agents do):
    # the build in the pod needs no index, as offline
    folder = wheelhouse(spec)
    if not any(folder.glob("*.whl")):
        bundle = Path(os.environ.get("KILOD_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt")
        install("mini-swe-agent", cache_root() / "test-home", image=SANDBOX_IMAGE,
                ca_bundle=bundle if bundle.is_file() else None, say=lambda message: None)
    assert any(folder.glob("*.whl")), f"installing mini-swe-agent left no wheels in {folder}"
    packed = subprocess.Popen(["tar", "-C", str(folder.parent), "-c", folder.name], stdout=subprocess.PIPE)
    rig.pod.exec("kilod", "sh", "-c", 'mkdir -p "$KILOD_AGENTS_CACHE/wheelhouse" && '
                 'tar -x -C "$KILOD_AGENTS_CACHE/wheelhouse"', stdin=packed.stdout)
    assert packed.wait(60) == 0
    done = rig.pod.exec("kilod", "kilod", "agents", "install", "mini-swe-agent", "--image", POD_SANDBOX_IMAGE,
                        "--json", timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "installing from the wheelhouse" in done.stderr and "Successfully installed" in done.stderr
    installed = json.loads(done.stdout)
    assert installed["path"].startswith(rig.data_dir + "/") and installed["image"] == POD_SANDBOX_IMAGE
    ran = rig.inner("run", "--rm", "--network", "none", "-v", f"{installed['path']}:{spec.mounted_at()}:ro",
                    "--entrypoint", f"{spec.mounted_at()}/{spec.entrypoint}", POD_SANDBOX_IMAGE, "--help",
                    check=False)
    assert ran.returncode == 0 and "mini" in (ran.stdout + ran.stderr).lower(), ran.stdout + ran.stderr
    leftover = rig.inner("ps", "-aq", "--filter", "label=kilod.agents-install=1").stdout.split()
    assert leftover == []   # the helper container went with the build
