"""Git on the host: validate repositories, resolve refs, add worktrees, diff them.

The agent writes files that this module later reads, so git here never takes its
cue from the worktree: every command names its git dir (and work tree) explicitly,
hooks and fsmonitor are off, there is no pager and no external diff or textconv.
Blocking (GitPython runs git as a subprocess): call from a thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import git

from kilod.errors import Conflict, Invalid, Unavailable

# Config that makes git inert with respect to anything planted in a worktree.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.untrackedCache=false",
    "core.quotePath=false",
    "diff.external=",
    "protocol.file.allow=user",
)
SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_EXTERNAL_DIFF": "",
    "GIT_ATTR_NOSYSTEM": "1",
}


def git_command(*args: str, git_dir: Path | None = None, work_tree: Path | None = None,
                config: tuple[str, ...] = ()) -> list[str]:
    """A git command line with the safe config, an explicit git dir and work tree."""
    command = ["git"]
    for item in (*SAFE_CONFIG, *config):
        command += ["-c", item]
    if git_dir is not None:
        command.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        command.append(f"--work-tree={work_tree}")
    return command + list(args)


def run_git(*args: str, git_dir: Path | None = None, work_tree: Path | None = None,
            cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None,
            config: tuple[str, ...] = ()) -> str:
    command = git_command(*args, git_dir=git_dir, work_tree=work_tree, config=config)
    full_env = {**SAFE_ENV, **(env or {})}
    try:
        if stdin is not None:  # GitPython's execute has no way to feed stdin text
            done = subprocess.run(command, input=stdin.encode(), capture_output=True, cwd=cwd,
                                  env={**os.environ, **full_env})
            if done.returncode != 0:
                raise git.GitCommandError(command, done.returncode, done.stderr)
            return done.stdout.decode("utf-8", errors="surrogateescape")
        out = git.Git(str(cwd) if cwd else None).execute(command, env=full_env, strip_newline_in_stdout=False)
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip().removeprefix("stderr: ").strip("'").strip()
        raise Unavailable(f"git {args[0]} failed: {stderr or exc}") from exc
    return str(out)


@dataclass(frozen=True)
class RepoInfo:
    path: Path          # top of the working tree
    common_dir: Path    # the repository's git dir (shared by all worktrees)


def inspect_repo(path_text: str) -> RepoInfo:
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
    return RepoInfo(path=path.resolve(), common_dir=common)


def resolve_base(repo: RepoInfo, ref: str) -> str:
    """The commit id `ref` names in `repo`; Invalid if it names none."""
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise Invalid(f"unknown base ref '{ref}' in {repo.path}", field="base")
    try:
        sha = run_git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                      git_dir=repo.common_dir)
    except Unavailable:
        raise Invalid(f"unknown base ref '{ref}' in {repo.path}", field="base") from None
    return sha.strip()


def branch_exists(repo: RepoInfo, branch: str) -> bool:
    try:
        run_git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", git_dir=repo.common_dir)
    except Unavailable:
        return False
    return True


def require_free_branches(repo: RepoInfo, branches: list[str]) -> None:
    """Conflict if a branch already exists: kilod never adopts a branch it did not make."""
    for branch in branches:
        if branch_exists(repo, branch):
            raise Conflict(f"branch {branch} already exists in {repo.path}")


def worktree_git_dir(repo: RepoInfo, worktree: Path) -> Path:
    """The worktree's own admin dir inside the repository; never read from the worktree."""
    return repo.common_dir / "worktrees" / worktree.name


def registered_worktrees(repo: RepoInfo) -> set[Path]:
    out = run_git("worktree", "list", "--porcelain", git_dir=repo.common_dir)
    return {Path(line.removeprefix("worktree ")).resolve() for line in out.splitlines()
            if line.startswith("worktree ")}


def filters_off(repo: RepoInfo) -> tuple[str, ...]:
    """`-c` settings that switch off every filter driver configured for this repository.

    Checking out into a worktree must not run commands that a committed
    .gitattributes can name (the agent's approved work included); a worktree holds
    what the objects hold.
    """
    try:
        out = run_git("config", "--name-only", "--get-regexp", r"^filter\..*\.(clean|smudge|process)$",
                      git_dir=repo.common_dir)
    except Unavailable:  # no filter configured at all
        return ()
    names = {line.rsplit(".", 1)[0] for line in out.splitlines() if line}
    return tuple(f"{name}.{part}=" for name in sorted(names) for part in ("clean", "smudge", "process")) + tuple(
        f"{name}.required=false" for name in sorted(names)
    )


def add_worktree(repo: RepoInfo, worktree: Path, branch: str, base_commit: str,
                 owner: tuple[int, int] | None = None) -> None:
    """Create `worktree` on a new `branch` at `base_commit`; adopt it if it already exists."""
    if worktree.resolve() in registered_worktrees(repo) and worktree.exists():
        return
    worktree.parent.mkdir(parents=True, exist_ok=True)
    if worktree.exists():
        # a half-made checkout from a crash: git refuses to reuse a non-empty folder
        shutil.rmtree(worktree)
    run_git("worktree", "prune", git_dir=repo.common_dir)
    no_filters = filters_off(repo)
    if branch_exists(repo, branch):
        run_git("worktree", "add", str(worktree), branch, git_dir=repo.common_dir, cwd=repo.path, config=no_filters)
    else:
        run_git("worktree", "add", "-b", branch, str(worktree), base_commit,
                git_dir=repo.common_dir, cwd=repo.path, config=no_filters)
    admin = worktree_git_dir(repo, worktree)
    if not (admin / "HEAD").exists():
        raise Conflict(f"git placed the worktree's admin dir elsewhere than {admin}")
    if owner is not None:
        _chown_tree(worktree, *owner)


def remove_worktree(repo: RepoInfo, worktree: Path, branch: str | None) -> None:
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
