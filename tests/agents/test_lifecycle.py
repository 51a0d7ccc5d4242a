"""Each agent CLI through an attempt's life: a follow-up continues its session, cancel kills its
process group, a `kill -9` of the daemon leaves it running and the next daemon re-attaches, a spent
budget stops it and the attempt waits in Review.

Where an agent differs, the test says so: aider runs no commands of its own (only edits), so it is
cancelled or its daemon killed while it waits on a slow model call (it retries the call against the
next daemon); mini-swe-agent has no session, so its follow-up restores its previous conversation
from its trajectory (see README, Agents)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agents.conftest import processes, wait_event
from tests.kilod_testing import DaemonProcess

SCRIPT_PREFIX = {"claude-code": "cc", "codex": "codex", "aider": "aider", "mini-swe-agent": "mini"}
OUTPUT_FILE = {"claude-code": "hello.txt", "codex": "codex.txt", "aider": "aider.txt", "mini-swe-agent": "mini.txt"}
SPEND_FILE = {"aider": "spend.py"}   # aider's model writes Python that never compiles, so its lint sends it back
# the first run on a machine builds a Python agent's venv for the sandbox image inside the test (minutes)
AGENTS = ["claude-code", "codex", pytest.param("aider", marks=pytest.mark.timeout(900)),
          pytest.param("mini-swe-agent", marks=pytest.mark.timeout(900))]


def new_card(daemon: DaemonProcess, repo: Path, agent: str, script: str, **extra: object) -> str:
    card = daemon.request("POST", "/v1/cards", {"prompt": "do the scripted thing", "repo": str(repo),
                                                "agents": [agent], "models": [f"scripted/{script}"], **extra})
    return str(card["attempts"][0]["id"])


def says(agent: str, summary: str, words: str) -> bool:
    """aider prints plain text, its reply among its own notes: its summary holds the reply, not only it."""
    return words in summary if agent == "aider" else summary == words


def wait_busy(agent: str, daemon: DaemonProcess, attempt_id: str) -> str:
    """The attempt's container once the agent is in its slow part: a slow command, or (aider) a slow model call."""
    if agent == "aider":
        wait_event(daemon, attempt_id, lambda e: e["payload"].get("agent") == "aider" and "stream" in e["payload"],
                   "aider's first output", timeout=240)
        container = str(daemon.attempt(attempt_id)["container"])
        daemon.wait_for(lambda: any("/opt/kilod/agents/aider" in p for p in processes(container)), 30,
                        "aider to run")
        return container
    wait_event(daemon, attempt_id, lambda e: e["kind"] == "tool_call", "the slow tool call", timeout=240)
    container = str(daemon.attempt(attempt_id)["container"])
    daemon.wait_for(lambda: any("sleep 8" in p for p in processes(container)), 30, "the slow command to run")
    return container


@pytest.mark.parametrize("agent", AGENTS)
def test_a_follow_up_continues_the_agents_own_session(agent: str, agent_daemon: Callable[..., DaemonProcess],
                                                      small_repo: Path) -> None:
    daemon = agent_daemon(agent)
    attempt_id = new_card(daemon, small_repo, agent, f"{SCRIPT_PREFIX[agent]}_followup")
    first = daemon.wait_state(attempt_id, "review", timeout=300)
    assert says(agent, first["summary"], "Wrote " + OUTPUT_FILE[agent] + "."), daemon.events(attempt_id)
    daemon.request("POST", f"/v1/attempts/{attempt_id}/messages", {"text": "append a second line"})
    second = daemon.wait_for(lambda: (a := daemon.attempt(attempt_id))["state"] == "review" and a["run"] == 2 and a,
                             300, "the follow-up run to reach review")
    # only a resumed session (or restored conversation) has the earlier turns, so only it gets the script's later steps
    assert says(agent, second["summary"], "Followed up in the same session."), daemon.events(attempt_id)
    started = [e["payload"]["message"] for e in daemon.events(attempt_id)
               if e["kind"] == "log" and str(e["payload"].get("message", "")).startswith("started ")]
    assert len(started) == 2 and "resuming session" in started[1]
    text = Path(second["worktree"], OUTPUT_FILE[agent]).read_text()
    assert text == "first run\nsecond run\n"


@pytest.mark.parametrize("agent", AGENTS)
def test_cancel_kills_the_agents_whole_process_group(agent: str, agent_daemon: Callable[..., DaemonProcess],
                                                     small_repo: Path) -> None:
    daemon = agent_daemon(agent)
    attempt_id = new_card(daemon, small_repo, agent, f"{SCRIPT_PREFIX[agent]}_slow")
    container = wait_busy(agent, daemon, attempt_id)
    daemon.request("POST", f"/v1/attempts/{attempt_id}/cancel")
    assert daemon.attempt(attempt_id)["state"] == "cancelled"
    left = processes(container)
    assert not [p for p in left if "sleep 8" in p or "/opt/kilod/agents/" in p], left
    assert not Path(daemon.attempt(attempt_id)["worktree"], "slow.txt").exists()


@pytest.mark.parametrize("agent", AGENTS)
def test_kill_9_of_the_daemon_leaves_the_agent_running_and_the_next_daemon_reattaches(
        agent: str, agent_daemon: Callable[..., DaemonProcess], small_repo: Path) -> None:
    daemon = agent_daemon(agent)
    attempt_id = new_card(daemon, small_repo, agent, f"{SCRIPT_PREFIX[agent]}_slow")
    container = wait_busy(agent, daemon, attempt_id)
    daemon.kill9()
    assert any("/opt/kilod/agents/" in p for p in processes(container)), "the agent died with the daemon"

    again = agent_daemon(agent, instance=daemon.instance, data_dir=daemon.data_dir)
    done = again.wait_state(attempt_id, "review", timeout=300)
    assert says(agent, done["summary"], "Done after sleeping."), again.events(attempt_id)
    events = again.events(attempt_id)
    logs = [str(e["payload"].get("message", "")) for e in events if e["kind"] == "log"]
    assert sum(m.startswith(f"started {agent}") for m in logs) == 1, logs   # launched once, not twice
    assert any(m.startswith(f"re-attaching to {agent}") for m in logs), logs
    calls = Counter(e["payload"]["id"] for e in events if e["kind"] == "tool_call")
    assert calls and max(calls.values()) == 1, calls                       # no event recorded twice
    assert [e["payload"]["to"] for e in events if e["kind"] == "state"].count("review") == 1
    assert Path(done["worktree"], "slow.txt").read_text() == "slept\n"     # the command (or edit) ran once


@pytest.mark.parametrize("agent", AGENTS)
def test_a_spent_budget_stops_the_agent_and_the_attempt_waits_in_review(
        agent: str, agent_daemon: Callable[..., DaemonProcess], small_repo: Path) -> None:
    daemon = agent_daemon(agent)
    attempt_id = new_card(daemon, small_repo, agent, f"{SCRIPT_PREFIX[agent]}_priced", budget={"tokens": 200})
    done = daemon.wait_state(attempt_id, "review", timeout=300)
    assert done["stop_reason"] and "budget" in done["stop_reason"], done
    assert done["tokens_in"] + done["tokens_out"] >= 200 and done["cost_usd"] > 0
    spent = Path(done["worktree"], SPEND_FILE.get(agent, "spend.txt")).read_text()
    assert "four" not in spent, spent
    refused = [e for e in daemon.events(attempt_id) if e["kind"] == "log" and "budget" in str(e["payload"])]
    assert refused, daemon.events(attempt_id)   # the reason is in the log, as the agent was told


def test_a_graceful_daemon_stop_leaves_the_agent_running_and_the_next_daemon_reattaches(
        agent_daemon: Callable[..., DaemonProcess], small_repo: Path) -> None:
    daemon = agent_daemon("claude-code")
    attempt_id = new_card(daemon, small_repo, "claude-code", "cc_slow")
    wait_event(daemon, attempt_id, lambda e: e["kind"] == "tool_call", "the slow tool call", timeout=180)
    container = daemon.attempt(attempt_id)["container"]
    daemon.stop()   # SIGTERM: the gateway's sockets close (their folders go); the agent keeps running
    assert daemon.process is not None and daemon.process.returncode == 0
    assert any("/opt/kilod/agents/" in p for p in processes(container)), "the agent stopped with the daemon"

    again = agent_daemon("claude-code", instance=daemon.instance, data_dir=daemon.data_dir)
    done = again.wait_state(attempt_id, "review", timeout=240)
    assert done["summary"] == "Done after sleeping."   # its next model call went through a new socket and sidecar
    logs = [str(e["payload"].get("message", "")) for e in again.events(attempt_id) if e["kind"] == "log"]
    assert sum(m.startswith("started claude-code") for m in logs) == 1, logs
