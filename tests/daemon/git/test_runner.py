"""The git runner and `Repository` against real repositories: failures carry git's words, absence is an answer."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from kilod.errors import Conflict, Invalid, Unavailable
from kilod.git.paths import inspect_repo
from kilod.git.repository import Repositories
from kilod.git.runner import GitFailed, config_value, is_ancestor, rev, run, run_git
from tests.kilod_testing import git


def test_a_failure_carries_exit_code_stderr_and_args(repo: Path) -> None:
    with pytest.raises(GitFailed) as caught:
        run_git("cat-file", "blob", "HEAD:missing.txt", git_dir=repo / ".git")
    assert caught.value.exit_code == 128
    assert "missing.txt" in caught.value.stderr and "does not exist" in caught.value.stderr
    assert caught.value.git_args == ("cat-file", "blob", "HEAD:missing.txt")
    assert caught.value.command == "cat-file"


def test_an_absent_ref_is_none_not_an_error(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    assert rev(repo / ".git", "main") == head
    assert rev(repo / ".git", "refs/heads/main") == head
    assert rev(repo / ".git", "refs/heads/no-such-branch") is None
    assert rev(repo / ".git", "0" * 40) is None
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert rev(repo / ".git", tree) is None  # a tree names no commit


def test_an_unusable_git_dir_is_a_failure_not_an_absent_ref(tmp_path: Path) -> None:
    """"Not there" must never stand for "git could not answer"."""
    (tmp_path / "not-a-repo").mkdir()
    with pytest.raises(GitFailed) as caught:
        rev(tmp_path / "not-a-repo", "main")
    assert caught.value.exit_code not in (0, 1)


def test_accepted_codes_are_answers(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "more.txt").write_text("more\n")
    git(repo, "add", "more.txt")
    git(repo, "commit", "-q", "-m", "more")
    second = git(repo, "rev-parse", "HEAD").strip()
    assert is_ancestor(repo / ".git", first, second)
    assert not is_ancestor(repo / ".git", second, first)
    assert config_value(repo / ".git", "kilod.nothing") is None
    git(repo, "config", "kilod.something", "set")
    assert config_value(repo / ".git", "kilod.something") == "set"
    assert run("config", "--get", "kilod.nothing", git_dir=repo / ".git", accept=(0, 1)).exit_code == 1


def test_stdin_takes_bytes_and_text_with_undecodable_bytes(repo: Path) -> None:
    raw = b"caf\xe9-latin1.txt"  # not UTF-8: a name an agent can create
    text = raw.decode("utf-8", "surrogateescape")
    from_text = run_git("hash-object", "--stdin", git_dir=repo / ".git", stdin=text).strip()
    from_bytes = run_git("hash-object", "--stdin", git_dir=repo / ".git", stdin=raw).strip()
    assert from_text == from_bytes
    assert from_bytes == hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
    out = run_git("hash-object", "-w", "--stdin", git_dir=repo / ".git", stdin=raw).strip()
    assert run_git("cat-file", "blob", out, git_dir=repo / ".git").encode("utf-8", "surrogateescape") == raw


def test_hooks_in_the_repository_config_never_run(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "reference-transaction").write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    (hooks / "reference-transaction").chmod(0o755)
    git(repo, "config", "core.hooksPath", str(hooks))
    run_git("update-ref", "refs/heads/probe", "HEAD", git_dir=repo / ".git")
    assert rev(repo / ".git", "refs/heads/probe") is not None
    assert not marker.exists()


# -- Repository: the one place GitFailed becomes an error of the tree ---------------------------------------


async def test_repository_maps_a_git_failure_to_unavailable(repo: Path) -> None:
    repository = await Repositories().open(str(repo))
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(Unavailable, match="git diff failed") as caught:
        await repository.diff(head, "f" * 40)
    assert isinstance(caught.value.__cause__, GitFailed)
    assert await repository.rev("refs/heads/absent") is None


async def test_repository_refuses_a_taken_branch_and_a_bad_base(repo: Path) -> None:
    repository = await Repositories().open(str(repo))
    git(repo, "branch", "kilod/taken-1")
    with pytest.raises(Conflict, match="already exists"):
        await repository.require_free_branches(["kilod/free-1", "kilod/taken-1"])
    await repository.require_free_branches(["kilod/free-1"])
    # a branch below the name as a folder blocks it just the same; a name that only starts alike does not
    git(repo, "branch", "kilod/folder-1/x")
    with pytest.raises(Conflict, match="kilod/folder-1/x already exists"):
        await repository.require_free_branches(["kilod/free-1", "kilod/folder-1", "kilod/free-2"])
    await repository.require_free_branches(["kilod/taken", "kilod/free-1", "kilod/free-2"])
    with pytest.raises(Invalid, match="unknown base ref"):
        await repository.resolve_base("no-such-branch")
    assert await repository.base_branch_of("HEAD") == "main"
    assert await repository.base_branch_of("main") == "main"
    git(repo, "tag", "v1")
    assert await repository.base_branch_of("v1") is None


async def test_one_lock_per_git_dir_across_linked_working_trees(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    repositories = Repositories()
    main, again, other = await asyncio.gather(repositories.open(str(repo)), repositories.open(str(repo)),
                                              repositories.open(str(linked)))
    assert main is again
    assert other.path == linked.resolve() and main.path == repo.resolve()
    assert other.common_dir == main.common_dir == inspect_repo(str(repo)).common_dir
    assert other.lock is main.lock
