"""Where a repository lives: its working tree, its git dir, and each worktree's admin dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from kilod.errors import Invalid


@dataclass(frozen=True)
class RepoPaths:
    path: Path          # top of the working tree
    common_dir: Path    # the repository's git dir (shared by all worktrees)

    def worktree_git_dir(self, worktree: Path) -> Path:
        """The worktree's own admin dir inside the repository; never read from the worktree."""
        return self.common_dir / "worktrees" / worktree.name


def inspect_repo(path_text: str) -> RepoPaths:
    """Check that `path_text` is the top of a non-bare git working tree."""
    path = Path(path_text)
    if not path.is_absolute():
        raise Invalid(f"repo must be an absolute path, got '{path_text}'", field="repo")
    if not path.exists():
        raise Invalid(f"repo path does not exist: {path}", field="repo")
    if not path.is_dir():
        raise Invalid(f"repo path is not a directory: {path}", field="repo")
    try:
        repo = git.Repo(path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise Invalid(f"not a git repository: {path}", field="repo") from None
    with repo:
        if repo.bare or repo.working_tree_dir is None:
            raise Invalid(f"a bare repository has no working tree to start from: {path}", field="repo")
        top = Path(repo.working_tree_dir).resolve()
        if top != path.resolve():
            raise Invalid(f"{path} is not the top of a working tree (that is {top})", field="repo")
        common = Path(repo.common_dir).resolve()
    return RepoPaths(path=path.resolve(), common_dir=common)
