"""The repository says its environment: devcontainer.json or .kilod.toml, built once, reused, failing clearly.

Real Docker builds FROM the local sandbox image (no registry here); the Debian
package comes from the machine's apt mirror. A build-arg unique to the run makes
each run build its own tag, while Docker's layer cache keeps the apt step cheap.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from kilod.environments.devcontainer import read, strip_jsonc
from kilod.errors import Invalid
from tests.environments.conftest import trust
from tests.kilod_testing import DaemonProcess, git, make_repo

DOCKERFILE = """FROM {base}
USER root
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq \\
 && rm -rf /var/lib/apt/lists/*
ARG RUN_ID
RUN echo "$RUN_ID" > /etc/kilod-test-run
"""
DEVCONTAINER = """// a devcontainer as editors write them: comments and a trailing comma
{{
  "name": "jq box",
  "build": {{"dockerfile": "Dockerfile", "context": "..", "args": {{"RUN_ID": "{run_id}"}}}},
  /* kilod chooses the user */
  "remoteUser": "vscode",
  "containerEnv": {{"GREETING": "hello from devcontainer"}},
  "postCreateCommand": "echo created > /tmp/created",
  "forwardPorts": [8000],
}}
"""
CHECKS = ("[[checks]]\nname = \"jq\"\nrun = 'jq -n 40+1'\n"
          "[[checks]]\nname = \"env\"\nrun = 'test \"$GREETING\" = \"hello from devcontainer\" && cat /tmp/created'\n")


def run(daemon: DaemonProcess, repo: Path, state: str = "review") -> dict[str, Any]:
    trust(daemon, repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "env", "repo": str(repo), "models": ["scripted/steady"]})
    return daemon.wait_state(card["attempts"][0]["id"], state, "failed", "review", timeout=600)


def image_events(daemon: DaemonProcess, attempt_id: str) -> list[str]:
    return [str(e["payload"].get("message", "")) for e in daemon.events(attempt_id)
            if e["payload"].get("step") == "image"]


def sandbox_image_id(attempt_id: str) -> str:
    return str(docker.from_env().containers.get(f"kilod-{attempt_id}").attrs["Image"])


def kilod_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", "--socket", str(daemon.socket), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def devcontainer_repo(tmp_path: Path, sandbox_image: str) -> Path:
    return make_repo(tmp_path / "repo", {
        "README.md": "# jq\n",
        ".devcontainer/devcontainer.json": DEVCONTAINER.format(run_id=secrets.token_hex(6)),
        ".devcontainer/Dockerfile": DOCKERFILE.format(base=sandbox_image),
        ".kilod.toml": CHECKS,
    })


def test_a_devcontainer_image_is_built_once_and_used_by_every_attempt(
        daemon_factory: Callable[..., DaemonProcess], devcontainer_repo: Path) -> None:
    daemon = daemon_factory().start()
    first = run(daemon, devcontainer_repo)
    assert first["state"] == "review", first["error"]
    checks = {e["payload"]["name"]: e["payload"] for e in daemon.events(first["id"]) if e["kind"] == "check"}
    assert checks["jq"]["status"] == "passed" and checks["jq"]["output_tail"].strip() == "41"
    assert checks["env"]["status"] == "passed" and "created" in checks["env"]["output_tail"]
    built = image_events(daemon, first["id"])
    assert any(m.startswith("building image kilod-env:") for m in built)
    assert any("apt-get" in m or "Step " in m for m in built)  # the build's own log, streamed
    assert any("remoteUser ignored" in m for m in built) and any("forwardPorts" in m for m in built)
    card = daemon.request("GET", f"/v1/cards/{first['card_id']}")
    assert card["settings"]["dockerfile"] == ".devcontainer/Dockerfile" and card["settings"]["context"] == "."

    second = run(daemon, devcontainer_repo)
    assert second["state"] == "review", second["error"]
    assert sandbox_image_id(second["id"]) == sandbox_image_id(first["id"])
    reused = image_events(daemon, second["id"])
    assert any(m.startswith("reusing image") for m in reused) and not any(m.startswith("building") for m in reused)

    listed = kilod_cli(daemon, "images", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    ours = [i for i in json.loads(listed.stdout)["images"] if i["kind"] == "repository"]
    assert [i["id"] for i in ours] == [sandbox_image_id(first["id"])]
    assert ours[0]["repo"] == str(devcontainer_repo.resolve())

    kept = json.loads(kilod_cli(daemon, "images", "prune", "--json").stdout)
    assert kept["removed"] == [] and kept["in_use"]  # containers of attempts in review still use it
    for attempt in (first, second):
        daemon.request("POST", f"/v1/attempts/{attempt['id']}/discard")
    pruned = kilod_cli(daemon, "images", "prune")
    assert pruned.returncode == 0 and "removed 1" in pruned.stderr, pruned.stderr
    assert not [i for i in json.loads(kilod_cli(daemon, "images", "list", "--json").stdout)["images"]
                if i["kind"] == "repository"]


def test_a_broken_dockerfile_fails_the_attempt_with_the_build_error(
        daemon_factory: Callable[..., DaemonProcess], tmp_path: Path, sandbox_image: str) -> None:
    daemon = daemon_factory().start()
    repo = make_repo(tmp_path / "broken", {
        "env/Dockerfile": f"FROM {sandbox_image}\nRUN echo about to fail && exit 7\n",
        ".kilod.toml": f'dockerfile = "env/Dockerfile"\n[args]\nRUN_ID = "{secrets.token_hex(4)}"\n',
    })
    attempt = run(daemon, repo, "failed")
    assert attempt["state"] == "failed"
    assert "building env/Dockerfile failed" in attempt["error"]
    assert "returned a non-zero code: 7" in attempt["error"] and "about to fail" in attempt["error"]


def test_kilod_toml_image_wins_over_the_devcontainer(
        daemon_factory: Callable[..., DaemonProcess], devcontainer_repo: Path, sandbox_image: str) -> None:
    daemon = daemon_factory().start()
    card = daemon.request("POST", "/v1/cards", {"prompt": "p", "repo": str(devcontainer_repo),
                                                "models": ["scripted/steady"],
                                                "settings": {"image": sandbox_image, "checks": []}})
    assert card["settings"]["image"] == sandbox_image and card["settings"]["dockerfile"] is None
    assert card["settings"]["environment_notes"] == [] and card["settings"]["setup"] == []
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review")
    assert sandbox_image_id(attempt["id"]) == str(docker.from_env().images.get(sandbox_image).id)
    assert not any(m.startswith("building") for m in image_events(daemon, attempt["id"]))


def test_a_missing_named_image_fails_clearly(daemon_factory: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemon = daemon_factory().start()
    repo = make_repo(tmp_path / "named", {".kilod.toml": 'image = "kilod-test/absent:nope"\n'})
    attempt = run(daemon, repo, "failed")
    assert "the image 'kilod-test/absent:nope' is not present and cannot be pulled" in attempt["error"]


def test_jsonc_comments_and_trailing_commas_outside_strings_only() -> None:
    text = '{"a": "http://x//y", /* c */ "b": [1, 2,], // end\n "c": "/* kept */",}'
    assert json.loads(strip_jsonc(text)) == {"a": "http://x//y", "b": [1, 2], "c": "/* kept */"}


def test_devcontainer_paths_are_relative_to_its_folder_and_stay_in_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    (repo / ".devcontainer").mkdir(parents=True)
    config = repo / ".devcontainer" / "devcontainer.json"
    config.write_text('{"build": {"dockerfile": "Dockerfile"}, "onCreateCommand": ["pip", "install", "a b"],'
                      ' "postCreateCommand": {"one": "make", "two": "make test"}}')
    keys, notes = read(repo) or ({}, [])
    assert keys["dockerfile"] == ".devcontainer/Dockerfile" and keys["context"] == ".devcontainer"
    assert keys["setup"] == ["pip install 'a b'", "make", "make test"] and notes == []
    config.write_text('{"build": {"dockerfile": "../../etc/Dockerfile"}}')
    with pytest.raises(Invalid, match="outside the repository"):
        read(repo)
    config.write_text('{"image": "python:3.12", "remoteUser": "root"}')
    keys, notes = read(repo) or ({}, [])
    assert keys == {"image": "python:3.12"} and "remoteUser ignored" in notes[0]


def test_an_image_without_a_shell_fails_with_what_kilod_needs(daemon_factory: Callable[..., DaemonProcess],
                                                              tmp_path: Path) -> None:
    daemon = daemon_factory().start()
    # FROM scratch with one file: no registry needed, and no sh to run anything with
    repo = make_repo(tmp_path / "shell-less", {
        "env/Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "env/hello.txt": "hi\n",
        ".kilod.toml": f'dockerfile = "env/Dockerfile"\n[args]\nRUN_ID = "{secrets.token_hex(4)}"\n',
    })
    attempt = run(daemon, repo, "failed")
    assert attempt["state"] == "failed", "an image without sh must not reach review"
    assert "kilod needs sh in the image (kilod-env:" in attempt["error"], attempt["error"]


def test_an_untrusted_repository_devcontainer_is_noted_not_built(daemon_factory: Callable[..., DaemonProcess],
                                                                 devcontainer_repo: Path) -> None:
    daemon = daemon_factory().start()
    card = daemon.request("POST", "/v1/cards", {"prompt": "p", "repo": str(devcontainer_repo),
                                                "models": ["scripted/steady"]})
    assert card["settings"]["dockerfile"] is None and card["settings"]["setup"] == []
    assert ".devcontainer/devcontainer.json" in card["settings_source"]["ignored"]
    assert "not trusted" in card["settings_source"]["note"]
    daemon.wait_state(card["attempts"][0]["id"], "review")


def test_a_devcontainer_only_repository_is_built_only_once_trusted_and_again_after_a_change(
        daemon_factory: Callable[..., DaemonProcess], tmp_path: Path, sandbox_image: str) -> None:
    daemon = daemon_factory().start()
    run_id = secrets.token_hex(6)
    repo = make_repo(tmp_path / "dev-only", {  # no .kilod.toml: the devcontainer alone configures the sandbox
        "README.md": "# r\n",
        ".devcontainer/devcontainer.json": json.dumps({
            "build": {"dockerfile": "Dockerfile", "args": {"RUN_ID": run_id}},
            "containerEnv": {"GREETING": "hi"}, "postCreateCommand": "echo created > /tmp/created"}),
        ".devcontainer/Dockerfile": f"FROM {sandbox_image}\nARG RUN_ID\nUSER root\n"
                                    "RUN echo \"$RUN_ID\" > /etc/kilod-test-run\n",
    })
    default_image = str(docker.from_env().images.get(sandbox_image).id)

    def card_in_review() -> tuple[dict[str, Any], dict[str, Any]]:
        card = daemon.request("POST", "/v1/cards", {"prompt": "env", "repo": str(repo), "models": ["scripted/steady"]})
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review", "failed", timeout=600)
        assert attempt["state"] == "review", attempt["error"]
        return card, attempt

    card, attempt = card_in_review()
    source = card["settings_source"]
    assert source["trusted"] is False and card["settings"]["dockerfile"] is None and card["settings"]["env"] == {}
    assert source["files"] == [".devcontainer/devcontainer.json", ".devcontainer/Dockerfile"]
    assert "not used" in source["note"] and ".devcontainer/Dockerfile" in source["note"]
    assert sandbox_image_id(attempt["id"]) == default_image  # kilod's own image: nothing was built
    assert not any(m.startswith("building") for m in image_events(daemon, attempt["id"]))

    shown = kilod_cli(daemon, "ctl", "trust", str(repo), "--json")
    assert [f["path"] for f in json.loads(shown.stdout)["files"] if f["exists"]] == source["files"]
    trusted = kilod_cli(daemon, "ctl", "trust", str(repo), "--yes")
    assert trusted.returncode == 0, trusted.stderr
    assert "RUN echo" in trusted.stdout and '"postCreateCommand"' in trusted.stdout  # both files were shown
    card, attempt = card_in_review()
    assert card["settings_source"]["trusted"] is True
    built = sandbox_image_id(attempt["id"])
    assert built != default_image and any(m.startswith("building image") for m in image_events(daemon, attempt["id"]))
    env = docker.from_env().containers.get(f"kilod-{attempt['id']}").attrs["Config"]["Env"]
    assert "GREETING=hi" in env

    # a merged change to the Dockerfile: the next card is back on the safe defaults, nothing built
    dockerfile = repo / ".devcontainer/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo changed\n")
    git(repo, "commit", "-qam", "change the image")
    card, attempt = card_in_review()
    assert card["settings_source"]["trusted"] is False and card["settings"]["dockerfile"] is None
    assert sandbox_image_id(attempt["id"]) == default_image
    assert not any(m.startswith("building") for m in image_events(daemon, attempt["id"]))
