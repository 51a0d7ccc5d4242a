"""The reconciler and a discard remove the same containers at once: both succeed quietly (real Docker)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from kilod.sandbox.base import LABEL_ATTEMPT, LABEL_INSTANCE
from kilod.sandbox.docker import DockerSandbox
from tests.kilod_testing import DaemonProcess, new_instance, remove_labelled

RACERS = 6


@pytest.fixture
def instance(sandbox_image: str) -> Iterator[str]:
    label = new_instance()
    yield label
    remove_labelled(label)


def labelled_containers(image: str, instance: str, count: int) -> list[str]:
    client = docker.from_env()
    names = []
    for n in range(count):
        name = f"kilod-{instance}-{n}"
        client.containers.create(image, command=["sleep", "600"], name=name,
                                 labels={LABEL_ATTEMPT: f"{instance}-{n}", LABEL_INSTANCE: instance})
        names.append(name)
    client.close()
    return names


def race(work: Callable[[], object], threads: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # the test reports every failure
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return errors


def test_removing_and_listing_while_others_remove_never_raises(sandbox_image: str, instance: str) -> None:
    names = labelled_containers(sandbox_image, instance, 8)
    sandbox = DockerSandbox()
    removed: list[bool] = []

    def remove_all() -> None:
        for name in names:
            removed.append(sandbox.remove(name))

    def list_and_remove() -> None:
        for info in sandbox.list_labelled(instance):
            removed.append(sandbox.remove(info.name))

    errors = race(lambda: (remove_all(), list_and_remove()), RACERS)
    assert errors == []
    assert removed.count(True) == len(names)  # each removed exactly once; the others saw it gone
    assert sandbox.list_labelled(instance) == []


def test_discarding_while_the_reconciler_runs_logs_no_traceback(daemon_factory: type[DaemonProcess],
                                                                 repo: Path) -> None:
    daemon = daemon_factory({"KILOD_RECONCILE_INTERVAL": "0.05"}).start()
    card = daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo),
                                                "models": ["scripted/hello"] * 4})
    ids = [a["id"] for a in card["attempts"]]
    for attempt_id in ids:
        daemon.wait_state(attempt_id, "review")
    errors = race(lambda: [daemon.request("POST", f"/v1/attempts/{a}/discard") for a in ids], 4)
    assert errors == []
    assert all(daemon.attempt(a)["state"] == "discarded" for a in ids)
    log = daemon.log()
    assert "Traceback" not in log and '"level": "ERROR"' not in log and " ERROR " not in log, log[-3000:]
