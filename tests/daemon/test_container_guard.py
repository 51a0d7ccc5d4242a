"""ContainerWatch against the real engine: one list of the running containers watches every attempt's container."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial

import docker
import pytest

from kilod.container_guard import ContainerRemoved, ContainerWatch
from kilod.errors import Unavailable
from kilod.sandbox.base import LABEL_ATTEMPT, LABEL_INSTANCE
from kilod.sandbox.docker import DockerSandbox
from tests.kilod_testing import new_instance, remove_labelled

HANG_GUARD = 60.0   # a broken watch fails the test instead of hanging it; never a timing assert


@pytest.fixture
def instance() -> Iterator[str]:
    name = new_instance()
    yield name
    remove_labelled(name)


def start(image: str, instance: str, n: int) -> str:
    container = docker.from_env().containers.run(
        image, ["sleep", "600"], detach=True, name=f"{instance}-{n}",
        labels={LABEL_INSTANCE: instance, LABEL_ATTEMPT: f"{instance}-{n}"})
    return str(container.id)


class Counted:
    """The sandbox's own calls, counted: how many requests the watch makes."""

    def __init__(self, instance: str, fail_first_lists: int = 0) -> None:
        self.sandbox = DockerSandbox()
        self.instance = instance
        self.lists = 0
        self.inspects = 0
        self.fail_first_lists = fail_first_lists

    def running(self) -> set[str]:
        self.lists += 1
        if self.lists <= self.fail_first_lists:
            raise Unavailable("cannot list the running containers: the engine is restarting")
        return self.sandbox.running_ids(self.instance)

    def exists(self, container_id: str) -> bool:
        self.inspects += 1
        return self.sandbox.is_running(container_id)

    def watch(self) -> ContainerWatch:
        return ContainerWatch(self.running, self.exists, interval=0.2)


def test_running_ids_lists_only_the_instances_running_containers(sandbox_image: str, instance: str) -> None:
    kept, stopped = start(sandbox_image, instance, 1), start(sandbox_image, instance, 2)
    docker.from_env().containers.get(stopped).kill()
    assert DockerSandbox().running_ids(instance) == {kept}
    assert DockerSandbox().running_ids(new_instance()) == set()


def test_a_removed_container_fails_its_own_work_only_and_nothing_is_inspected_per_container(
        sandbox_image: str, instance: str) -> None:
    removed_id, kept_id = start(sandbox_image, instance, 1), start(sandbox_image, instance, 2)
    counted = Counted(instance)

    async def scenario() -> None:
        watch = counted.watch()
        finish = asyncio.Event()
        cancelled = asyncio.Event()

        async def work(result: str) -> str:
            try:
                await finish.wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return result

        doomed = asyncio.create_task(watch.guard(work("never"), removed_id))
        kept = asyncio.create_task(watch.guard(work("done"), kept_id))
        while counted.lists < 2:   # both watched through at least one list
            await asyncio.sleep(0.05)
        await asyncio.to_thread(lambda: docker.from_env().containers.get(removed_id).remove(force=True))
        with pytest.raises(ContainerRemoved, match="container removed"):
            await asyncio.wait_for(doomed, HANG_GUARD)
        assert cancelled.is_set()          # the removed container's work was stopped
        assert not kept.done()             # the other attempt's was not
        assert counted.inspects == 0       # the lists did the watching, not one inspect per container
        finish.set()
        assert await asyncio.wait_for(kept, HANG_GUARD) == "done"
        assert counted.inspects == 1       # the one check when the work ended

    asyncio.run(scenario())


def test_a_killed_container_counts_as_removed_and_a_failing_list_is_tried_again(
        sandbox_image: str, instance: str) -> None:
    container_id = start(sandbox_image, instance, 1)
    counted = Counted(instance, fail_first_lists=2)

    async def scenario() -> None:
        watch = counted.watch()
        guarded = asyncio.create_task(watch.guard(asyncio.Event().wait(), container_id))
        while counted.lists < 4:   # two lists failed (the engine restarting), then two worked
            await asyncio.sleep(0.05)
        assert not guarded.done()   # a list that failed fails no attempt
        await asyncio.to_thread(lambda: docker.from_env().containers.get(container_id).kill())
        with pytest.raises(ContainerRemoved):
            await asyncio.wait_for(guarded, HANG_GUARD)

    asyncio.run(scenario())


def test_work_that_ends_as_its_container_goes_still_fails(sandbox_image: str, instance: str) -> None:
    """A removal is often what ends the work: it is checked when the work ends, not only by the next list."""
    container_id = start(sandbox_image, instance, 1)
    counted = Counted(instance)

    async def scenario() -> None:
        watch = ContainerWatch(counted.running, counted.exists, interval=HANG_GUARD)   # no list will come

        async def work() -> str:
            await asyncio.to_thread(partial(docker.from_env().containers.get(container_id).remove, force=True))
            return "finished as if nothing happened"

        with pytest.raises(ContainerRemoved):
            await watch.guard(work(), container_id)
        assert counted.lists == 0

    asyncio.run(scenario())
