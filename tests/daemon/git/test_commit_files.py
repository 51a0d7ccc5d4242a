"""A commit's few files written out as its tree holds them (kilod.git.commit_files), real git."""

from __future__ import annotations

import os
from pathlib import Path

from kilod.git.commit_files import write_out
from kilod.git.paths import inspect_repo
from tests.kilod_testing import git


def commit_layout(repo: Path) -> str:
    (repo / ".devcontainer").mkdir()
    (repo / ".devcontainer" / "devcontainer.json").write_text('{"image": "debian"}')
    (repo / ".devcontainer" / "deep").mkdir()
    (repo / ".devcontainer" / "deep" / "Dockerfile").write_text("FROM debian\n")
    (repo / "plain").write_text("a file, not a folder\n")
    os.symlink(".devcontainer", repo / "linked")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "layout")
    # the checkout changes afterwards: only the commit counts
    (repo / ".devcontainer" / "devcontainer.json").write_text('{"image": "changed"}')
    return git(repo, "rev-parse", "HEAD").strip()


def test_nested_paths_are_written_only_below_folders_the_commit_has(repo: Path, tmp_path: Path) -> None:
    commit = commit_layout(repo)
    into = tmp_path / "out"
    into.mkdir()
    write_out(inspect_repo(str(repo)), commit, [
        ".devcontainer/devcontainer.json", ".devcontainer/deep/Dockerfile", ".kilod.toml",
        "absent/folder/file", "plain/below", "linked/devcontainer.json",
    ], into, limit=1000)
    assert (into / ".devcontainer" / "devcontainer.json").read_text() == '{"image": "debian"}'
    assert (into / ".devcontainer" / "deep" / "Dockerfile").read_text() == "FROM debian\n"
    assert not (into / ".kilod.toml").exists() and not (into / "absent").exists()
    assert (into / "plain").exists() is False   # a blob on the way: nothing below it, nor the blob itself
    assert (into / "linked").is_symlink() and not (into / "linked").exists()   # a link, to nowhere


def test_nothing_is_written_when_the_top_folder_is_absent(repo: Path, tmp_path: Path) -> None:
    into = tmp_path / "out"
    into.mkdir()
    write_out(inspect_repo(str(repo)), git(repo, "rev-parse", "HEAD").strip(),
              [".devcontainer/devcontainer.json", ".devcontainer.json", ".kilod.toml"], into, limit=1000)
    assert list(into.iterdir()) == []
