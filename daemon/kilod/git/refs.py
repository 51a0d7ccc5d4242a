"""Reading refs: the base a card starts from, and which branches exist. Blocking: call from a thread."""

from __future__ import annotations

from kilod.errors import Conflict, Invalid
from kilod.git.paths import RepoPaths
from kilod.git.runner import rev, run


def resolve_base(repo: RepoPaths, ref: str) -> str:
    """The commit id `ref` names in `repo`; Invalid if it names none."""
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise Invalid(f"unknown base ref '{ref}' in {repo.path}", field="base")
    sha = rev(repo.common_dir, ref)
    if sha is None:
        raise Invalid(f"unknown base ref '{ref}' in {repo.path}", field="base")
    return sha


def branch_exists(repo: RepoPaths, branch: str) -> bool:
    found = run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", git_dir=repo.common_dir, accept=(0, 1))
    return found.exit_code == 0


def require_free_branches(repo: RepoPaths, branches: list[str]) -> None:
    """Conflict if a branch already exists: kilod never adopts a branch it did not make.

    One `for-each-ref` for all of a fan-out's branches. A pattern matches its ref exactly or the
    refs below it as a folder (`kilod/c-1/x`), which would block the branch just the same.
    """
    if not branches:
        return
    found = run("for-each-ref", "--format=%(refname)", "--", *(f"refs/heads/{b}" for b in branches),
                git_dir=repo.common_dir)
    taken = [ref.removeprefix("refs/heads/") for ref in found.stdout.splitlines() if ref]
    if taken:
        clash = next((b for b in branches if b in taken), taken[0])
        raise Conflict(f"branch {clash} already exists in {repo.path}")


def base_branch_of(repo: RepoPaths, base_ref: str) -> str | None:
    """The branch a base ref names (HEAD → what the main checkout has), or None for a tag or commit."""
    if base_ref == "HEAD":
        # exit 1: HEAD is detached
        found = run("symbolic-ref", "-q", "HEAD", git_dir=repo.common_dir, accept=(0, 1))
        ref = found.stdout.strip()
        return ref.removeprefix("refs/heads/") if found.exit_code == 0 and ref.startswith("refs/heads/") else None
    name = base_ref.removeprefix("refs/heads/")
    return name if rev(repo.common_dir, f"refs/heads/{name}") is not None else None
