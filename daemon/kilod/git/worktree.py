"""An attempt's worktree: add it on its own branch, copy untracked files in, remove it.

Blocking: call from a thread (through `Repository`, which holds the repository's
lock around the steps that touch its refs and worktree admin dirs).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

from kilod.errors import Conflict
from kilod.git.paths import RepoPaths
from kilod.git.refs import branch_exists
from kilod.git.runner import GitFailed, run, run_git

# git's parallel checkout (used from 100 files up): on the 2-core machine, creating a 20,000-file worktree
# took a median 13.6 s with two workers against 38.5 s serially (bench/start_latency.py --checkout-workers,
# alternating): file creation waits on the kernel, and two workers keep it busy while the other waits.
CHECKOUT = ("checkout.workers=2",)
# `git branch`'s refusal of a name in use, as `worktree add -b` passes it on
TAKEN = re.compile(r"fatal: a branch named '(?P<branch>.+)' already exists\.?", re.IGNORECASE)


def registered_worktrees(repo: RepoPaths) -> set[Path]:
    out = run_git("worktree", "list", "--porcelain", git_dir=repo.common_dir)
    return {Path(line.removeprefix("worktree ")).resolve() for line in out.splitlines()
            if line.startswith("worktree ")}


def filters_off(repo: RepoPaths) -> tuple[str, ...]:
    """`-c` settings that switch off every filter driver configured for this repository.

    Checking out into a worktree must not run commands that a committed
    .gitattributes can name (the agent's approved work included); a worktree holds
    what the objects hold.
    """
    # exit 1: no filter configured at all
    out = run("config", "--name-only", "--get-regexp", r"^filter\..*\.(clean|smudge|process)$",
              git_dir=repo.common_dir, accept=(0, 1)).stdout
    names = {line.rsplit(".", 1)[0] for line in out.splitlines() if line}
    return tuple(f"{name}.{part}=" for name in sorted(names) for part in ("clean", "smudge", "process")) + tuple(
        f"{name}.required=false" for name in sorted(names)
    )


def add_worktree(repo: RepoPaths, worktree: Path, branch: str, base_commit: str,
                 owner: tuple[int, int] | None = None, config: tuple[str, ...] = ()) -> None:
    """Create `worktree` on a new `branch` at `base_commit`; adopt it if it already exists.

    `config`: extra `-c` settings for the checkout, after kilod's (bench/start_latency.py sets `checkout.workers`).
    """
    # the common case, a new attempt, asks git nothing here: no folder to adopt, no admin dir of that name
    # left by a crash (git names it after the folder, with a number if taken) for `prune` to clear
    if worktree.exists() and worktree.resolve() in registered_worktrees(repo):
        return
    worktree.parent.mkdir(parents=True, exist_ok=True)
    if worktree.exists():
        # a half-made checkout from a crash: git refuses to reuse a non-empty folder
        shutil.rmtree(worktree)
    if any((repo.common_dir / "worktrees").glob(f"{glob.escape(worktree.name)}*")):
        run_git("worktree", "prune", git_dir=repo.common_dir)
    no_filters = filters_off(repo) + CHECKOUT + config
    # a new attempt's branch does not exist yet: `-b` straight away, without asking first (a git run on
    # every start). A crash can leave the branch behind; `-b` then refuses its name before writing anything.
    try:
        run_git("worktree", "add", "-b", branch, str(worktree), base_commit,
                git_dir=repo.common_dir, cwd=repo.path, config=no_filters)
    except GitFailed as exc:
        if not _branch_was_taken(exc, branch):
            # git makes the branch before the checkout and keeps it when the checkout fails (a name the
            # filesystem refuses, a full disk): take back what this call made. Only this call's: a branch
            # that was there before stops `-b` at its name, the refusal below, which undoes nothing
            _undo_failed_add(repo, worktree, branch, base_commit)
            raise
        # the branch a crash left behind, with any commits on it: check it out. Should that fail too, no undo:
        # git clears the folder and admin dir of a checkout it could not finish, and the branch is not this
        # call's to delete
        run_git("worktree", "add", str(worktree), branch, git_dir=repo.common_dir, cwd=repo.path,
                config=no_filters)
    admin = repo.worktree_git_dir(worktree)
    if not (admin / "HEAD").exists():
        raise Conflict(f"git placed the worktree's admin dir elsewhere than {admin}")
    if owner is not None:
        _chown_tree(worktree, *owner)
        # chown moved every file's ctime: refresh the index's stat data (the files are still exactly what
        # git wrote; nothing else has run in the worktree yet) so the snapshot can trust it (statcache.py)
        run("update-index", "-q", "--refresh", git_dir=admin, work_tree=worktree, cwd=worktree,
            config=no_filters, accept=(0, 1))


def _branch_was_taken(exc: GitFailed, branch: str) -> bool:
    """Whether `worktree add -b` refused because `branch` already existed (LC_ALL=C: git's English).

    A whole line of its own, so a file name quoted in a checkout error cannot pass for it; older
    git wrote "A branch named '…' already exists." (capitalised, with a full stop).
    """
    refusals = (TAKEN.fullmatch(line.strip()) for line in exc.stderr.splitlines())
    return any(refusal is not None and refusal["branch"] == branch for refusal in refusals)


def _undo_failed_add(repo: RepoPaths, worktree: Path, branch: str, base_commit: str) -> None:
    if worktree.exists() and not worktree.is_symlink():
        shutil.rmtree(worktree, ignore_errors=True)
    run("worktree", "prune", git_dir=repo.common_dir, accept=(0, 1, 128))
    # compare-and-delete: only the branch this call made, still where it made it
    run("update-ref", "-d", f"refs/heads/{branch}", base_commit, git_dir=repo.common_dir, accept=(0, 1, 128))


def remove_worktree(repo: RepoPaths, worktree: Path, branch: str | None) -> None:
    """Remove the worktree and (unless None) its branch; already-gone is fine.

    `git worktree remove` would read the worktree's `.git`, which the agent may have
    planted; deleting the folder (symlinks are unlinked, never followed) and pruning
    does not.
    """
    if worktree.is_symlink():
        worktree.unlink()
    elif worktree.exists():
        shutil.rmtree(worktree)
    run_git("worktree", "prune", git_dir=repo.common_dir)
    if branch is not None and branch_exists(repo, branch):
        run_git("branch", "-D", branch, git_dir=repo.common_dir)


def pointer_is_intact(repo: RepoPaths, worktree: Path) -> bool:
    """Whether the worktree's `.git` file still says what git wrote (the agent may have replaced it)."""
    expected = f"gitdir: {repo.worktree_git_dir(worktree)}\n"
    pointer = worktree / ".git"
    return not pointer.is_symlink() and pointer.is_file() and pointer.read_text(errors="replace") == expected


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def copy_untracked(repo: Path, worktree: Path, patterns: list[str], owner: tuple[int, int] | None) -> list[str]:
    """Copy the repository's files matching `patterns` (e.g. `.env`) into the worktree.

    Only regular files inside the repository are copied; symlinks are skipped on both
    sides, so neither a link in the repository nor one committed into the worktree
    can make this read or write outside them.
    """
    copied: list[str] = []
    root = repo.resolve()
    for pattern in patterns:
        for source in sorted(root.glob(pattern)):
            relative = source.relative_to(root)
            if ".git" in relative.parts or source.is_symlink() or not source.is_file():
                continue
            if source.resolve() != source.absolute():  # reached through a symlinked folder
                continue
            if _write_below(worktree, relative.parts, source.read_bytes(), source.stat().st_mode & 0o777, owner):
                copied.append(str(relative))
    return copied


def _write_below(root: Path, parts: tuple[str, ...], data: bytes, mode: int,
                 owner: tuple[int, int] | None) -> bool:
    """Write root/parts… creating real folders as needed; False if any component is a symlink."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
                if owner is not None:
                    os.chown(part, *owner, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                return False
            os.close(fd)
            fd = next_fd
        try:
            out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode, dir_fd=fd)
        except OSError:
            return False
        with os.fdopen(out, "wb") as handle:
            handle.write(data)
        if owner is not None:
            os.chown(parts[-1], *owner, dir_fd=fd, follow_symlinks=False)
        return True
    finally:
        os.close(fd)
