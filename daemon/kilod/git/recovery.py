"""Finishing a landing a daemon death interrupted, from its journal entry. Blocking: call from a thread.

A landing moves, in order: the attempt's branch (compare-and-swap), the clean
checkout's files and then its index (`read-tree -m -u old new`, which renames its
new index into place only after every file is written), then the base branch
(compare-and-swap). Its plan is journaled before the first move, so whatever a
`kill -9` left, the next start can tell where it stopped and finish it:

- the attempt's branch still at its old head: move it to the approved commit;
- the base branch at `new`: the checkout was finished before the ref moved;
- the base branch still at `old` and the checkout being updated: an index still at
  `old` means the files may be half written, so the index is set to `new` and the
  files the merge changes (and only those) are written from it or removed, then
  the ref moves;
- a branch somewhere else: a person moved it since; nothing is touched (Conflict).

git's children die with the daemon (PR_SET_PDEATHSIG, see `kilod.git.runner`), so no
orphaned `read-tree` is still writing when this runs; the index.lock it left is
removed here, since the journal says whose it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kilod.errors import Conflict
from kilod.git.landing import LandingPlan, MergePlan, MergeTarget, move_ref, tree_of
from kilod.git.paths import RepoPaths
from kilod.git.runner import rev, run, run_git


def repair_landing(repo: RepoPaths, plan: LandingPlan, target: MergeTarget | None) -> list[str]:
    """Finish the landing; what had to be done, in words (empty: it had completed)."""
    done: list[str] = []
    head = rev(repo.common_dir, f"refs/heads/{plan.branch}")
    if head == plan.branch_head and plan.commit != plan.branch_head:
        move_ref(repo, f"refs/heads/{plan.branch}", plan.commit, plan.branch_head, "kilod: approve (repaired)")
        done.append(f"moved {plan.branch} to the approved commit {plan.commit[:12]}")
    elif head != plan.commit:
        raise Conflict(f"branch {plan.branch} is at {head or 'nothing'}, neither where the landing found it nor "
                       f"the approved commit {plan.commit[:12]}; left as it is")
    merge = plan.merge
    if merge is None or merge.old == merge.new:
        return done
    base = rev(repo.common_dir, f"refs/heads/{merge.branch}")
    if base == merge.new:
        return done
    if base != merge.old:
        raise Conflict(f"{merge.branch} moved to {base or 'nothing'} since the landing began; left as it is")
    if target is not None and target.update_files and target.checkout and target.git_dir:
        done += finish_checkout(repo, merge, Path(target.checkout), Path(target.git_dir))
    move_ref(repo, f"refs/heads/{merge.branch}", merge.new, merge.old, "kilod: merge (repaired)")
    done.append(f"moved {merge.branch} to {merge.new[:12]}")
    return done


def finish_checkout(repo: RepoPaths, merge: MergePlan, checkout: Path, git_dir: Path) -> list[str]:
    """Bring a checkout whose update from merge.old to merge.new was cut short to merge.new."""
    done: list[str] = []
    lock = git_dir / "index.lock"
    if lock.exists():
        lock.unlink()
        done.append(f"removed the index.lock the interrupted update left in {checkout}")
    index_tree = run_git("write-tree", git_dir=git_dir, work_tree=checkout, cwd=checkout).strip()
    if index_tree == tree_of(repo, merge.new):
        return done  # the index is written last: every file was already in place
    # not begun (or nothing written yet): the careful update, which refuses to clobber anything
    tried = run("read-tree", "-m", "-u", merge.old, merge.new, git_dir=git_dir, work_tree=checkout, cwd=checkout,
                config=merge.drivers, accept=(0, 128))
    if tried.exit_code == 0:
        done.append(f"updated {checkout} to {merge.new[:12]}")
        return done
    # cut short mid-way: files it wrote differ from the (old) index. The checkout was clean when the
    # landing began, so the paths this merge changes are the landing's to finish.
    changed = run_git("diff-tree", "-r", "-z", "--no-renames", "--name-status", merge.old, merge.new,
                      git_dir=repo.common_dir).split("\0")
    pairs = list(zip(changed[0::2], changed[1::2], strict=False))
    removed = [path for status, path in pairs if status == "D"]
    written = [path for status, path in pairs if status and status != "D"]
    for path in removed:
        _remove(checkout, path)
    run_git("read-tree", merge.new, git_dir=git_dir, work_tree=checkout, cwd=checkout)
    if written:
        run_git("checkout-index", "-f", "-z", "--stdin", git_dir=git_dir, work_tree=checkout, cwd=checkout,
                config=merge.drivers, stdin="".join(f"{path}\0" for path in written))
    run("update-index", "-q", "--refresh", git_dir=git_dir, work_tree=checkout, cwd=checkout, accept=(0, 1))
    done.append(f"finished updating {checkout} ({len(written)} file(s) written, {len(removed)} removed)")
    return done


def _remove(checkout: Path, path: str) -> None:
    """Remove a file the merge deletes (never a directory), then its parents left empty."""
    target = checkout / path
    try:
        if stat.S_ISDIR(os.lstat(target).st_mode):
            return
        target.unlink()
    except FileNotFoundError:
        return
    parent = target.parent
    while parent != checkout:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
