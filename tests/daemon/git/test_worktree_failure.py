"""A worktree that git cannot check out leaves no branch, folder or admin entry of its own behind (real git).

What was there before the call (a branch a crash left, with or without commits) is adopted or left alone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kilod.git.paths import RepoPaths, inspect_repo
from kilod.git.refs import branch_exists
from kilod.git.runner import GitFailed
from kilod.git.worktree import _branch_was_taken, add_worktree, registered_worktrees
from tests.kilod_testing import git, make_repo


def commit_with_a_name_no_filesystem_takes(repo: Path) -> str:
    """A commit holding a 300-byte file name: fine for git, refused by the checkout (ENAMETOOLONG)."""
    blob = git(repo, "hash-object", "-w", "README.md").strip()
    listing = f"100644 blob {blob}\t{'x' * 300}\n100644 blob {blob}\tREADME.md\n"
    tree = subprocess.run(["git", "-C", str(repo), "mktree"], input=listing, capture_output=True, text=True,
                          check=True).stdout
    return git(repo, "commit-tree", tree.strip(), "-p", "HEAD", "-m", "too long").strip()


def with_branch_before(tmp_path: Path, branch: str, base_fails_checkout: bool = False) -> tuple[Path, RepoPaths, str]:
    """A repository where `branch` already exists (what a crash, or someone, left) at the base; (repo, paths, base)."""
    repo = make_repo(tmp_path / "repo")
    base = (commit_with_a_name_no_filesystem_takes(repo) if base_fails_checkout
            else git(repo, "rev-parse", "HEAD").strip())
    git(repo, "branch", branch, base)
    return repo, inspect_repo(str(repo)), base


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


def test_a_branch_left_at_the_base_by_a_crash_is_adopted(tmp_path: Path) -> None:
    """A crash between git making the branch and the checkout: the next start checks that branch out."""
    repo, paths, base = with_branch_before(tmp_path, "kilod/abc-1")
    worktree = tmp_path / "worktrees" / "abc-1"

    add_worktree(paths, worktree, "kilod/abc-1", base)

    assert git(worktree, "symbolic-ref", "HEAD").strip() == "refs/heads/kilod/abc-1"
    assert git(repo, "rev-parse", "refs/heads/kilod/abc-1").strip() == base
    assert (worktree / "README.md").exists()


def test_a_failed_adoption_keeps_the_branch_it_did_not_make(tmp_path: Path) -> None:
    """The branch was there before the call, at the very commit the undo compares against: it stays."""
    repo, paths, base = with_branch_before(tmp_path, "kilod/abc-1", base_fails_checkout=True)
    worktree = tmp_path / "worktrees" / "abc-1"

    with pytest.raises(GitFailed) as failed:
        add_worktree(paths, worktree, "kilod/abc-1", base)

    assert "too long" in failed.value.stderr  # the adoption's checkout failed, not the `-b`
    assert git(repo, "rev-parse", "refs/heads/kilod/abc-1").strip() == base
    assert not worktree.exists()
    assert registered_worktrees(paths) == {repo.resolve()}


def test_a_branch_folder_in_the_way_is_no_branch_to_adopt(tmp_path: Path) -> None:
    """`kilod/abc-1/x` blocks `kilod/abc-1` without being it: the add fails, the other branch stays."""
    repo, paths, base = with_branch_before(tmp_path, "kilod/abc-1/x")
    worktree = tmp_path / "worktrees" / "abc-1"

    with pytest.raises(GitFailed):
        add_worktree(paths, worktree, "kilod/abc-1", base)

    assert not branch_exists(paths, "kilod/abc-1")
    assert branch_exists(paths, "kilod/abc-1/x")
    assert not worktree.exists()
    assert registered_worktrees(paths) == {repo.resolve()}


@pytest.mark.parametrize(
    ("stderr", "taken"),
    [
        ("Preparing worktree (new branch 'kilod/abc-1')\nfatal: a branch named 'kilod/abc-1' already exists", True),
        ("fatal: A branch named 'kilod/abc-1' already exists.", True),  # older git
        ("fatal: a branch named 'kilod/abc-10' already exists", False),
        # a checkout error quoting a committed file named like the refusal is no refusal
        ("error: unable to create file fatal: a branch named 'kilod/abc-1' already exists: File name too long",
         False),
        ("fatal: cannot lock ref 'refs/heads/kilod/abc-1': 'refs/heads/kilod/abc-1/x' exists", False),
    ],
)
def test_only_git_refusing_the_name_counts_as_taken(stderr: str, taken: bool) -> None:
    failure = GitFailed(255, stderr, ("worktree", "add", "-b", "kilod/abc-1"))
    assert _branch_was_taken(failure, "kilod/abc-1") is taken
