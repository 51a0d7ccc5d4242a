"""Cards: validate a request, create the card and its attempts, and read the board back.

Validation happens before anything is written: a bad request creates no card,
worktree or container.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kilod.agent.models import Models
from kilod.config import Settings
from kilod.diffs import diffstat
from kilod.domain import (
    COLUMN_TITLES,
    Attempt,
    Card,
    Column,
    card_json,
    column_of,
    new_card_id,
    now,
    queued_attempt,
)
from kilod.environments.devcontainer import apply as with_devcontainer
from kilod.errors import Conflict, Invalid
from kilod.events import EventLog
from kilod.landing import base_branch_of
from kilod.repo_settings import load as load_repo_settings
from kilod.repo_settings import parse_override
from kilod.store import Store
from kilod.worktrees import inspect_repo, require_free_branches, resolve_base

MAX_ATTEMPTS_PER_CARD = 16


class NewBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: int | None = Field(None, gt=0, description="stop an attempt once its tokens in+out reach this")
    cost_usd: float | None = Field(None, gt=0, description="stop an attempt once its known cost reaches this")


class NewCard(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=200_000)
    repo: str = Field(min_length=1)
    title: str | None = Field(None, max_length=200)
    base: str = Field("HEAD", min_length=1, max_length=255)
    models: list[str] | None = Field(None, min_length=1, max_length=MAX_ATTEMPTS_PER_CARD)
    network: bool | list[str] | None = Field(None, description="true, false or an allowlist of hosts")
    repeat: int = Field(1, ge=1, le=8, description="attempts per model (best of N)")
    settings: dict[str, Any] | None = Field(None, description="overrides of the repository's .kilod.toml")
    budget: NewBudget | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return value or None


def default_title(prompt: str) -> str:
    first = prompt.strip().splitlines()[0]
    return first if len(first) <= 72 else first[:71] + "…"


class Board:
    def __init__(self, settings: Settings, store: Store, events: EventLog, models: Models) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.models = models

    async def create_card(self, request: NewCard) -> dict[str, Any]:
        repo = await asyncio.to_thread(inspect_repo, request.repo)
        base_commit = await asyncio.to_thread(resolve_base, repo, request.base)
        models = [m for m in (request.models or [self.settings.default_model]) for _ in range(request.repeat)]
        if len(models) > MAX_ATTEMPTS_PER_CARD:
            raise Invalid(f"{len(models)} attempts on one card; at most {MAX_ATTEMPTS_PER_CARD}", field="models")
        repo_settings = (await asyncio.to_thread(load_repo_settings, repo.path)).merged(
            parse_override(request.settings) if request.settings is not None else None)
        repo_settings = await asyncio.to_thread(with_devcontainer, repo.path, repo_settings)
        for model in dict.fromkeys(models):
            await self.models.validate(model)
        if request.network is not None:
            repo_settings = repo_settings.merged(parse_override({"network": request.network}))
        network = repo_settings.network if repo_settings.network is not None else self.settings.network
        # the card's column says "full network"; an allowlist lives in its settings (kilod.environments)
        repo_settings = repo_settings.model_copy(update={"network": network})
        base_branch = await asyncio.to_thread(base_branch_of, repo, request.base)
        card = Card(
            id=new_card_id(),
            title=request.title or default_title(request.prompt),
            prompt=request.prompt,
            repo=str(repo.path),
            base_ref=request.base,
            base_commit=base_commit,
            network=network is True,
            created_at=now(),
            base_branch=base_branch,
            settings=repo_settings.to_json(),
            budget_tokens=request.budget.tokens if request.budget else None,
            budget_cost_usd=request.budget.cost_usd if request.budget else None,
        )
        attempts = [queued_attempt(card.id, n, model, str(self.settings.worktrees_dir), card.created_at)
                    for n, model in enumerate(models, start=1)]
        await asyncio.to_thread(require_free_branches, repo, [a.branch for a in attempts])
        self.events.publish(*self.store.insert_card(card, attempts))
        return self._json(card, attempts)

    async def diffstat(self, attempt_id: str) -> dict[str, Any]:
        """Files the attempt changed against its base, untracked ones included."""
        attempt = self.store.get_attempt(attempt_id)
        card = self.store.get_card(attempt.card_id)
        worktree = Path(attempt.worktree)
        if not worktree.is_dir():
            raise Conflict(f"attempt {attempt_id} has no worktree (state: {attempt.state})")
        repo = await asyncio.to_thread(inspect_repo, card.repo)
        stats = await asyncio.to_thread(diffstat, repo, worktree, card.base_commit)
        files = [{"path": s.path, "added": s.added, "deleted": s.deleted, "binary": s.added is None}
                 for s in stats]
        return {
            "attempt_id": attempt_id,
            "base_commit": card.base_commit,
            "files": files,
            "added": sum(s.added or 0 for s in stats),
            "deleted": sum(s.deleted or 0 for s in stats),
        }

    def _json(self, card: Card, attempts: list[Attempt]) -> dict[str, Any]:
        return card_json(card, attempts, {a.id: self.store.checks_of(a.id) for a in attempts})

    def card(self, card_id: str) -> dict[str, Any]:
        return self._json(self.store.get_card(card_id), self.store.attempts_of(card_id))

    def cards(self) -> list[dict[str, Any]]:
        return [self._json(c, self.store.attempts_of(c.id)) for c in self.store.list_cards()]

    def board(self) -> dict[str, Any]:
        columns: dict[str, list[dict[str, Any]]] = {str(c): [] for c in Column}
        for card in self.store.list_cards():
            attempts = self.store.attempts_of(card.id)
            columns[str(column_of([a.state for a in attempts]))].append(self._json(card, attempts))
        return {
            "columns": [{"id": str(c), "title": COLUMN_TITLES[c], "cards": columns[str(c)]} for c in Column]
        }
