"""Landing reviewed work with real git and no Docker: plan, commit, merge; nothing moves unless all of it can."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kilod.errors import Conflict
from kilod.git.landing import Identity, LandingPlan
from kilod.git.repository import Repositories, Repository
from kilod.git.worktree import add_worktree
from tests.kilod_testing import GREETER, git

BRANCH = "kilod/land-1"
WHO = Identity("Reviewer", "reviewer@kilod.invalid")


@pytest.fixture
async def repository(repo: Path) -> Repository:
    return await Repositories().open(str(repo))


def head(repo: Path, ref: str = "HEAD") -> str:
    return git(repo, "rev-parse", ref).strip()


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def commit_on_main(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"main: {name}")
    return head(repo)


async def reviewed(repository: Repository, tmp_path: Path, files: dict[str, str]) -> tuple[Path, str, str]:
    """A worktree on BRANCH with the agent's files written; (worktree, base commit, snapshot tree)."""
    base = head(repository.path)
    worktree = tmp_path / "worktrees" / "land-1"
    add_worktree(repository.paths, worktree, BRANCH, base)
    for name, text in files.items():
        (worktree / name).write_text(text)
    return worktree, base, (await repository.snapshot(worktree, base)).tree


async def plan(repository: Repository, base: str, tree: str, merge: bool) -> LandingPlan:
    return await repository.plan_landing(BRANCH, base, tree, "the agent's work\n", WHO,
                                         "main" if merge else None, f"Merge {BRANCH}")


async def test_commit_only_moves_the_attempt_branch(repo: Path, repository: Repository, tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"new.txt": "new\n"})
    landing = await plan(repository, base, tree, merge=False)
    assert head(repo, BRANCH) == base  # planning moved nothing

    await repository.commit_landing(landing)

    assert head(repo, BRANCH) == landing.commit
    assert head(repo, f"{BRANCH}^{{tree}}") == tree
    assert head(repo, f"{BRANCH}^") == base
    assert git(repo, "log", "-1", "--format=%an <%ae>%n%B", BRANCH).startswith(
        "Reviewer <reviewer@kilod.invalid>\nthe agent's work")
    assert head(repo, "main") == base


async def test_fast_forward_updates_a_clean_checkout(repo: Path, repository: Repository, tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"greeter.py": GREETER + "# reviewed\n"})
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None and landing.merge.fast_forward

    await repository.commit_landing(landing)
    merged = await repository.land_merge(landing.merge)

    assert merged.fast_forward and merged.head == landing.commit == head(repo, "main")
    assert merged.worktree_updated is not None and Path(merged.worktree_updated).resolve() == repo.resolve()
    assert (repo / "greeter.py").read_text() == GREETER + "# reviewed\n"
    assert git(repo, "status", "--porcelain") == ""


async def test_a_moved_base_gets_a_merge_commit(repo: Path, repository: Repository, tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"agent.txt": "from the agent\n"})
    theirs = commit_on_main(repo, "human.txt", "from a person\n")
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None and not landing.merge.fast_forward

    await repository.commit_landing(landing)
    merged = await repository.land_merge(landing.merge)

    assert head(repo, "main") == merged.head != landing.commit
    parents = git(repo, "rev-list", "--parents", "-n", "1", "main").split()[1:]
    assert parents == [theirs, landing.commit]
    assert (repo / "agent.txt").read_text() == "from the agent\n"
    assert (repo / "human.txt").read_text() == "from a person\n"


async def test_a_conflict_changes_nothing(repo: Path, repository: Repository, tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"greeter.py": "the agent's version\n"})
    commit_on_main(repo, "greeter.py", "a person's version\n")
    before = refs(repo)

    with pytest.raises(Conflict, match="conflicts in 1 file") as caught:
        await plan(repository, base, tree, merge=True)

    assert caught.value.details == {"paths": ["greeter.py"]}
    assert refs(repo) == before
    assert (repo / "greeter.py").read_text() == "a person's version\n"
    assert git(repo, "status", "--porcelain") == ""


async def test_a_dirty_base_checkout_keeps_its_files(repo: Path, repository: Repository, tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"agent.txt": "from the agent\n"})
    (repo / "greeter.py").write_text("unsaved work of a person\n")
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None

    await repository.commit_landing(landing)
    merged = await repository.land_merge(landing.merge)

    assert head(repo, "main") == landing.commit
    assert merged.worktree_updated is None and merged.checkout is not None
    assert "local changes" in merged.note
    assert (repo / "greeter.py").read_text() == "unsaved work of a person\n"
    assert not (repo / "agent.txt").exists()


async def test_the_attempt_branch_moved_meanwhile_is_not_overwritten(repo: Path, repository: Repository,
                                                                      tmp_path: Path) -> None:
    worktree, base, tree = await reviewed(repository, tmp_path, {"new.txt": "new\n"})
    landing = await plan(repository, base, tree, merge=True)
    (worktree / "sneaky.txt").write_text("committed after the review\n")
    git(worktree, "add", "sneaky.txt")
    git(worktree, "commit", "-q", "-m", "after the review")
    moved = head(repo, BRANCH)

    with pytest.raises(Conflict, match="moved while kilod was updating it"):
        await repository.commit_landing(landing)

    assert head(repo, BRANCH) == moved
    assert head(repo, "main") == base


async def test_the_base_branch_moved_meanwhile_is_not_overwritten(repo: Path, repository: Repository,
                                                                   tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"new.txt": "new\n"})
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None
    await repository.commit_landing(landing)
    git(repo, "checkout", "-q", "--detach")  # so the person's commit lands on main without a checkout
    git(repo, "update-ref", "refs/heads/main", commit_on_main(repo, "human.txt", "h\n"))
    moved = head(repo, "main")

    with pytest.raises(Conflict, match="moved while kilod was updating it"):
        await repository.land_merge(landing.merge)

    assert head(repo, "main") == moved


async def test_a_second_plan_after_an_interrupted_approve_reuses_the_commit(repo: Path, repository: Repository,
                                                                           tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"new.txt": "new\n"})
    first = await plan(repository, base, tree, merge=True)
    await repository.commit_landing(first)  # then the daemon died before the merge

    again = await plan(repository, base, tree, merge=True)
    assert again.commit == first.commit and again.branch_head == first.commit
    await repository.commit_landing(again)
    assert again.merge is not None
    merged = await repository.land_merge(again.merge)
    assert merged.head == first.commit == head(repo, "main")
    assert git(repo, "rev-list", "--count", f"{base}..main").strip() == "1"

    already = await repository.land_merge(replace(again.merge, old=first.commit, new=first.commit))
    assert "already contained" in already.note


async def test_a_driver_named_by_the_work_does_not_run_on_the_host(repo: Path, repository: Repository,
                                                                   tmp_path: Path) -> None:
    marker = tmp_path / "driver-ran"
    git(repo, "config", "filter.mine.smudge", f"sh -c 'touch {marker}; cat'")
    git(repo, "config", "filter.mine.clean", f"sh -c 'touch {marker}; cat'")
    _, base, tree = await reviewed(repository, tmp_path, {".gitattributes": "*.txt filter=mine\n",
                                                          "new.txt": "new\n"})
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None and "filter.mine.smudge=" in landing.merge.drivers

    await repository.commit_landing(landing)
    await repository.land_merge(landing.merge)

    assert (repo / "new.txt").read_text() == "new\n"
    assert not marker.exists()
