"""New cards: the request schema, and creating a card with its queued attempts.

Validation happens before anything is written: a bad request creates no card,
worktree or container.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kilod.agent.models import Models
from kilod.board import card_view
from kilod.config import Settings
from kilod.domain import Card, new_card_id, now, queued_attempt
from kilod.errors import Invalid
from kilod.events import EventLog
from kilod.git.repository import Repositories
from kilod.repo_settings import load as load_repo_settings
from kilod.repo_settings import parse_override
from kilod.store import Store

MAX_ATTEMPTS_PER_CARD = 16


class NewBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: int | None = Field(None, gt=0, description="stop an attempt once its tokens in+out reach this")
    cost_usd: float | None = Field(None, gt=0, description="stop an attempt once its known cost reaches this")


class NewCard(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=200_000)
    repo: str = Field(min_length=1, description="absolute path of the top of a git working tree")
    title: str | None = Field(None, max_length=200)
    base: str = Field("HEAD", min_length=1, max_length=255)
    models: list[str] | None = Field(None, min_length=1, max_length=MAX_ATTEMPTS_PER_CARD)
    network: bool | None = None
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


class Cards:
    def __init__(self, settings: Settings, store: Store, events: EventLog, models: Models,
                 repositories: Repositories) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.models = models
        self.repositories = repositories

    async def create_card(self, request: NewCard) -> dict[str, Any]:
        repo = await self.repositories.open(request.repo)
        base_commit = await repo.resolve_base(request.base)
        models = [m for m in (request.models or [self.settings.default_model]) for _ in range(request.repeat)]
        if len(models) > MAX_ATTEMPTS_PER_CARD:
            raise Invalid(f"{len(models)} attempts on one card; at most {MAX_ATTEMPTS_PER_CARD}", field="models")
        repo_settings = (await asyncio.to_thread(load_repo_settings, repo.path)).merged(
            parse_override(request.settings) if request.settings is not None else None)
        for model in dict.fromkeys(models):
            await self.models.validate(model)
        if request.network is not None:
            network = request.network
        elif repo_settings.network is not None:
            network = repo_settings.network
        else:
            network = self.settings.network
        base_branch = await repo.base_branch_of(request.base)
        card = Card(
            id=new_card_id(),
            title=request.title or default_title(request.prompt),
            prompt=request.prompt,
            repo=str(repo.path),
            base_ref=request.base,
            base_commit=base_commit,
            network=network,
            created_at=now(),
            base_branch=base_branch,
            settings=repo_settings.to_json(),
            budget_tokens=request.budget.tokens if request.budget else None,
            budget_cost_usd=request.budget.cost_usd if request.budget else None,
        )
        attempts = [queued_attempt(card.id, n, model, str(self.settings.worktrees_dir), card.created_at)
                    for n, model in enumerate(models, start=1)]
        await repo.require_free_branches([a.branch for a in attempts])
        self.events.publish(*self.store.insert_card(card, attempts))
        return card_view(self.store, card, attempts)
