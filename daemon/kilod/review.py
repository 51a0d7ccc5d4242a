"""The review desk: diff, comments, follow-ups, approve (and merge), discard, cancel, retry."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from kilod.config import Settings
from kilod.diffs import FileDiff, diff_trees
from kilod.domain import (
    FINAL_STATES,
    LIVE_STATES,
    Attempt,
    Card,
    EventKind,
    State,
    Step,
    checks_summary,
    container_name,
    now,
    queued_attempt,
    usage_totals,
)
from kilod.errors import Conflict, Invalid
from kilod.landing import (
    commit_tree,
    identity,
    land_merge,
    move_ref,
    neutralised_drivers,
    plan_merge,
    rev,
    tree_of,
)
from kilod.lifecycle import Lifecycle
from kilod.sandbox import Sandbox
from kilod.scheduler import Scheduler
from kilod.snapshot import Snapshot, snapshot
from kilod.worktrees import RepoInfo, inspect_repo, remove_worktree, require_free_branches, worktree_git_dir

log = logging.getLogger(__name__)
HUMAN_CHANGE_LIMIT = 8000


class Review:
    def __init__(self, settings: Settings, lifecycle: Lifecycle, sandbox: Sandbox, scheduler: Scheduler) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.sandbox = sandbox
        self.scheduler = scheduler
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, attempt: Attempt) -> asyncio.Lock:
        # one landing operation per card at a time: approving one attempt touches its siblings
        return self._locks.setdefault(attempt.card_id, asyncio.Lock())

    async def _context(self, attempt_id_: str) -> tuple[Attempt, Card, RepoInfo]:
        attempt = self.store.get_attempt(attempt_id_)
        card = self.store.get_card(attempt.card_id)
        repo = await asyncio.to_thread(inspect_repo, card.repo)
        return attempt, card, repo

    def _require_worktree(self, attempt: Attempt) -> Path:
        worktree = Path(attempt.worktree)
        if not worktree.is_dir():
            raise Conflict(f"attempt {attempt.id} has no worktree (state: {attempt.state})")
        return worktree

    # -- diff -----------------------------------------------------------------

    async def diff(self, attempt_id_: str) -> tuple[dict[str, Any], str]:
        """(structured diff, unified text) of the worktree against the base commit."""
        attempt, card, repo = await self._context(attempt_id_)
        snap, text, files = await self._snapshot_diff(attempt, card, repo)
        files_json = [f.to_json() for f in files]
        structured = {
            "attempt_id": attempt.id,
            "base_commit": card.base_commit,
            "tree": snap.tree,
            "files": files_json,
            "nested_repositories": snap.nested_repositories,
            "additions": sum(f.additions for f in files),
            "deletions": sum(f.deletions for f in files),
            "risks": sorted({r for f in files_json for r in f["risks"]}
                            | ({"nested repository"} if snap.nested_repositories else set())),
        }
        return structured, text

    async def _snapshot_diff(self, attempt: Attempt, card: Card,
                             repo: RepoInfo) -> tuple[Snapshot, str, list[FileDiff]]:
        """The worktree's snapshot and its diff against the base: (snapshot, patch text, files)."""
        worktree = self._require_worktree(attempt)
        snap = await asyncio.to_thread(snapshot, repo, worktree, card.base_commit)
        text, files = await asyncio.to_thread(diff_trees, worktree_git_dir(repo, worktree), card.base_commit,
                                              snap.tree)
        return snap, text, files

    async def _files(self, attempt: Attempt, card: Card, repo: RepoInfo) -> list[FileDiff]:
        return (await self._snapshot_diff(attempt, card, repo))[2]

    # -- comments -------------------------------------------------------------

    async def add_comment(self, attempt_id_: str, path: str, line: int, text: str) -> dict[str, Any]:
        attempt, card, repo = await self._context(attempt_id_)
        if attempt.state in FINAL_STATES - {State.FAILED, State.CANCELLED}:
            raise Conflict(f"attempt {attempt.id} is {attempt.state}; there is nothing left to comment on")
        files = {f.path: f for f in await self._files(attempt, card, repo)}
        if path not in files:
            raise Invalid(f"{path} is not in this attempt's diff", field="path")
        if line not in files[path].new_lines_in_diff():
            raise Invalid(f"line {line} of {path} is not in the diff (comment on an added or context line)",
                          field="line")
        comment = self.store.add_comment(attempt.id, path, line, text)
        self.lifecycle.record(attempt.id, EventKind.LOG, {"message": f"comment on {path}:{line}", "comment": comment})
        return comment

    # -- follow-up ------------------------------------------------------------

    async def follow_up(self, attempt_id_: str, text: str) -> Attempt:
        attempt, _, repo = await self._context(attempt_id_)
        async with self._lock(attempt):
            attempt = self.store.get_attempt(attempt.id)
            if attempt.state != State.REVIEW:
                raise Conflict(f"a follow-up needs an attempt in review; {attempt.id} is {attempt.state}")
            worktree = self._require_worktree(attempt)
            comments = self.store.comments(attempt.id, pending_only=True)
            human = await self._human_changes(attempt, repo, worktree)
            message = compose_follow_up(text, comments, human)
            attempt = self.lifecycle.transition(
                attempt.id, State.RUNNING, message={"role": "user", "content": message},
                sent_comments=[c["id"] for c in comments],
                step=Step.AGENT, summary=None, finished_at=None, stop_reason=None, run=attempt.run + 1,
            )
            self.lifecycle.record(attempt.id, EventKind.MESSAGE, {"role": "user", "content": message})
        self.scheduler.kick()
        return attempt

    async def _human_changes(self, attempt: Attempt, repo: RepoInfo, worktree: Path) -> str:
        if not attempt.review_tree:
            return ""
        now_tree = (await asyncio.to_thread(snapshot, repo, worktree, attempt.review_tree)).tree
        if now_tree == attempt.review_tree:
            return ""
        text, _ = await asyncio.to_thread(diff_trees, worktree_git_dir(repo, worktree), attempt.review_tree,
                                          now_tree)
        if len(text) > HUMAN_CHANGE_LIMIT:
            text = text[:HUMAN_CHANGE_LIMIT] + "\n[… diff cut …]\n"
        return text

    # -- landing --------------------------------------------------------------

    async def approve(self, attempt_id_: str, message: str | None, merge: bool,
                      expected_tree: str | None) -> dict[str, Any]:
        attempt, card, repo = await self._context(attempt_id_)
        async with self._lock(attempt):
            attempt = self.store.get_attempt(attempt.id)
            if attempt.state != State.REVIEW:
                raise Conflict(f"only an attempt in review can be approved; {attempt.id} is {attempt.state}")
            worktree = self._require_worktree(attempt)
            if merge and not card.base_branch:
                raise Conflict(f"the card's base '{card.base_ref}' is not a branch; there is nothing to merge into")
            snap = await asyncio.to_thread(snapshot, repo, worktree, card.base_commit)
            if expected_tree and expected_tree != snap.tree:
                raise Conflict("the worktree changed since that diff was shown; review it again", tree=snap.tree)
            branch_head = await asyncio.to_thread(rev, repo, f"refs/heads/{attempt.branch}")
            if branch_head is None:
                raise Conflict(f"branch {attempt.branch} is gone")
            who = await asyncio.to_thread(identity, repo, self.settings.git_author_name,
                                          self.settings.git_author_email)
            commit_message = message or default_message(card, attempt)
            if branch_head != card.base_commit and await asyncio.to_thread(tree_of, repo, branch_head) == snap.tree:
                commit = branch_head  # committed by an approve that was interrupted: do not commit it twice
            else:
                commit = await asyncio.to_thread(commit_tree, repo, snap.tree, [branch_head], commit_message, who)
            plan = None
            drivers: tuple[str, ...] = ()
            if merge:
                assert card.base_branch is not None
                drivers = await asyncio.to_thread(neutralised_drivers, repo, card.base_commit, snap.tree)
                plan = await asyncio.to_thread(plan_merge, repo, card.base_branch, commit,
                                               f"Merge {attempt.branch}: {card.title}", who, drivers)
            # nothing has moved yet; from here on refs move, each with compare-and-swap
            if commit != branch_head:
                await asyncio.to_thread(move_ref, repo, f"refs/heads/{attempt.branch}", commit, branch_head,
                                        "kilod: approve")
            merged = None
            if plan is not None:
                assert card.base_branch is not None
                old, new, fast_forward = plan
                merged = await asyncio.to_thread(land_merge, repo, card.base_branch, old, new, fast_forward,
                                                 drivers)
            attempt = self.lifecycle.transition(attempt.id, State.APPROVED, landed_commit=commit)
            self.lifecycle.record(attempt.id, EventKind.LOG, {
                "message": f"committed {commit[:12]} on {attempt.branch}"
                + (f"; merged into {merged.branch} ({'fast-forward' if merged.fast_forward else 'merge commit'})"
                   if merged else ""),
            })
            await self._clean(attempt, repo, keep_branch=True)
            discarded = []
            for sibling in self.store.attempts_of(card.id):
                if sibling.id != attempt.id and sibling.state not in (State.APPROVED, State.DISCARDED):
                    await self._discard(sibling, repo)
                    discarded.append(sibling.id)
        return {
            "attempt": self.store.get_attempt(attempt.id).to_json(),
            "commit": commit,
            "branch": attempt.branch,
            "merge": None if merged is None else {
                "branch": merged.branch, "head": merged.head, "fast_forward": merged.fast_forward,
                "worktree_updated": merged.worktree_updated, "checkout": merged.checkout, "note": merged.note,
            },
            "discarded": discarded,
        }

    async def discard(self, attempt_id_: str) -> Attempt:
        attempt, _, repo = await self._context(attempt_id_)
        async with self._lock(attempt):
            attempt = self.store.get_attempt(attempt.id)
            if attempt.state == State.APPROVED:
                raise Conflict(f"attempt {attempt.id} is approved; its branch {attempt.branch} stays")
            await self._discard(attempt, repo)
        return self.store.get_attempt(attempt.id)

    async def _discard(self, attempt: Attempt, repo: RepoInfo) -> None:
        if attempt.state in LIVE_STATES:
            await self.scheduler.cancel(attempt.id)
            attempt = self.store.get_attempt(attempt.id)
        if attempt.state != State.DISCARDED:
            self.lifecycle.transition(attempt.id, State.DISCARDED)
        await self._clean(attempt, repo, keep_branch=False)

    async def _clean(self, attempt: Attempt, repo: RepoInfo, keep_branch: bool) -> None:
        """Remove the container, the worktree and (unless kept) the branch; already-gone is fine."""
        await asyncio.to_thread(self.sandbox.remove, container_name(attempt.id))
        async with self.scheduler.repo_lock(repo):
            await asyncio.to_thread(remove_worktree, repo, Path(attempt.worktree),
                                    None if keep_branch else attempt.branch)

    async def cancel(self, attempt_id_: str) -> Attempt:
        attempt = self.store.get_attempt(attempt_id_)
        if attempt.state not in LIVE_STATES:
            raise Conflict(f"only a queued, starting or running attempt can be cancelled; {attempt.id} is "
                           f"{attempt.state}")
        await self.scheduler.cancel(attempt.id)
        return self.store.get_attempt(attempt.id)

    async def retry(self, attempt_id_: str) -> Attempt:
        attempt, _, repo = await self._context(attempt_id_)
        if attempt.state in LIVE_STATES:
            raise Conflict(f"attempt {attempt.id} is still {attempt.state}; cancel it first or wait")
        n = max(a.n for a in self.store.attempts_of(attempt.card_id)) + 1
        fresh = queued_attempt(attempt.card_id, n, attempt.model, str(self.settings.worktrees_dir), now(),
                               attempt.runtime)
        await asyncio.to_thread(require_free_branches, repo, [fresh.branch])
        self.lifecycle.events.publish(*self.store.add_attempts([fresh]))
        self.scheduler.kick()
        return self.store.get_attempt(fresh.id)

    async def compare(self, card_id: str) -> dict[str, Any]:
        """One row per attempt, the best value per column marked, and which files each touched."""
        card = self.store.get_card(card_id)
        repo = await asyncio.to_thread(inspect_repo, card.repo)
        rows: list[dict[str, Any]] = []
        touched: dict[str, list[str]] = {}
        for attempt in self.store.attempts_of(card_id):
            files = await self._changed_files(attempt, card, repo)
            for f in files or []:
                touched.setdefault(f.path, []).append(attempt.id)
            checks = checks_summary(self.store.checks_of(attempt.id))
            rows.append({
                "attempt_id": attempt.id,
                "model": attempt.model,
                "state": str(attempt.state),
                "files_changed": None if files is None else len(files),
                "additions": None if files is None else sum(f.additions for f in files),
                "deletions": None if files is None else sum(f.deletions for f in files),
                "checks_passed": checks["passed"] if checks["total"] else None,
                "checks_failed": checks["failed"] + checks["error"] if checks["total"] else None,
                "checks_error": checks["error"] if checks["total"] else None,
                "checks_failing": checks["failing"],
                "steps": attempt.steps,
                "tool_calls": attempt.tool_calls,
                "tokens_in": attempt.tokens_in,
                "tokens_out": attempt.tokens_out,
                "tokens": attempt.tokens_in + attempt.tokens_out,
                "cost_usd": attempt.cost_usd,
                "wall_seconds": (round(attempt.finished_at - attempt.started_at, 3)
                                 if attempt.finished_at and attempt.started_at else None),
                "stop_reason": attempt.stop_reason,
                "files": sorted(f.path for f in files or []),
            })
        return {
            "card_id": card.id,
            "title": card.title,
            "rows": rows,
            "best": best_of(rows),
            "files": dict(sorted(touched.items())),
            "overlap": sorted(path for path, ids in touched.items() if len(ids) > 1),
            "usage": usage_totals(self.store.attempts_of(card_id)),
        }

    async def _changed_files(self, attempt: Attempt, card: Card, repo: RepoInfo) -> list[FileDiff] | None:
        """The attempt's changed files: from its worktree, or its landed commit; None when gone."""
        if Path(attempt.worktree).is_dir():
            return await self._files(attempt, card, repo)
        if attempt.landed_commit:
            _, files = await asyncio.to_thread(diff_trees, repo.common_dir, card.base_commit, attempt.landed_commit)
            return files
        return None

    async def shell_target(self, attempt_id_: str) -> dict[str, Any]:
        """Make sure the attempt's container runs, and say how to exec into it."""
        attempt, card, repo = await self._context(attempt_id_)
        if attempt.state in (State.APPROVED, State.DISCARDED):
            raise Conflict(f"attempt {attempt.id} is {attempt.state}; its container is gone")
        self._require_worktree(attempt)
        container_id = await self.scheduler.pipeline.ensure_container(attempt, card, repo)
        uid, gid = self.scheduler.pipeline.owner
        return {"container": container_name(attempt.id), "container_id": container_id, "user": f"{uid}:{gid}",
                "workdir": "/workspace", "worktree": attempt.worktree}


def default_message(card: Card, attempt: Attempt) -> str:
    body = (attempt.summary or "").strip()
    trailer = f"kilod-attempt: {attempt.id}\nkilod-model: {attempt.model}"
    return f"{card.title}\n\n{body}\n\n{trailer}\n" if body else f"{card.title}\n\n{trailer}\n"


def compose_follow_up(text: str, comments: list[dict[str, Any]], human_diff: str) -> str:
    parts = [text.strip()]
    if comments:
        lines = "\n".join(f"- {c['path']}:{c['line']}: {c['text']}" for c in comments)
        parts.append(f"Review comments on your diff:\n{lines}")
    if human_diff:
        parts.append("While you were stopped, a person changed the worktree (diff against what you left):\n"
                     f"```diff\n{human_diff}```")
    return "\n\n".join(p for p in parts if p)


# Which way is better in each compare column.
LOWER_IS_BETTER = ("checks_failed", "steps", "tool_calls", "tokens", "cost_usd", "wall_seconds")
HIGHER_IS_BETTER = ("checks_passed",)


# Columns where only a clean result deserves a star: the fewest failures is best, but one
# failure is never "best" (a ★ beside "checks failed 1" reads as a recommendation).
ZERO_ONLY = ("checks_failed",)


def best_of(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per column, the attempts with the best value (ties all marked; unknown values never win;
    no star for failures, nor for passing nothing)."""
    best: dict[str, list[str]] = {}
    for column in LOWER_IS_BETTER + HIGHER_IS_BETTER:
        values = [(r[column], r["attempt_id"]) for r in rows if r[column] is not None]
        if len(values) < 2:
            continue
        target = (min if column in LOWER_IS_BETTER else max)(v for v, _ in values)
        if (column in ZERO_ONLY and target != 0) or (column in HIGHER_IS_BETTER and target <= 0):
            continue
        best[column] = [aid for v, aid in values if v == target]
    return best
