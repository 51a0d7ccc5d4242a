"""New cards: the request schema, and creating a card with its queued attempts.

Validation happens before anything is written: a bad request creates no card,
worktree or container.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kilod.agent.models import Models
from kilod.agents.catalog import AGENT_NAMES, BUILTIN
from kilod.agents.choice import attempt_plan
from kilod.agents.install import current
from kilod.board import card_view
from kilod.config import Settings
from kilod.diskspace import DiskGuard
from kilod.domain import Card, EventKind, attempt_id, branch_name, new_card_id, now, queued_attempt
from kilod.environments.devcontainer import apply_trusted as with_devcontainer
from kilod.errors import Invalid
from kilod.events import EventLog
from kilod.git.paths import RepoPaths
from kilod.git.repository import Repositories
from kilod.repo_settings import RepoSettings, parse_override
from kilod.store import Store
from kilod.trust import RepoTrust, SettingsSource, decide
from kilod.trust_files import at_commit, commit_files

MAX_ATTEMPTS_PER_CARD = 16

T = TypeVar("T")


class NewBudget(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    tokens: int | None = Field(None, gt=0, description="stop an attempt once its tokens in+out reach this")
    cost_usd: float | None = Field(None, gt=0, description="stop an attempt once its known cost reaches this")


class NewCard(BaseModel):
    # strict: `"repeat": true` or `"network": "yes"` is a mistake to report, not to coerce
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    prompt: str = Field(min_length=1, max_length=200_000)
    repo: str = Field(min_length=1, description="absolute path of the top of a git working tree")
    title: str | None = Field(None, max_length=200)
    base: str = Field("HEAD", min_length=1, max_length=255)
    models: list[str] | None = Field(None, min_length=1, max_length=MAX_ATTEMPTS_PER_CARD,
                                     description="litellm models, or `agent:model` pairs (kilod.agents.choice)")
    agents: list[str] | None = Field(None, min_length=1, max_length=MAX_ATTEMPTS_PER_CARD,
                                     description="builtin, claude-code, codex, aider, mini-swe-agent; "
                                                 "one attempt per agent x model")
    network: bool | list[str] | None = Field(None, description="true, false or an allowlist of hosts")
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
        self.trust = RepoTrust(store, repositories)
        self.disk = DiskGuard(settings.data_dir, settings.min_free_bytes)

    def _settings_at(self, repo: RepoPaths, commit: str, override: RepoSettings | None, typed: frozenset[str]
                     ) -> tuple[RepoSettings, SettingsSource]:
        """The card's settings from its base commit's sandbox files: the bytes its image is built from.

        Trust is about every file that configures the sandbox (.kilod.toml, devcontainer,
        Dockerfiles) and the build contexts, all as committed, never the checkout's.
        """
        with commit_files(repo, commit) as root:
            settings_file, files = at_commit(repo, commit, root)
            from_file, source = decide(settings_file, self.trust.is_trusted(repo.path, files), str(repo.path),
                                       typed, files)
            merged = from_file.merged(override)  # what the person typed is trusted
            return with_devcontainer(root, merged, source, repo.path), source

    async def create_card(self, request: NewCard) -> dict[str, Any]:
        self.disk.check_floor("a new card")  # 503 before the disk is full, not a crash once it is
        repo = await self.repositories.open(request.repo)
        card_id = new_card_id()  # before the card: git is asked about its attempts' branches from the start
        plan = attempt_plan(request.agents, request.models, self.settings.default_model, request.repeat)
        # a plan over the limit is refused below, before any taken branch is: no for-each-ref of its (up to
        # 2048) names
        branches = _branch_names(card_id, len(plan) if len(plan) <= MAX_ATTEMPTS_PER_CARD else 0)
        async with _Questions() as git:
            resolved = git.ask(repo.resolve_base(request.base))
            branch_of = git.ask(repo.base_branch_of(request.base))
            branches_free = git.ask(repo.require_free_branches(branches))
            base_commit = await resolved  # an unknown base is the first thing reported
            if len(plan) > MAX_ATTEMPTS_PER_CARD:
                raise Invalid(f"{len(plan)} attempts on one card; at most {MAX_ATTEMPTS_PER_CARD}", field="models")
            for agent in dict.fromkeys(a for a, _ in plan):
                require_agent(self.settings.data_dir, agent)
            models = [m for _, m in plan]
            override = parse_override(request.settings) if request.settings is not None else None
            typed = frozenset(override.model_dump(by_alias=True, exclude_unset=True)) if override else frozenset()
            if request.network is not None:
                typed |= {"network"}
            repo_settings, source = await asyncio.to_thread(self._settings_at, repo.paths, base_commit, override,
                                                            typed)
            for model in dict.fromkeys(models):
                await self.models.validate(model)
            if request.network is not None:
                repo_settings = repo_settings.merged(parse_override({"network": request.network}))
            network = repo_settings.network if repo_settings.network is not None else self.settings.network
            # the card's column says "full network"; an allowlist lives in its settings (kilod.environments)
            repo_settings = repo_settings.model_copy(update={"network": network})
            base_branch = await branch_of
            card = Card(
                id=card_id,
                title=request.title or default_title(request.prompt),
                prompt=request.prompt,
                repo=str(repo.path),
                base_ref=request.base,
                base_commit=base_commit,
                network=network is True,
                created_at=now(),
                base_branch=base_branch,
                settings=repo_settings.to_json(),
                settings_source=dict(source),
                budget_tokens=request.budget.tokens if request.budget else None,
                budget_cost_usd=request.budget.cost_usd if request.budget else None,
            )
            attempts = [queued_attempt(card.id, n, model, str(self.settings.worktrees_dir), card.created_at,
                                       agent=agent)
                        for n, (agent, model) in enumerate(plan, start=1)]
            await branches_free  # a taken branch (Conflict) only once the request itself has passed
        self.events.publish(*self.store.insert_card(card, attempts))
        if source["note"]:
            for attempt in attempts:  # in each attempt's log too, where a person reading its run looks
                self.events.publish(self.store.append_event(attempt.id, EventKind.LOG, {
                    "message": source["note"], "step": "settings", "settings_source": dict(source)}))
        return card_view(self.store, card, attempts)


def _branch_names(card_id: str, count: int) -> list[str]:
    """The branches `queued_attempt` gives attempts 1…count of the card."""
    return [branch_name(attempt_id(card_id, n)) for n in range(1, count + 1)]


class _Questions:
    """git questions asked all at once (each is a git run, ~3 ms), their answers read one by one.

    Each answer is awaited where the check that needs it always stood, so the errors keep their
    precedence whichever question git answers first. Leaving the block waits for the questions
    still running and retrieves their errors: after an earlier failure none goes unread, and no
    git run outlives the request.
    """

    def __init__(self) -> None:
        self._asked: list[asyncio.Task[Any]] = []

    def ask(self, question: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(question)
        self._asked.append(task)
        return task

    async def __aenter__(self) -> _Questions:
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*self._asked, return_exceptions=True)
