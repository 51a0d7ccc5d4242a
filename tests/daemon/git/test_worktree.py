"""Host-side git against real repositories: validation, refs, worktrees, diffstat, no hooks."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kilod.errors import Invalid
from kilod.git.diff import FileStat, worktree_diff
from kilod.git.paths import RepoPaths, inspect_repo
from kilod.git.refs import branch_exists, resolve_base
from kilod.git.worktree import add_worktree, registered_worktrees, remove_worktree
from tests.kilod_testing import GREETER, README, git, make_repo

BRANCH = "kilod/abc-1"


@pytest.fixture
def info(repo: Path) -> RepoPaths:
    return inspect_repo(str(repo))


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def plant_hook(repo: Path, name: str, marker: Path) -> None:
    hook = repo / ".git" / "hooks" / name
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f"#!/bin/sh\necho ran >> '{marker}'\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


# -- inspect_repo ----------------------------------------------------------------


def test_inspect_repo_accepts_a_working_tree(repo: Path) -> None:
    found = inspect_repo(str(repo))
    assert found.path == repo.resolve()
    assert found.common_dir == (repo / ".git").resolve()


def test_inspect_repo_rejects_relative_paths(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.parent)
    with pytest.raises(Invalid, match="absolute path") as caught:
        inspect_repo(repo.name)  # would exist relative to the cwd: still refused
    assert caught.value.details == {"field": "repo"}


def test_inspect_repo_rejects_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="does not exist") as caught:
        inspect_repo(str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in caught.value.message


def test_inspect_repo_rejects_a_file(repo: Path) -> None:
    with pytest.raises(Invalid, match="not a directory"):
        inspect_repo(str(repo / "greeter.py"))


def test_inspect_repo_rejects_a_plain_folder(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(Invalid, match="not a git repository"):
        inspect_repo(str(tmp_path / "plain"))


def test_inspect_repo_rejects_a_subdirectory_of_a_repo(repo: Path) -> None:
    (repo / "src").mkdir()
    with pytest.raises(Invalid, match="not a git repository") as caught:
        inspect_repo(str(repo / "src"))
    assert str(repo / "src") in caught.value.message


def test_inspect_repo_rejects_a_bare_repo(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    with pytest.raises(Invalid, match="bare repository"):
        inspect_repo(str(bare))


def test_inspect_repo_rejects_a_repo_git_dir(repo: Path) -> None:
    """`<repo>/.git` is not the top of a working tree: it must not become the card's repo path."""
    with pytest.raises(Invalid):
        found = inspect_repo(str(repo / ".git"))
        pytest.fail(f"accepted {repo / '.git'} as a working tree: {found}")


# -- resolve_base ---------------------------------------------------------------


def test_resolve_base_branch_tag_sha_head(repo: Path, info: RepoPaths) -> None:
    first = head(repo)
    git(repo, "tag", "-a", "v1", "-m", "annotated")
    git(repo, "tag", "light")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f.txt").write_text("f\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "feature")
    second = head(repo)

    assert resolve_base(info, "main") == first
    assert resolve_base(info, "feature") == second
    assert resolve_base(info, "HEAD") == second
    assert resolve_base(info, "HEAD~1") == first
    assert resolve_base(info, "v1") == first  # an annotated tag peels to its commit
    assert resolve_base(info, "light") == first
    assert resolve_base(info, first) == first
    assert resolve_base(info, first[:10]) == first
    assert len(second) == 40


@pytest.mark.parametrize("ref", ["nope", "--all", "-h", "", "main two", "main\n", "0" * 40, "HEAD:README.md"])
def test_resolve_base_refuses_what_names_no_commit(info: RepoPaths, ref: str) -> None:
    with pytest.raises(Invalid, match="unknown base ref") as caught:
        resolve_base(info, ref)
    assert caught.value.details == {"field": "base"}


def test_resolve_base_refuses_a_tree(repo: Path, info: RepoPaths) -> None:
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    with pytest.raises(Invalid):
        resolve_base(info, tree)


# -- add_worktree / remove_worktree ------------------------------------------------


def test_add_worktree_creates_branch_at_base(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    base = head(repo)
    (repo / "later.txt").write_text("after the base\n")
    git(repo, "add", "later.txt")
    git(repo, "commit", "-q", "-m", "later")
    worktree = tmp_path / "data" / "worktrees" / "abc-1"

    add_worktree(info, worktree, BRANCH, base)

    assert (worktree / "greeter.py").read_text() == GREETER
    assert (worktree / "README.md").read_text() == README
    assert not (worktree / "later.txt").exists()
    assert git(repo, "rev-parse", f"refs/heads/{BRANCH}").strip() == base
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == BRANCH
    assert branch_exists(info, BRANCH)
    assert worktree in registered_worktrees(info)
    assert (worktree / ".git").read_text() == f"gitdir: {info.worktree_git_dir(worktree)}\n"
    assert git(worktree, "status", "--porcelain") == ""
    # the user's own checkout is untouched
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_add_worktree_is_idempotent_and_adopts(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    (worktree / "work.txt").write_text("the agent's work\n")
    (worktree / "greeter.py").write_text("changed\n")

    add_worktree(info, worktree, BRANCH, head(repo))

    assert (worktree / "work.txt").read_text() == "the agent's work\n"
    assert (worktree / "greeter.py").read_text() == "changed\n"
    listed = git(repo, "worktree", "list", "--porcelain")
    assert listed.count(f"worktree {worktree}\n") == 1


def test_add_worktree_adopts_when_the_data_dir_is_reached_through_a_symlink(
    repo: Path, info: RepoPaths, tmp_path: Path
) -> None:
    """A data dir behind a symlink (macOS /tmp, a moved ~/.local/share) must still mean "adopt"."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    worktree = tmp_path / "link" / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    (worktree / "work.txt").write_text("the agent's work\n")

    add_worktree(info, worktree, BRANCH, head(repo))

    assert (worktree / "work.txt").exists(), "the second add_worktree deleted the existing checkout"


def test_add_worktree_recreates_a_deleted_checkout(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    shutil.rmtree(worktree)  # registered with git, gone from disk

    add_worktree(info, worktree, BRANCH, head(repo))

    assert (worktree / "greeter.py").read_text() == GREETER
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == BRANCH


def test_add_worktree_reuses_an_existing_branch(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    """After a crash the branch may exist without its worktree: check it out, keep its commits."""
    git(repo, "branch", BRANCH)
    worktree = tmp_path / "worktrees" / "abc-1"
    git(repo, "worktree", "add", "-q", str(worktree), BRANCH)
    (worktree / "kept.txt").write_text("committed on the branch\n")
    git(worktree, "add", "kept.txt")
    git(worktree, "commit", "-q", "-m", "on the branch")
    tip = head(worktree)
    git(repo, "worktree", "remove", "--force", str(worktree))
    worktree.mkdir(parents=True)
    (worktree / "half-made").write_text("debris from a crash\n")

    add_worktree(info, worktree, BRANCH, git(repo, "rev-parse", "main").strip())

    assert head(worktree) == tip
    assert (worktree / "kept.txt").exists()
    assert not (worktree / "half-made").exists()


def test_add_worktree_runs_no_hooks(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    for name in ("post-checkout", "reference-transaction", "pre-commit", "post-index-change"):
        plant_hook(repo, name, marker)
    # sanity: git on its own would run it
    probe = tmp_path / "probe"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "-b", "probe", str(probe)],
                   check=True, capture_output=True)
    assert marker.exists()
    marker.unlink()

    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    (worktree / "new.txt").write_text("x\n")
    diffstat(info, worktree, head(repo))
    remove_worktree(info, worktree, BRANCH)

    assert not marker.exists()


def test_add_worktree_ignores_a_hooks_path_set_in_repo_config(repo: Path, info: RepoPaths,
                                                              tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "post-checkout"
    hook.write_text(f"#!/bin/sh\necho ran >> '{marker}'\n")
    hook.chmod(0o755)
    git(repo, "config", "core.hooksPath", str(hooks))

    add_worktree(info, tmp_path / "worktrees" / "abc-1", BRANCH, head(repo))

    assert not marker.exists()


def test_remove_worktree_removes_dir_and_branch(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    (worktree / "dirty.txt").write_text("uncommitted\n")
    (worktree / "greeter.py").write_text("modified\n")

    remove_worktree(info, worktree, BRANCH)

    assert not worktree.exists()
    assert not branch_exists(info, BRANCH)
    assert worktree not in registered_worktrees(info)
    assert not info.worktree_git_dir(worktree).exists()
    assert (repo / "greeter.py").read_text() == GREETER

    remove_worktree(info, worktree, BRANCH)  # already gone: fine
    assert not worktree.exists()


def test_remove_worktree_can_keep_the_branch(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    remove_worktree(info, worktree, None)
    assert not worktree.exists()
    assert worktree not in registered_worktrees(info)
    assert branch_exists(info, BRANCH)


def test_remove_worktree_when_only_the_branch_is_left(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    git(repo, "branch", BRANCH)
    remove_worktree(info, tmp_path / "worktrees" / "never-made", BRANCH)
    assert not branch_exists(info, BRANCH)


def test_remove_worktree_when_only_the_folder_is_left(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    worktree.mkdir(parents=True)
    (worktree / "junk").write_text("x")
    remove_worktree(info, worktree, BRANCH)
    assert not worktree.exists()


def test_two_worktrees_are_independent(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    one, two = tmp_path / "w" / "abc-1", tmp_path / "w" / "abc-2"
    add_worktree(info, one, "kilod/abc-1", head(repo))
    add_worktree(info, two, "kilod/abc-2", head(repo))
    (one / "only-one.txt").write_text("1\n")
    remove_worktree(info, two, "kilod/abc-2")
    assert (one / "only-one.txt").exists()
    assert branch_exists(info, "kilod/abc-1")
    assert not branch_exists(info, "kilod/abc-2")


# -- diffstat ---------------------------------------------------------------------


def diffstat(info: RepoPaths, worktree: Path, base: str) -> list[FileStat]:
    return worktree_diff(info, worktree, base)[1].stat()


def by_path(stats: list[FileStat]) -> dict[str, tuple[int | None, int | None]]:
    return {s.path: (s.added, s.deleted) for s in stats}


def test_diffstat_counts_every_kind_of_change(repo: Path, tmp_path: Path) -> None:
    make_repo_files = {
        "greeter.py": GREETER,
        "README.md": README,
        "gone.txt": "a\nb\nc\n",
        ".gitignore": "*.log\nbuild/\n",
        "logo.bin": "not yet binary\n",
    }
    source = make_repo(tmp_path / "src-repo", make_repo_files)
    info = inspect_repo(str(source))
    base = head(source)
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, base)

    (worktree / "greeter.py").write_text(GREETER.replace("Hello ", "Hello, ") + "# more\n")  # 2 +, 1 -
    (worktree / "gone.txt").unlink()                                                          # 0 +, 3 -
    (worktree / "new.txt").write_text("one\ntwo\n")                                           # untracked
    (worktree / "pkg").mkdir()
    (worktree / "pkg" / "deep.py").write_text("x = 1\n")                                      # untracked, nested
    (worktree / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))  # binary, new
    (worktree / "logo.bin").write_bytes(b"\0\1\2\3")                                          # became binary
    (worktree / "debug.log").write_text("ignored\n")                                          # .gitignore'd
    (worktree / "build").mkdir()
    (worktree / "build" / "out.txt").write_text("ignored too\n")

    before = git(worktree, "status", "--porcelain")
    index = info.worktree_git_dir(worktree) / "index"
    index_bytes = index.read_bytes()
    stats = diffstat(info, worktree, base)
    assert index.read_bytes() == index_bytes  # compared before `git status` may refresh it
    assert git(worktree, "status", "--porcelain") == before

    assert by_path(stats) == {
        "greeter.py": (2, 1),
        "gone.txt": (0, 3),
        "new.txt": (2, 0),
        "pkg/deep.py": (1, 0),
        "image.png": (None, None),
        "logo.bin": (None, None),
    }
    assert "debug.log" not in by_path(stats)


def test_diffstat_of_an_untouched_worktree_is_empty(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    assert diffstat(info, worktree, head(repo)) == []


def test_diffstat_sees_staged_and_committed_changes_against_the_base(repo: Path, info: RepoPaths,
                                                                     tmp_path: Path) -> None:
    base = head(repo)
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, base)
    (worktree / "committed.txt").write_text("c\n")
    git(worktree, "add", "committed.txt")
    git(worktree, "commit", "-q", "-m", "on the branch")
    (worktree / "staged.txt").write_text("s\ns\n")
    git(worktree, "add", "staged.txt")

    assert by_path(diffstat(info, worktree, base)) == {"committed.txt": (1, 0), "staged.txt": (2, 0)}


def test_diffstat_reports_a_rename(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    os.rename(worktree / "greeter.py", worktree / "hello.py")
    stats = diffstat(info, worktree, head(repo))
    assert by_path(stats) == {"greeter.py => hello.py": (0, 0)}


def test_diffstat_ignores_a_replaced_git_pointer(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    """The agent can rewrite `.git` in its worktree; the host still diffs the real admin dir."""
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    decoy = make_repo(tmp_path / "decoy", {"other.txt": "decoy\n"})
    (worktree / ".git").write_text(f"gitdir: {decoy / '.git'}\n")
    (worktree / "mine.txt").write_text("m\n")

    stats = by_path(diffstat(info, worktree, head(repo)))

    assert "mine.txt" in stats
    assert "greeter.py" not in stats and "README.md" not in stats  # diffed against the real base
    assert git(decoy, "status", "--porcelain") == ""


def test_diffstat_runs_no_filter_a_planted_gitattributes_names(repo: Path, info: RepoPaths, tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    git(repo, "config", "filter.evil.clean", f"touch {marker}")
    git(repo, "config", "filter.evil.smudge", f"touch {marker}")
    worktree = tmp_path / "worktrees" / "abc-1"
    add_worktree(info, worktree, BRANCH, head(repo))
    (worktree / ".gitattributes").write_text("* filter=evil\n")
    (worktree / "new.txt").write_text("x\n")
    stats = diffstat(info, worktree, head(repo))
    assert {s.path for s in stats} == {".gitattributes", "new.txt"}
    assert not marker.exists()
