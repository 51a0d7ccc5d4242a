"""Reading an attempt's work: its diff and diffstat, comments on the diff, and a card's attempts compared.

Every read compares the base commit with a fresh snapshot of the worktree (or the
landed commit once the worktree is gone), so what a person sees is what would land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kilod.domain import EventKind, State, checks_summary, usage_totals
from kilod.errors import Conflict, Invalid
from kilod.git.diff import FileDiff
from kilod.git.names import exact, shown
from kilod.git.repository import Repositories
from kilod.lifecycle import Lifecycle
from kilod.review.context import AttemptContext, open_attempt

# Which way is better in each compare column.
LOWER_IS_BETTER = ("checks_failed", "steps", "tool_calls", "tokens", "cost_usd", "wall_seconds")
HIGHER_IS_BETTER = ("checks_passed",)
# Columns where only a clean result deserves a star: the fewest failures is best, but one
# failure is never "best" (a ★ beside "checks failed 1" reads as a recommendation).
ZERO_ONLY = ("checks_failed",)


class CommentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)  # `"line": "3"` is an error
    path: str = Field(min_length=1)
    line: int = Field(ge=1)
    text: str = Field(min_length=1, max_length=20_000)


class Queries:
    def __init__(self, lifecycle: Lifecycle, repositories: Repositories) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.repositories = repositories

    async def _open(self, attempt_id: str) -> AttemptContext:
        return await open_attempt(self.store, self.repositories, attempt_id)

    async def diff(self, attempt_id: str) -> tuple[dict[str, Any], str]:
        """(structured diff, unified text) of the worktree against the base commit."""
        ctx = await self._open(attempt_id)
        snap, diff = await ctx.repo.worktree_diff(ctx.worktree(), ctx.card.base_commit)
        files_json = [f.to_json() for f in diff.files]
        structured = {
            "attempt_id": ctx.attempt.id,
            "base_commit": ctx.card.base_commit,
            "tree": snap.tree,
            "files": files_json,
            "nested_repositories": [shown(p) for p in snap.nested_repositories],
            # worktree paths that are not part of what lands: a FIFO, a device, a file over the size limit
            "left_out": [{"path": shown(item.path), "path_base64": exact(item.path), "reason": item.reason,
                          "note": item.note} for item in snap.left_out],
            "additions": diff.additions,
            "deletions": diff.deletions,
            "risks": sorted({r for f in files_json for r in f["risks"]}
                            | ({"nested repository"} if snap.nested_repositories else set())
                            | ({"files left out"} if snap.left_out else set())),
        }
        return structured, diff.text   # git's own bytes (surrogateescape): api sends them as they are

    async def diffstat(self, attempt_id: str) -> dict[str, Any]:
        """Files the attempt changed against its base, untracked ones included: read off the same diff."""
        ctx = await self._open(attempt_id)
        _, diff = await ctx.repo.worktree_diff(ctx.worktree(), ctx.card.base_commit)
        return {
            "attempt_id": ctx.attempt.id,
            "base_commit": ctx.card.base_commit,
            "files": diff.stat_json(),
            "added": diff.additions,
            "deleted": diff.deletions,
        }

    def comments(self, attempt_id: str) -> list[dict[str, Any]]:
        return self.store.comments(self.store.get_attempt(attempt_id).id)

    async def add_comment(self, attempt_id: str, path: str, line: int, text: str) -> dict[str, Any]:
        ctx = await self._open(attempt_id)
        attempt = ctx.attempt
        if attempt.state in (State.APPROVED, State.DISCARDED):
            raise Conflict(f"attempt {attempt.id} is {attempt.state}; there is nothing left to comment on")
        _, diff = await ctx.repo.worktree_diff(ctx.worktree(), ctx.card.base_commit)
        files = {shown(f.path): f for f in diff.files}  # comments name files as the diff shows them
        if path not in files:
            raise Invalid(f"{path} is not in this attempt's diff", field="path")
        if line not in files[path].new_lines_in_diff():
            raise Invalid(f"line {line} of {path} is not in the diff (comment on an added or context line)",
                          field="line")
        comment = self.store.add_comment(attempt.id, path, line, text)
        self.lifecycle.record(attempt.id, EventKind.LOG, {"message": f"comment on {path}:{line}", "comment": comment})
        return comment

    async def compare(self, card_id: str) -> dict[str, Any]:
        """One row per attempt, the best value per column marked, and which files each touched."""
        card = self.store.get_card(card_id)
        repo = await self.repositories.open(card.repo)
        rows: list[dict[str, Any]] = []
        touched: dict[str, list[str]] = {}
        for attempt in self.store.attempts_of(card_id):
            files = await self._changed_files(AttemptContext(attempt, card, repo))
            for f in files or []:
                touched.setdefault(shown(f.path), []).append(attempt.id)
            checks = checks_summary(self.store.checks_of(attempt.id))
            rows.append({
                "attempt_id": attempt.id,
                "agent": attempt.agent,
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
                "wall_seconds": (round(attempt.running_seconds or 0.0, 3)
                                 if attempt.finished_at and attempt.started_at else None),
                "stop_reason": attempt.stop_reason,
                "files": sorted(shown(f.path) for f in files or []),
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

    async def _changed_files(self, ctx: AttemptContext) -> list[FileDiff] | None:
        """The attempt's changed files: from its worktree, or its landed commit; None when gone."""
        if Path(ctx.attempt.worktree).is_dir():
            return (await ctx.repo.worktree_diff(ctx.worktree(), ctx.card.base_commit))[1].files
        if ctx.attempt.landed_commit:
            return (await ctx.repo.diff(ctx.card.base_commit, ctx.attempt.landed_commit)).files
        return None


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
