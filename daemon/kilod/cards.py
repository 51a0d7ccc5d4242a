"""New cards: the request schema, and creating a card with its queued attempts.

Validation happens before anything is written: a bad request creates no card,
worktree or container.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kilod.agent.models import Models
from kilod.agents.catalog import AGENT_NAMES, BUILTIN
from kilod.agents.choice import attempt_plan
from kilod.agents.install import current
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
    models: list[str] | None = Field(None, min_length=1, max_length=MAX_ATTEMPTS_PER_CARD,
                                     description="litellm models, or `agent:model` pairs (kilod.agents.choice)")
    agents: list[str] | None = Field(None, min_length=1, max_length=MAX_ATTEMPTS_PER_CARD,
                                     description="builtin, claude-code, codex, aider, mini-swe-agent; "
                                                 "one attempt per agent x model")
    network: bool | None = None
    repeat: int = Field(1, ge=1, le=8, description="attempts per agent x model (best of N)")
    settings: dict[str, Any] | None = Field(None, description="overrides of the repository's .kilod.toml")
    budget: NewBudget | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return value or None


def require_agent(data_dir: Path, agent: str) -> None:
    """A 400 before anything is written: an unknown agent, or one this daemon has not installed."""
    if agent not in AGENT_NAMES:
        raise Invalid(f"unknown agent '{agent}'; known: {', '.join(AGENT_NAMES)}", field="agents")
    if agent != BUILTIN and current(data_dir, agent) is None:
        raise Invalid(f"agent '{agent}' is not installed; run `kilod agents install {agent}`", field="agents")


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
        plan = attempt_plan(request.agents, request.models, self.settings.default_model, request.repeat)
        if len(plan) > MAX_ATTEMPTS_PER_CARD:
            raise Invalid(f"{len(plan)} attempts on one card; at most {MAX_ATTEMPTS_PER_CARD}", field="models")
        for agent in dict.fromkeys(a for a, _ in plan):
            require_agent(self.settings.data_dir, agent)
        models = [m for _, m in plan]
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
        attempts = [queued_attempt(card.id, n, model, str(self.settings.worktrees_dir), card.created_at,
                                   agent=agent)
                    for n, (agent, model) in enumerate(plan, start=1)]
        await repo.require_free_branches([a.branch for a in attempts])
        self.events.publish(*self.store.insert_card(card, attempts))
        return card_view(self.store, card, attempts)
