"""A worktree that git cannot check out leaves no branch, folder or admin entry behind (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kilod.git.paths import inspect_repo
from kilod.git.refs import branch_exists
from kilod.git.runner import GitFailed
from kilod.git.worktree import add_worktree, registered_worktrees
from tests.kilod_testing import git, make_repo


def commit_with_a_name_no_filesystem_takes(repo: Path) -> str:
    """A commit holding a 300-byte file name: fine for git, refused by the checkout (ENAMETOOLONG)."""
    blob = git(repo, "hash-object", "-w", "README.md").strip()
    listing = f"100644 blob {blob}\t{'x' * 300}\n100644 blob {blob}\tREADME.md\n"
    tree = subprocess.run(["git", "-C", str(repo), "mktree"], input=listing, capture_output=True, text=True,
                          check=True).stdout
    return git(repo, "commit-tree", tree.strip(), "-p", "HEAD", "-m", "too long").strip()


def test_a_failed_checkout_takes_back_the_branch_it_made(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    base = commit_with_a_name_no_filesystem_takes(repo)
    paths = inspect_repo(str(repo))
    worktree = tmp_path / "worktrees" / "abc-1"
    with pytest.raises(GitFailed) as failed:
        add_worktree(paths, worktree, "kilod/abc-1", base)
    assert "too long" in failed.value.stderr
    assert not branch_exists(paths, "kilod/abc-1")
    assert not worktree.exists()
    assert registered_worktrees(paths) == {repo.resolve()}
    # and a later attempt with the same name starts clean
    add_worktree(paths, worktree, "kilod/abc-1", git(repo, "rev-parse", "HEAD").strip())
    assert branch_exists(paths, "kilod/abc-1") and (worktree / "README.md").exists()
