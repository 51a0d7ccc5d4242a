"""Which drivers a landing runs on the host: git-lfs's filter (LFS files arrive smudged), nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from kilod.git.repository import Repositories, Repository
from tests.kilod_testing import git

from .test_landing import commit_on_main, plan, reviewed


@pytest.fixture
async def repository(repo: Path) -> Repository:
    return await Repositories().open(str(repo))


def configure_drivers(repo: Path, marker: Path) -> None:
    """The user's own drivers: a stand-in for git-lfs, and another that leaves a mark when it runs."""
    git(repo, "config", "filter.lfs.smudge", "sed s/pointer/smudged/")
    git(repo, "config", "filter.lfs.clean", "sed s/smudged/pointer/")
    git(repo, "config", "filter.lfs.required", "true")
    for part in ("smudge", "clean"):
        git(repo, "config", f"filter.marker.{part}", f"touch {marker}-{part}; cat")
    git(repo, "config", "filter.proc.process", f"sh -c 'touch {marker}-process; exit 1'")
    git(repo, "config", "merge.marker.driver", f"touch {marker}-merge; false")


async def test_a_merge_smudges_lfs_files_and_runs_no_other_driver(
    repo: Path, repository: Repository, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    commit_on_main(repo, ".gitattributes", "*.big filter=lfs\n*.mark filter=marker merge=marker\n*.proc filter=proc\n")
    configure_drivers(repo, marker)
    _, base, tree = await reviewed(repository, tmp_path, {
        "asset.big": "pointer 1\n", "notes.mark": "agent notes\n", "run.proc": "agent process file\n"})
    landing = await plan(repository, base, tree, merge=True)
    assert landing.merge is not None
    await repository.commit_landing(landing)
    merged = await repository.land_merge(landing.merge)

    assert merged.worktree_updated is not None
    assert (repo / "asset.big").read_text() == "smudged 1\n"       # as `git merge` with git-lfs would leave it
    assert (repo / "notes.mark").read_text() == "agent notes\n"
    assert (repo / "run.proc").read_text() == "agent process file\n"
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == []     # no other filter or merge driver ran
    assert git(repo, "show", "main:asset.big") == "pointer 1\n"    # the commit holds what was reviewed
