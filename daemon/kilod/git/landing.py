"""Landing reviewed work: commit a snapshot tree on the attempt's branch, merge it into the base.

Commits are made with `commit-tree` from the reviewed tree, so exactly what was
reviewed lands and no hook, filter or index of the worktree is involved. Refs move
with compare-and-swap (`update-ref NEW OLD`), so a branch that moved meanwhile is
never overwritten. A merge is computed in memory (`merge-tree --write-tree`) before
any ref moves: a conflict changes nothing. Landing is planned first (objects are
written, no ref moves), then the attempt's branch moves, then the base branch.
Blocking: call from a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kilod.crashpoints import crash_during, crash_point
from kilod.errors import Conflict
from kilod.git.paths import RepoPaths
from kilod.git.runner import config_value, is_ancestor, rev, run, run_git


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def env(self) -> dict[str, str]:
        return {"GIT_AUTHOR_NAME": self.name, "GIT_AUTHOR_EMAIL": self.email,
                "GIT_COMMITTER_NAME": self.name, "GIT_COMMITTER_EMAIL": self.email}


@dataclass(frozen=True)
class MergePlan:
    branch: str
    old: str               # the branch's head when planned: the ref moves only from here
    new: str
    fast_forward: bool
    drivers: tuple[str, ...]   # `-c` settings that neutralise drivers the work's .gitattributes name


@dataclass(frozen=True)
class LandingPlan:
    branch: str            # the attempt's branch
    branch_head: str       # its head when planned
    commit: str            # the reviewed tree, committed on top of branch_head
    merge: MergePlan | None


@dataclass(frozen=True)
class MergeResult:
    branch: str
    head: str
    fast_forward: bool
    worktree_updated: str | None   # the checkout whose files were updated, if any
    checkout: str | None = None    # where the branch is checked out, updated or not
    note: str = ""                 # what happened to that checkout, in words


def identity(repo: RepoPaths, name: str | None, email: str | None) -> Identity:
    """Settings first, then the repository's (and the user's) git config, then kilod's own."""
    return Identity(name or config_value(repo.common_dir, "user.name") or "kilod",
                    email or config_value(repo.common_dir, "user.email") or "kilod@localhost")


def tree_of(repo: RepoPaths, commit: str) -> str:
    return run_git("rev-parse", "--verify", f"{commit}^{{tree}}", git_dir=repo.common_dir).strip()


def commit_tree(repo: RepoPaths, tree: str, parents: list[str], message: str, who: Identity) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return run_git(*args, "-F", "-", git_dir=repo.common_dir, env=who.env(), stdin=message).strip()


def move_ref(repo: RepoPaths, ref: str, new: str, old: str, reason: str) -> None:
    """Compare-and-swap: `ref` moves old → new, or git refuses (GitFailed from update-ref) and nothing moves."""
    run_git("update-ref", "-m", reason, ref, new, old, git_dir=repo.common_dir)


ATTRIBUTE_DRIVER = re.compile(r"\b(filter|diff|merge)=([^\s]+)")
CONFIGURED_DRIVER = r"^(filter\..*\.(clean|smudge|process)|merge\..*\.driver)$"
# The one driver a landing runs: git-lfs, so LFS files reach the user's checkout smudged, as `git merge`
# would leave them. It only swaps pointers for objects it fetches; an agent cannot define what it runs.
ALLOWED_FILTERS = frozenset({"lfs"})


def _off(kind: str, name: str) -> list[str]:
    if kind == "filter":
        return [f"filter.{name}.clean=", f"filter.{name}.smudge=", f"filter.{name}.process=",
                f"filter.{name}.required=false"]
    if kind == "diff":
        return [f"diff.{name}.textconv=", f"diff.{name}.command="]
    return [f"merge.{name}.driver=false %A"]  # a conflict, never a command


def neutralised_drivers(repo: RepoPaths, base: str, tree: str) -> tuple[str, ...]:
    """`-c` settings that switch off every filter and merge driver but git-lfs's for a landing.

    The agent cannot define a driver, but it can name one the user has configured
    (their global config is theirs) in a .gitattributes, and the base branch's own
    attributes name others: landing the agent's files must run none of them on the
    host. Drivers configured anywhere git looks, and any the changed .gitattributes
    name, are switched off; only `filter.lfs` stays.
    """
    names: set[tuple[str, str]] = set()
    configured = run("config", "--name-only", "--get-regexp", CONFIGURED_DRIVER, git_dir=repo.common_dir,
                     accept=(0, 1)).stdout  # exit 1: none configured
    for key in configured.splitlines():
        kind, _, rest = key.partition(".")
        names.add((kind, rest.rsplit(".", 1)[0]))
    # deleted files (d) name nothing any more
    changed = run_git("diff", "--name-only", "-z", "--no-renames", "--diff-filter=d", base, tree,
                      git_dir=repo.common_dir)
    for path in changed.split("\0"):
        if path.split("/")[-1] != ".gitattributes":
            continue
        text = run_git("cat-file", "blob", f"{tree}:{path}", git_dir=repo.common_dir)
        names.update((kind, name) for kind, name in ATTRIBUTE_DRIVER.findall(text))
    settings: list[str] = []
    for kind, name in sorted(names):
        if not (kind == "filter" and name in ALLOWED_FILTERS):
            settings += _off(kind, name)
    return tuple(settings)


def _merge_tree(repo: RepoPaths, ours: str, theirs: str, config: tuple[str, ...]) -> tuple[str, list[str]]:
    """(tree, conflicting paths) of merging theirs into ours, computed without a checkout."""
    # exit 1 means "conflicts", not failure
    done = run("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs,
               git_dir=repo.common_dir, config=config, accept=(0, 1))
    fields = [f for f in done.stdout.split("\0") if f]
    return fields[0], (sorted(set(fields[1:])) if done.exit_code == 1 else [])


def checked_out_at(repo: RepoPaths, branch: str) -> Path | None:
    """The working tree that has `branch` checked out, if any."""
    out = run_git("worktree", "list", "--porcelain", git_dir=repo.common_dir)
    path: Path | None = None
    for line in out.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and path is not None:
            return path
    return None


def plan_merge(repo: RepoPaths, branch: str, commit: str, message: str, who: Identity,
               config: tuple[str, ...] = ()) -> MergePlan:
    """How `commit` merges into `branch` (fast-forward or a merge commit); Conflict changes nothing."""
    head = rev(repo.common_dir, f"refs/heads/{branch}")
    if head is None:
        raise Conflict(f"base branch {branch} no longer exists")
    if is_ancestor(repo.common_dir, commit, head):  # merged already (an approve that was interrupted)
        return MergePlan(branch, head, head, True, config)
    if is_ancestor(repo.common_dir, head, commit):
        return MergePlan(branch, head, commit, True, config)
    tree, conflicts = _merge_tree(repo, head, commit, config)
    if conflicts:
        raise Conflict(f"merging into {branch} conflicts in {len(conflicts)} file(s): {', '.join(conflicts)}",
                       paths=conflicts)
    return MergePlan(branch, head, commit_tree(repo, tree, [head, commit], message, who), False, config)


def plan_landing(repo: RepoPaths, branch: str, base_commit: str, tree: str, message: str, who: Identity,
                 merge_into: str | None, merge_message: str) -> LandingPlan:
    """Commit `tree` (not yet on any branch) and plan its merge; no ref moves, a conflict changes nothing."""
    branch_head = rev(repo.common_dir, f"refs/heads/{branch}")
    if branch_head is None:
        raise Conflict(f"branch {branch} is gone")
    if branch_head != base_commit and tree_of(repo, branch_head) == tree:
        commit = branch_head  # committed by an approve that was interrupted: do not commit it twice
    else:
        commit = commit_tree(repo, tree, [branch_head], message, who)
    merge = None
    if merge_into is not None:
        drivers = neutralised_drivers(repo, base_commit, tree)
        merge = plan_merge(repo, merge_into, commit, merge_message, who, drivers)
    return LandingPlan(branch, branch_head, commit, merge)


def commit_landing(repo: RepoPaths, plan: LandingPlan) -> None:
    """The attempt's branch moves to the reviewed commit (compare-and-swap)."""
    if plan.commit != plan.branch_head:
        move_ref(repo, f"refs/heads/{plan.branch}", plan.commit, plan.branch_head, "kilod: approve")


@dataclass(frozen=True)
class MergeTarget:
    """Where the base branch is checked out, and whether kilod updates that checkout's files."""

    checkout: str | None      # the working tree that has the branch checked out
    git_dir: str | None       # that working tree's own git dir (its index lives there)
    update_files: bool        # clean when planned: its files and index follow the branch


def merge_target(repo: RepoPaths, plan: MergePlan) -> MergeTarget:
    """Decided before the journal entry is written, so a restart repairs exactly what was begun."""
    checkout = checked_out_at(repo, plan.branch)
    if plan.old == plan.new or checkout is None or not checkout.is_dir():
        return MergeTarget(None, None, False)
    git_dir = run_git("rev-parse", "--absolute-git-dir", cwd=checkout).strip()
    # status may run clean filters on files whose stat changed: the same drivers off as for the update
    dirty = run_git("status", "--porcelain", "--untracked-files=no", git_dir=Path(git_dir), work_tree=checkout,
                    cwd=checkout, config=plan.drivers).strip()
    return MergeTarget(str(checkout), git_dir, not dirty)


def land_merge(repo: RepoPaths, plan: MergePlan, target: MergeTarget) -> MergeResult:
    """Move the base branch old → new; update the checkout that has it only if that checkout was clean.

    The checkout's files and index are brought to `new` first, then the ref moves
    (compare-and-swap). A daemon dying between or during those leaves a journal entry
    that `kilod.git.recovery` finishes at the next start.
    """
    branch, old, new = plan.branch, plan.old, plan.new
    if old == new:
        return MergeResult(branch, new, plan.fast_forward, None, note=f"{branch} already contained the commit")
    if target.checkout is None or target.git_dir is None:
        move_ref(repo, f"refs/heads/{branch}", new, old, "kilod: merge")
        return MergeResult(branch, new, plan.fast_forward, None,
                           note=f"{branch} is not checked out: only the ref moved")
    checkout = Path(target.checkout)
    if target.update_files:
        # two-tree read-tree refuses to clobber anything; then the ref moves (compare-and-swap)
        crash_during("checkout", 0.3)
        run_git("read-tree", "-m", "-u", old, new, git_dir=Path(target.git_dir), work_tree=checkout, cwd=checkout,
                config=plan.drivers)
        crash_point("checked-out")
        move_ref(repo, f"refs/heads/{branch}", new, old, "kilod: merge")
        crash_point("ref")
        return MergeResult(branch, new, plan.fast_forward, str(checkout), str(checkout),
                           f"the clean checkout at {checkout} was updated")
    move_ref(repo, f"refs/heads/{branch}", new, old, "kilod: merge")
    crash_point("ref")
    return MergeResult(branch, new, plan.fast_forward, None, str(checkout), DIRTY_NOTE.format(checkout=checkout))


DIRTY_NOTE = ("the checkout at {checkout} has local changes, so kilod did not touch its files: only the ref moved, "
              "and `git status` there shows the merge's changes as reverted until that checkout is brought up to "
              "date")
