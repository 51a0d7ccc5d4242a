"""No real key inside, one token per attempt: what an agent in a sandbox can and cannot see or reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import docker

from tests.agents.conftest import run_in, wait_event
from tests.kilod_testing import DaemonProcess

# what a daemon's provider keys would look like; none may ever reach a sandbox
REAL_KEYS = {"ANTHROPIC_API_KEY": "sk-ant-kilodtest-REAL-0001", "OPENAI_API_KEY": "sk-kilodtest-REAL-0002"}

ASK_GATEWAY = """
import json, sys, urllib.error, urllib.request
body = json.dumps({"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}).encode()
request = urllib.request.Request("http://127.0.0.1:41414/v1/messages", data=body, headers={
    "x-api-key": sys.argv[1], "content-type": "application/json", "anthropic-version": "2023-06-01"})
try:
    print(urllib.request.urlopen(request, timeout=20).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except (urllib.error.URLError, OSError) as exc:
    print("unreachable", exc)
"""


def agent_token(container: str) -> str:
    code, environ = run_in(container, "tr '\\0' '\\n' < /proc/$(cat /opt/kilod/state/runs/1/pid)/environ",
                           user="1000")
    assert code == 0, environ
    return next(line.split("=", 1)[1] for line in environ.splitlines() if line.startswith("ANTHROPIC_AUTH_TOKEN="))


def ask_gateway(container: str, token: str) -> str:
    return run_in(container, 'python3 -c "$1" "$2"', ASK_GATEWAY, token, user="1000")[1].strip()


def test_no_real_key_inside_and_each_attempts_token_works_only_on_its_own_gateway(
        agent_daemon: Callable[..., DaemonProcess], small_repo: Path) -> None:
    daemon = agent_daemon("claude-code", extra_env=REAL_KEYS)
    card = daemon.request("POST", "/v1/cards", {"prompt": "slow", "repo": str(small_repo), "repeat": 2,
                                                "agents": ["claude-code"], "models": ["scripted/cc_slow"]})
    a, b = (attempt["id"] for attempt in card["attempts"])
    for attempt_id in (a, b):
        wait_event(daemon, attempt_id, lambda e: e["kind"] == "tool_call", "a tool call", timeout=180)
    container_a, container_b = (daemon.attempt(x)["container"] for x in (a, b))
    token_a, token_b = agent_token(container_a), agent_token(container_b)
    assert token_a != token_b

    client = docker.from_env()
    try:
        for name in (container_a, container_b, f"{container_a}-gateway", f"{container_b}-gateway"):
            attrs = client.containers.get(name).attrs
            inspected = json.dumps(attrs)
            for secret in (*REAL_KEYS.values(), token_a, token_b):
                assert secret not in inspected, f"{secret[:12]}… in docker inspect {name}"
            if not name.endswith("-gateway"):  # the agent's container has no gateway socket mounted
                assert not [m for m in attrs["Mounts"] if "/gateway/" in m["Source"]], attrs["Mounts"]
                assert attrs["HostConfig"]["NetworkMode"] == "none"
        sidecar = client.containers.get(f"{container_a}-gateway").attrs
        assert [m["Source"] for m in sidecar["Mounts"]] == [str(daemon.data_dir / "gateway" / a)]
    finally:
        client.close()

    for container in (container_a, container_b):
        _, everything = run_in(container, "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; "
                                          "grep -rIho -e \"$1\" -e \"$2\" /opt/kilod/state /workspace /tmp; true",
                               *REAL_KEYS.values(), user="1000")
        assert "ANTHROPIC_AUTH_TOKEN=" in everything  # the agents' environment was read: the token, no key
        for key in REAL_KEYS.values():
            assert key not in everything, f"a real key is visible in {container}"
    for attempt_id in (a, b):
        logged = json.dumps(daemon.events(attempt_id))
        assert not any(key in logged for key in REAL_KEYS.values())

    assert ask_gateway(container_b, token_a) == "401"    # A's token on B's gateway
    assert ask_gateway(container_b, "not-a-token") == "401"
    daemon.request("POST", f"/v1/attempts/{a}/cancel")
    assert ask_gateway(container_a, token_a) != "200"    # and on its own, once A has ended
