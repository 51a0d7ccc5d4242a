"""The Helm chart: values against the schema, Helm's lint, rendered manifests against Kubernetes' schemas."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import CHART, helm, merged

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
DASHBOARD = (CHART / "dashboards" / "kilod.json").read_text()
KUBERNETES_VERSION = "1.30.0"
RELEASE = "rel"
NAMESPACE = "agents"
DIND = {"docker": {"mode": "dind"}, "metrics": {"public": True, "serviceMonitor": {"enabled": True}},
        "http": {"allowedHosts": ["kilod.example.com"]}}
SOCKET = {"docker": {"mode": "socket", "gid": 998}}
VARIANTS: dict[str, dict[str, Any]] = {"defaults": {}, "dind+serviceMonitor": DIND, "socket": SOCKET}

BAD_VALUES: dict[str, dict[str, Any]] = {
    "maxParallel is a word": {"settings": {"maxParallel": "four"}},
    "maxParallel is zero": {"settings": {"maxParallel": 0}},
    "unknown docker mode": {"docker": {"mode": "podman"}},
    "relative data dir": {"dataDir": "var/lib/kilod"},
    "gid is a string": {"docker": {"gid": "docker"}},
    "port out of range": {"http": {"port": 70000}},
    "NodePort (its port would fail the Host check)": {"service": {"type": "NodePort"}},
    "allowed host with a port": {"http": {"allowedHosts": ["kilod.example.com:443"]}},
    "persistence.enabled is a string": {"persistence": {"enabled": "yes"}},
    "network is a string": {"settings": {"network": "no"}},
    "model key is a number": {"secret": {"modelKeys": {"ANTHROPIC_API_KEY": 12345}}},
    "token too short": {"secret": {"token": "short"}},
    "token seed too short": {"secret": {"tokenSeed": "short"}},
    "env name with a dash": {"extraEnv": {"MY-VAR": "x"}},
    "dashboard label is a number": {"dashboard": {"labels": {"grafana_dashboard": 1}}},
    "misspelt top-level key": {"replicas": 2},
    "misspelt setting": {"settings": {"maxParalel": 8}},
    "log format unknown": {"logging": {"format": "xml"}},
    "pull images not a list": {"docker": {"dind": {"pullImages": "kilod/sandbox"}}},
}


def validator() -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    return jsonschema.Draft7Validator(SCHEMA)


def test_values_yaml_validates_against_the_schema() -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(VALUES)]
    assert errors == []


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=list(VARIANTS))
def test_variants_validate(variant: dict[str, Any]) -> None:
    validator().validate(merged(VALUES, variant))


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_schema_rejects_wrong_values(bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(merged(VALUES, bad))


# -- Helm ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Each variant rendered by Helm (offline `helm template`), as parsed manifests."""
    requests = [{"action": "render", "chart": str(CHART), "values": values, "name": RELEASE, "namespace": NAMESPACE}
                for values in VARIANTS.values()]
    result: dict[str, list[dict[str, Any]]] = {}
    for name, answer in zip(VARIANTS, helm(requests), strict=True):
        assert "error" not in answer, f"{name}: {answer}"
        docs: list[dict[str, Any]] = []
        for path, text in sorted(answer["manifests"].items()):
            if path.endswith("NOTES.txt"):
                assert RELEASE in text
                continue
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
        result[name] = docs
    return result


def lint_findings(chart_dir: Path) -> list[dict[str, Any]]:
    [answer] = helm([{"action": "lint", "chart": str(chart_dir)}])
    assert "error" not in answer, answer
    report = answer["lint"]
    assert report["TotalChartsLinted"] == 1
    assert not report["Errors"], report
    return list(report["Messages"] or [])


def test_chart_lints_clean_with_each_variant(tmp_path: Path) -> None:
    """Helm's lint (INFO 1, WARNING 2, ERROR 3): nothing above INFO, for the defaults and each variant.

    helm-sdkpy lints a chart with its own values.yaml, so each variant is linted as a
    copy of the chart whose values.yaml has the variant merged in.
    """
    for name, variant in VARIANTS.items():
        chart_dir = tmp_path / name / "kilod"
        shutil.copytree(CHART, chart_dir)
        (chart_dir / "values.yaml").write_text(yaml.safe_dump(merged(VALUES, variant), sort_keys=False))
        findings = lint_findings(chart_dir)
        assert all(f["Severity"] < 2 for f in findings), f"{name}: {findings}"


def test_lint_does_catch_a_broken_chart(tmp_path: Path) -> None:
    chart_dir = tmp_path / "kilod"
    shutil.copytree(CHART, chart_dir)
    (chart_dir / "values.yaml").write_text(yaml.safe_dump(merged(VALUES, {"settings": {"maxParallel": "four"}})))
    [answer] = helm([{"action": "lint", "chart": str(chart_dir)}])
    messages = (answer.get("lint") or {}).get("Messages") or []
    assert "error" in answer or any(m["Severity"] >= 3 for m in messages), answer


def test_helm_enforces_the_schema_when_rendering() -> None:
    [answer] = helm([{"action": "render", "chart": str(CHART), "values": {"docker": {"mode": "podman"}}}])
    assert "error" in answer and "mode" in answer["error"], answer


def test_rendered_manifests_pass_kubernetes_validate(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in rendered.items():
        for doc in docs:
            what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
            if doc["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD kubernetes-validate has no schema for; its shape is checked below
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{what}: {exc.message} at {'/'.join(map(str, exc.path))}")


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = by_kind(docs, "Deployment")
    return found


def settings_configmap(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = [c for c in by_kind(docs, "ConfigMap") if not c["metadata"]["name"].endswith("-dashboard")]
    return found


def mounts_by_volume(container: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}


def test_one_replica_recreated_never_rolled(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        spec = deployment(docs)["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}


def test_dind_mounts_the_data_dir_at_the_same_path_in_both_containers(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("defaults", "dind+serviceMonitor"):
        docs = rendered[name]
        pod = deployment(docs)["spec"]["template"]["spec"]
        containers = {c["name"]: c for c in pod["containers"]}
        assert set(containers) == {"kilod", "dind"}
        daemon, engine = mounts_by_volume(containers["kilod"]), mounts_by_volume(containers["dind"])
        assert daemon["data"] == engine["data"] == VALUES["dataDir"]
        assert daemon["dind-socket"] == engine["dind-socket"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        [pvc] = by_kind(docs, "PersistentVolumeClaim")
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        assert containers["dind"]["securityContext"]["privileged"] is True
        assert "privileged" not in containers["kilod"]["securityContext"]
        assert containers["kilod"]["securityContext"]["runAsNonRoot"] is True
        config = settings_configmap(docs)
        assert config["data"]["DOCKER_HOST"] == f"unix://{daemon['dind-socket']}/docker.sock"
        assert config["data"]["KILOD_DATA_DIR"] == VALUES["dataDir"]
        # what a Python agent's venv build bind-mounts (wheels, pip's cache) the pod's engine must see
        assert config["data"]["KILOD_AGENTS_CACHE"] == f"{VALUES['dataDir']}/cache/agents"


def test_socket_mode_uses_the_node_socket_and_the_node_path(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["socket"]
    pod = deployment(docs)["spec"]["template"]["spec"]
    [daemon] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["docker-socket"]["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    assert mounts_by_volume(daemon)["docker-socket"] == "/var/run/docker.sock"
    # the node's engine resolves bind mounts on the node: the data dir is the node's same path
    assert volumes["data"]["hostPath"]["path"] == mounts_by_volume(daemon)["data"] == VALUES["dataDir"]
    assert pod["securityContext"]["supplementalGroups"] == [998]
    assert by_kind(docs, "PersistentVolumeClaim") == []


def test_service_secret_and_settings(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["defaults"]
    [service] = by_kind(docs, "Service")
    assert service["spec"]["ports"][0]["port"] == VALUES["http"]["port"]
    [daemon, _] = deployment(docs)["spec"]["template"]["spec"]["containers"]
    assert daemon["ports"][0]["containerPort"] == VALUES["http"]["port"]
    [secret] = by_kind(docs, "Secret")
    assert len(secret["data"]["KILOD_TOKEN"]) > 20
    config = settings_configmap(docs)
    assert config["data"]["KILOD_HTTP"] == f"0.0.0.0:{VALUES['http']['port']}"
    assert config["data"]["KILOD_MAX_PARALLEL"] == "4"
    assert config["data"]["KILOD_SANDBOX_IMAGE"] == VALUES["settings"]["sandboxImage"]
    assert config["data"]["KILOD_METRICS_PUBLIC"] == "false"
    # clients inside the cluster may name the Service: its DNS names pass the daemon's Host check
    service_name = service["metadata"]["name"]
    assert json.loads(config["data"]["KILOD_HTTP_ALLOWED_HOSTS"]) == [
        service_name, f"{service_name}.{NAMESPACE}", f"{service_name}.{NAMESPACE}.svc",
        f"{service_name}.{NAMESPACE}.svc.cluster.local"]
    sources = {next(iter(s)): next(iter(s.values()))["name"] for s in daemon["envFrom"]}
    assert sources == {"configMapRef": config["metadata"]["name"], "secretRef": secret["metadata"]["name"]}


def test_existing_secret_replaces_the_charts() -> None:
    [answer] = helm([{"action": "render", "chart": str(CHART), "values": {"secret": {"existingSecret": "mine"}}}])
    docs = [d for path, text in answer["manifests"].items() if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    assert by_kind(docs, "Secret") == []
    daemon = deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "mine"}} in daemon["envFrom"]


def test_service_monitor_scrapes_metrics_with_the_token(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert by_kind(rendered["defaults"], "ServiceMonitor") == []
    [monitor] = by_kind(rendered["dind+serviceMonitor"], "ServiceMonitor")
    [secret] = by_kind(rendered["dind+serviceMonitor"], "Secret")
    [service] = by_kind(rendered["dind+serviceMonitor"], "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {"type": "Bearer",
                                         "credentials": {"name": secret["metadata"]["name"], "key": "KILOD_TOKEN"}}
    config = settings_configmap(rendered["dind+serviceMonitor"])
    assert config["data"]["KILOD_METRICS_PUBLIC"] == "true"
    assert json.loads(config["data"]["KILOD_HTTP_ALLOWED_HOSTS"])[-1] == "kilod.example.com"


def test_dashboard_configmap_carries_the_dashboard_file(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        [dashboard] = [c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(dashboard["data"]["kilod.json"]) == json.loads(DASHBOARD)


def test_the_configmap_holds_settings_the_daemon_accepts(rendered: dict[str, list[dict[str, Any]]],
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every KILOD_* variable the chart sets names a setting (a misspelt one would be ignored
    silently), and the daemon's Settings parse them all."""
    from kilod.agents.install import CACHE_ENV
    from kilod.config import Settings
    from kilod.logs import FORMAT_ENV, LEVEL_ENV

    known = {f"KILOD_{name.upper()}" for name in Settings.model_fields} | {FORMAT_ENV, LEVEL_ENV, CACHE_ENV}
    for name, docs in rendered.items():
        data = settings_configmap(docs)["data"]
        unknown = sorted(key for key in data if key.startswith("KILOD_") and key not in known)
        assert unknown == [], f"{name}: not kilod settings: {unknown}"
        for key in [k for k in os.environ if k.startswith("KILOD_")]:
            monkeypatch.delenv(key)
        for key, value in data.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KILOD_CONFIG", str(tmp_path / "none.toml"))
        settings = Settings()
        assert str(settings.data_dir) == VALUES["dataDir"]
        assert settings.http_address == ("0.0.0.0", VALUES["http"]["port"])
        assert settings.max_parallel == VALUES["settings"]["maxParallel"]
        assert settings.network is VALUES["settings"]["network"]
        assert settings.metrics_public is (name == "dind+serviceMonitor")
        assert "rel-kilod.agents.svc" in settings.http_allowed_hosts


# -- the Secret rolls the pod; offline renders keep one token; `helm test` ---------------------------

TOKEN = "a-token-of-twenty-characters"
SEED = "a-seed-kept-with-the-other-secrets"


def render_docs(*values: dict[str, Any], name: str = RELEASE) -> list[list[dict[str, Any]]]:
    answers = helm([{"action": "render", "chart": str(CHART), "values": v, "name": name, "namespace": NAMESPACE}
                    for v in values])
    out = []
    for answer in answers:
        assert "error" not in answer, answer
        out.append([d for path, text in answer["manifests"].items() if not path.endswith("NOTES.txt")
                    for d in yaml.safe_load_all(text) if d])
    return out


def pod_checksum(docs: list[dict[str, Any]]) -> str:
    annotations: dict[str, str] = deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    return annotations["checksum/secret"]


def token_of(docs: list[dict[str, Any]]) -> str:
    [secret] = by_kind(docs, "Secret")
    return base64.b64decode(secret["data"]["KILOD_TOKEN"]).decode()


def test_a_change_to_the_secret_rolls_the_pod() -> None:
    same_a, same_b, new_key, new_token = render_docs(
        {"secret": {"token": TOKEN}}, {"secret": {"token": TOKEN}},
        {"secret": {"token": TOKEN, "modelKeys": {"OPENAI_API_KEY": "sk-new"}}},
        {"secret": {"token": TOKEN + "-rotated"}})
    assert pod_checksum(same_a) == pod_checksum(same_b)
    assert len({pod_checksum(same_a), pod_checksum(new_key), pod_checksum(new_token)}) == 3
    [mine] = render_docs({"secret": {"existingSecret": "mine"}})
    assert "checksum/secret" not in deployment(mine)["spec"]["template"]["metadata"]["annotations"]


def test_offline_renders_keep_one_token_with_a_seed() -> None:
    seeded_a, seeded_b, unseeded_a, unseeded_b, given = render_docs(
        {"secret": {"tokenSeed": SEED}}, {"secret": {"tokenSeed": SEED}}, {}, {},
        {"secret": {"tokenSeed": SEED, "token": TOKEN}})
    assert token_of(seeded_a) == token_of(seeded_b) and len(token_of(seeded_a)) >= 32
    assert pod_checksum(seeded_a) == pod_checksum(seeded_b)  # so a GitOps sync does not restart the daemon
    assert SEED not in token_of(seeded_a)
    assert token_of(unseeded_a) != token_of(unseeded_b)  # without a seed, each offline render draws a new one
    assert token_of(given) == TOKEN
    [other_release] = render_docs({"secret": {"tokenSeed": SEED}}, name="other")
    assert token_of(other_release) != token_of(seeded_a)


def test_the_forwarder_image_is_the_sandbox_image_unless_set() -> None:
    """The gateway's forwarder sidecar runs in the chart's engine, which has the images it was told
    to pull: by default the sandbox image's (registry) name, never kilod's built-in default."""
    registry = "registry.example.com/kilod/sandbox:1"
    default, own, proxy = render_docs({"settings": {"sandboxImage": registry}},
                                      {"settings": {"sandboxImage": registry, "forwarderImage": "fw:2"}},
                                      {"settings": {"proxyImage": "registry.example.com/kilod/proxy:1"}})
    assert settings_configmap(default)["data"]["KILOD_FORWARDER_IMAGE"] == registry
    assert settings_configmap(own)["data"]["KILOD_FORWARDER_IMAGE"] == "fw:2"
    assert settings_configmap(proxy)["data"]["KILOD_PROXY_IMAGE"] == "registry.example.com/kilod/proxy:1"


def helm_test_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [pod] = [d for d in by_kind(docs, "Pod") if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    return pod


def test_helm_test_asks_the_service_with_the_releases_token(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in rendered.items():
        pod = helm_test_pod(docs)
        [service] = by_kind(docs, "Service")
        [container] = pod["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["KILOD_URL"]["value"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
        secret_ref = env["KILOD_TOKEN"]["valueFrom"]["secretKeyRef"]
        [secret] = by_kind(docs, "Secret")
        assert secret_ref == {"name": secret["metadata"]["name"], "key": "KILOD_TOKEN"}, name
        assert pod["spec"]["restartPolicy"] == "Never"
        assert container["image"] == deployment(docs)["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.docker
def test_the_helm_test_check_passes_against_a_live_daemon_and_fails_with_a_wrong_token(
        rendered: dict[str, list[dict[str, Any]]], daemon_factory: Any) -> None:
    from tests.web.conftest import free_port

    [container] = helm_test_pod(rendered["defaults"])["spec"]["containers"]
    assert container["command"][:2] == ["python", "-c"]
    script = container["command"][2]
    port = free_port()
    daemon = daemon_factory({"KILOD_HTTP": f"127.0.0.1:{port}"}).start()
    token = (daemon.data_dir / "token").read_text().strip()

    def run_check(with_token: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KILOD_URL": f"http://127.0.0.1:{port}", "KILOD_TOKEN": with_token}
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)

    passed = run_check(token)
    assert passed.returncode == 0, passed.stderr
    assert f"answers on http://127.0.0.1:{port}" in passed.stdout
    refused = run_check("not-the-token-at-all")
    assert refused.returncode != 0 and "401" in refused.stderr
