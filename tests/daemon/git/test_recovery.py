"""Finishing a landing a daemon death cut short, with real git: from every state it can leave behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from kilod.errors import Conflict
from kilod.git.landing import merge_target
from kilod.git.recovery import repair_landing
from kilod.git.repository import Repositories, Repository
from tests.kilod_testing import git

from .test_landing import BRANCH, commit_on_main, head, plan, reviewed


@pytest.fixture
async def repository(repo: Path) -> Repository:
    return await Repositories().open(str(repo))


async def test_a_half_written_checkout_is_finished_and_the_refs_moved(
    repo: Path, repository: Repository, tmp_path: Path
) -> None:
    commit_on_main(repo, "old.txt", "goes away\n")
    files = {f"f{i}.txt": f"new {i}\n" for i in range(50)}
    worktree, base, tree = await reviewed(repository, tmp_path, {**files, "README.md": "rewritten\n"})
    (worktree / "old.txt").unlink()
    tree = (await repository.snapshot(worktree, base)).tree
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None
    target = merge_target(repository.paths, landing.merge)
    assert target.update_files
    # what a killed `read-tree -m -u` leaves: some files written, the old index, its lock
    for i in range(20):
        (repo / f"f{i}.txt").write_text(f"new {i}\n")
    (repo / "f20.txt").write_text("new 2")   # cut mid-write
    (repo / ".git" / "index.lock").write_bytes(b"partial index")

    done = repair_landing(repository.paths, landing, target)

    assert head(repo, BRANCH) == landing.commit and head(repo, "main") == landing.merge.new
    assert any("index.lock" in step for step in done) and any("finished updating" in step for step in done)
    assert not (repo / ".git" / "index.lock").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert (repo / "f49.txt").read_text() == "new 49\n" and (repo / "f20.txt").read_text() == "new 20\n"
    assert (repo / "README.md").read_text() == "rewritten\n" and not (repo / "old.txt").exists()
    assert repair_landing(repository.paths, landing, target) == []   # a second start finds it complete


async def test_a_landing_not_begun_is_done_carefully(repo: Path, repository: Repository, tmp_path: Path) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"new.txt": "new\n"})
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None
    target = merge_target(repository.paths, landing.merge)

    done = repair_landing(repository.paths, landing, target)
    assert done[0].startswith(f"moved {BRANCH}") and any(step.startswith("updated ") for step in done)
    assert (repo / "new.txt").read_text() == "new\n" and git(repo, "status", "--porcelain") == ""


async def test_a_branch_a_person_moved_since_is_left_alone(
    repo: Path, repository: Repository, tmp_path: Path
) -> None:
    _, base, tree = await reviewed(repository, tmp_path, {"new.txt": "new\n"})
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None
    target = merge_target(repository.paths, landing.merge)
    await repository.commit_landing(landing)
    moved = commit_on_main(repo, "theirs.txt", "a person's commit\n")

    with pytest.raises(Conflict, match="moved"):
        repair_landing(repository.paths, landing, target)
    assert head(repo, "main") == moved and not (repo / "new.txt").exists()
    assert git(repo, "status", "--porcelain") == ""
