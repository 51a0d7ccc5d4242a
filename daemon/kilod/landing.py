"""Landing reviewed work: commit a snapshot tree on the attempt's branch, merge it into the base.

Commits are made with `commit-tree` from the reviewed tree, so exactly what was
reviewed lands and no hook, filter or index of the worktree is involved. Refs move
with compare-and-swap (`update-ref NEW OLD`), so a branch that moved meanwhile is
never overwritten. A merge is computed in memory (`merge-tree --write-tree`) before
any ref moves: a conflict changes nothing. Blocking: call from a thread.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kilod.errors import Conflict, Unavailable
from kilod.worktrees import SAFE_ENV, RepoInfo, git_command, run_git


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def env(self) -> dict[str, str]:
        return {"GIT_AUTHOR_NAME": self.name, "GIT_AUTHOR_EMAIL": self.email,
                "GIT_COMMITTER_NAME": self.name, "GIT_COMMITTER_EMAIL": self.email}


@dataclass(frozen=True)
class MergeResult:
    branch: str
    head: str
    fast_forward: bool
    worktree_updated: str | None   # the checkout whose files were updated, if any
    checkout: str | None = None    # where the branch is checked out, updated or not
    note: str = ""                 # what happened to that checkout, in words


def identity(repo: RepoInfo, name: str | None, email: str | None) -> Identity:
    """Settings first, then the repository's (and the user's) git config, then kilod's own."""
    def config(key: str) -> str | None:
        try:
            return run_git("config", "--get", key, git_dir=repo.common_dir).strip() or None
        except Unavailable:
            return None

    return Identity(name or config("user.name") or "kilod", email or config("user.email") or "kilod@localhost")


def rev(repo: RepoInfo, ref: str) -> str | None:
    try:
        return run_git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                       git_dir=repo.common_dir).strip()
    except Unavailable:
        return None


def tree_of(repo: RepoInfo, commit: str) -> str:
    return run_git("rev-parse", "--verify", f"{commit}^{{tree}}", git_dir=repo.common_dir).strip()


def commit_tree(repo: RepoInfo, tree: str, parents: list[str], message: str, who: Identity) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return run_git(*args, "-F", "-", git_dir=repo.common_dir, env=who.env(), stdin=message).strip()


def move_ref(repo: RepoInfo, ref: str, new: str, old: str, reason: str) -> None:
    try:
        run_git("update-ref", "-m", reason, ref, new, old, git_dir=repo.common_dir)
    except Unavailable as exc:
        raise Conflict(f"{ref} moved while kilod was updating it; nothing was changed ({exc})") from None


ATTRIBUTE_DRIVER = re.compile(r"\b(filter|diff|merge)=([^\s]+)")


def neutralised_drivers(repo: RepoInfo, base: str, tree: str) -> tuple[str, ...]:
    """`-c` settings that switch off every filter/diff/merge driver a changed .gitattributes names.

    The agent cannot define a driver, but it can name one the user has configured
    (their global config is theirs); a name it introduced must not run on the host.
    """
    changed = run_git("diff", "--name-only", "-z", "--no-renames", base, tree, git_dir=repo.common_dir)
    names: set[tuple[str, str]] = set()
    for path in changed.split("\0"):
        if path.split("/")[-1] != ".gitattributes":
            continue
        try:
            text = run_git("cat-file", "blob", f"{tree}:{path}", git_dir=repo.common_dir)
        except Unavailable:
            continue  # deleted
        names.update((kind, name) for kind, name in ATTRIBUTE_DRIVER.findall(text))
    settings: list[str] = []
    for kind, name in sorted(names):
        if kind == "filter":
            settings += [f"filter.{name}.clean=", f"filter.{name}.smudge=", f"filter.{name}.process=",
                         f"filter.{name}.required=false"]
        elif kind == "diff":
            settings += [f"diff.{name}.textconv=", f"diff.{name}.command="]
        else:
            settings += [f"merge.{name}.driver=false %A"]  # a conflict, never a planted command
    return tuple(settings)


def _merge_tree(repo: RepoInfo, ours: str, theirs: str, config: tuple[str, ...]) -> tuple[str, list[str]]:
    """(tree, conflicting paths) of merging theirs into ours, computed without a checkout."""
    # exit 1 means "conflicts", not failure, which run_git cannot tell apart
    command = git_command("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs,
                          git_dir=repo.common_dir, config=config)
    done = subprocess.run(command, capture_output=True, env={**os.environ, **SAFE_ENV})
    if done.returncode not in (0, 1):
        raise Unavailable(f"git merge-tree failed: {done.stderr.decode(errors='replace').strip()}")
    fields = [f for f in done.stdout.decode(errors="surrogateescape").split("\0") if f]
    return fields[0], (sorted(set(fields[1:])) if done.returncode == 1 else [])


def checked_out_at(repo: RepoInfo, branch: str) -> Path | None:
    """The working tree that has `branch` checked out, if any."""
    out = run_git("worktree", "list", "--porcelain", git_dir=repo.common_dir)
    path: Path | None = None
    for line in out.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and path is not None:
            return path
    return None


def is_ancestor(repo: RepoInfo, ancestor: str, descendant: str) -> bool:
    try:
        run_git("merge-base", "--is-ancestor", ancestor, descendant, git_dir=repo.common_dir)
    except Unavailable:
        return False
    return True


def plan_merge(repo: RepoInfo, branch: str, commit: str, message: str, who: Identity,
               config: tuple[str, ...] = ()) -> tuple[str, str, bool]:
    """(old head, new head, fast-forward) of merging `commit` into `branch`; Conflict changes nothing."""
    head = rev(repo, f"refs/heads/{branch}")
    if head is None:
        raise Conflict(f"base branch {branch} no longer exists")
    if is_ancestor(repo, commit, head):  # merged already (an approve that was interrupted): nothing to do
        return head, head, True
    if is_ancestor(repo, head, commit):
        return head, commit, True
    tree, conflicts = _merge_tree(repo, head, commit, config)
    if conflicts:
        raise Conflict(f"merging into {branch} conflicts in {len(conflicts)} file(s): {', '.join(conflicts)}",
                       paths=conflicts)
    return head, commit_tree(repo, tree, [head, commit], message, who), False


def land_merge(repo: RepoInfo, branch: str, old: str, new: str, fast_forward: bool,
               config: tuple[str, ...] = ()) -> MergeResult:
    """Move `branch` old → new; update the checkout that has it only if that checkout is clean."""
    if old == new:
        return MergeResult(branch, new, fast_forward, None, note=f"{branch} already contained the commit")
    checkout = checked_out_at(repo, branch)
    if checkout is None or not checkout.is_dir():
        move_ref(repo, f"refs/heads/{branch}", new, old, "kilod: merge")
        return MergeResult(branch, new, fast_forward, None, note=f"{branch} is not checked out: only the ref moved")
    git_dir = Path(run_git("rev-parse", "--absolute-git-dir", cwd=checkout).strip())
    dirty = run_git("status", "--porcelain", "--untracked-files=no", git_dir=git_dir, work_tree=checkout,
                    cwd=checkout).strip()
    if not dirty:
        # two-tree read-tree refuses to clobber anything; then the ref moves (compare-and-swap)
        run_git("read-tree", "-m", "-u", old, new, git_dir=git_dir, work_tree=checkout, cwd=checkout,
                config=config)
        move_ref(repo, f"refs/heads/{branch}", new, old, "kilod: merge")
        return MergeResult(branch, new, fast_forward, str(checkout), str(checkout),
                           f"the clean checkout at {checkout} was updated")
    move_ref(repo, f"refs/heads/{branch}", new, old, "kilod: merge")
    return MergeResult(branch, new, fast_forward, None, str(checkout),
                       f"the checkout at {checkout} has local changes, so kilod did not touch its files: only the "
                       "ref moved, and `git status` there shows the merge's changes as reverted until that "
                       "checkout is brought up to date")


def base_branch_of(repo: RepoInfo, base_ref: str) -> str | None:
    """The branch a base ref names (HEAD → what the main checkout has), or None for a tag or commit."""
    if base_ref == "HEAD":
        try:
            ref = run_git("symbolic-ref", "-q", "HEAD", git_dir=repo.common_dir).strip()
        except Unavailable:
            return None
        return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    name = base_ref.removeprefix("refs/heads/")
    return name if rev(repo, f"refs/heads/{name}") is not None else None
