"""kill -9 the daemon: nothing is lost, nothing is duplicated, running attempts resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import docker

from tests.kilod_testing import DaemonProcess


def containers_of(attempt_id: str) -> list[str]:
    client = docker.from_env()
    try:
        # sparse: the list call alone; a full list inspects each container and fails with NotFound if one goes
        # in between, which would end the watch's thread and leave it counting nothing
        listed = client.containers.list(all=True, sparse=True, filters={"label": f"kilod.attempt={attempt_id}"})
        return [c.id for c in listed]
    finally:
        client.close()


class ContainerWatch:
    """Samples the containers of one attempt in the background, for the whole test."""

    def __init__(self, attempt_id: str) -> None:
        self.attempt_id = attempt_id
        self.most = 0
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ids = containers_of(self.attempt_id)
            self.most = max(self.most, len(ids))
            self.seen.update(ids)
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def restart(factory: type[DaemonProcess], old: DaemonProcess, extra: dict[str, str] | None = None) -> DaemonProcess:
    return factory(extra, instance=old.instance, data_dir=old.data_dir).start()


def test_kill9_while_in_review_keeps_card_attempts_events_and_worktree(
    daemon_factory: type[DaemonProcess], repo: Path
) -> None:
    first = daemon_factory().start()
    card = first.request("POST", "/v1/cards", {"prompt": "hello", "repo": str(repo), "models": ["scripted/hello"]})
    attempt_id = card["attempts"][0]["id"]
    before = first.wait_state(attempt_id, "review")
    events_before = first.events(attempt_id)
    container_before = containers_of(attempt_id)
    assert len(container_before) == 1

    first.kill9()
    second = restart(daemon_factory, first)
    assert second.request("GET", f"/v1/cards/{card['id']}")["title"] == card["title"]
    after = second.attempt(attempt_id)
    assert after == before
    assert second.events(attempt_id) == events_before
    assert (Path(after["worktree"]) / "HELLO.md").exists()
    # let the reconciler run a few passes: it must adopt, not duplicate or remove
    second.wait_for(lambda: second.request("GET", "/v1/status")["litellm_ready"], what="litellm")
    time.sleep(3)
    assert containers_of(attempt_id) == container_before


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".git"
    }


def test_kill9_mid_script_resumes_in_the_same_container_with_the_same_result(
    daemon_factory: type[DaemonProcess], repo: Path
) -> None:
    first = daemon_factory().start()
    card = first.request("POST", "/v1/cards", {
        "prompt": "resume me", "repo": str(repo), "models": ["scripted/resumable"],
    })
    attempt_id = card["attempts"][0]["id"]
    watch = ContainerWatch(attempt_id)
    try:
        # kill while the agent's second tool (a 4 s shell command) runs inside the container
        first.wait_for(
            lambda: any(e["kind"] == "tool_call" and e["payload"]["name"] == "shell" for e in first.events(attempt_id)),
            what="the shell tool call",
        )
        original = containers_of(attempt_id)
        first.kill9()
        second = restart(daemon_factory, first)
        resumed = second.wait_state(attempt_id, "review")
    finally:
        watch.stop()

    assert watch.most == 1
    assert watch.seen == set(original)
    events = second.events(attempt_id)
    assert any(e["kind"] == "log" and "resuming the conversation" in e["payload"]["message"] for e in events)
    # every model turn happened once: the conversation was resumed, not replayed
    assert [e["payload"]["step"] for e in events if e["kind"] == "message"] == [1, 2, 3, 4, 5, 6]
    assert resumed["steps"] == 6

    # the same script, uninterrupted, in the same daemon: the worktrees must match
    control = second.request("POST", "/v1/cards", {
        "prompt": "resume me", "repo": str(repo), "models": ["scripted/resumable"],
    })
    control_attempt = second.wait_state(control["attempts"][0]["id"], "review")
    resumed_tree = tree(Path(resumed["worktree"]))
    assert resumed_tree == tree(Path(control_attempt["worktree"]))
    assert resumed_tree["notes/all.txt"] == "one\ntwo\nthree\n"
    assert '"Hello, "' in resumed_tree["greeter.py"]
    assert resumed["summary"] == control_attempt["summary"]
