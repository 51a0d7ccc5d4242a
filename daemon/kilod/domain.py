"""Cards, attempts, events and the rules that move an attempt from state to state.

Pure data and rules: nothing here knows about HTTP, Docker, git or SQLite.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

from kilod.errors import Conflict


class State(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"          # stopped on purpose (a person, a full disk); resumes where it was
    REVIEW = "review"
    APPROVED = "approved"
    DISCARDED = "discarded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Groupings, defined here once; the CLI and the web page read them from GET /v1/meta.
LIVE_STATES = frozenset({State.QUEUED, State.STARTING, State.RUNNING, State.PAUSED})   # not yet at rest
SLOT_STATES = frozenset({State.STARTING, State.RUNNING})   # hold a max_parallel slot; resumed after a restart
# Two kinds of pause share State.PAUSED: a person's (POST /pause, `error` empty; only POST /resume
# continues it) and a full disk's (`error` starts with this; the daemon resumes it once space is back).
DISK_FULL_PAUSE = "paused: the disk is full"
FINAL_STATES = frozenset({State.APPROVED, State.DISCARDED, State.FAILED, State.CANCELLED})
RESTING_STATES = frozenset({State.REVIEW, State.FAILED, State.CANCELLED})   # the agent stopped; a person decides
FINISHED_STATES = RESTING_STATES | FINAL_STATES   # reaching one stamps finished_at
# Attempts in these states keep their container (for review, follow-ups and shells).
KEEPS_CONTAINER = frozenset({State.STARTING, State.RUNNING, State.PAUSED, State.REVIEW, State.FAILED,
                             State.CANCELLED})

_ALLOWED: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.STARTING, State.FAILED, State.CANCELLED}),
    State.STARTING: frozenset({State.RUNNING, State.FAILED, State.CANCELLED}),
    State.RUNNING: frozenset({State.PAUSED, State.REVIEW, State.FAILED, State.CANCELLED}),
    State.PAUSED: frozenset({State.RUNNING, State.FAILED, State.CANCELLED}),
    State.REVIEW: frozenset({State.RUNNING, State.APPROVED, State.DISCARDED}),
    State.APPROVED: frozenset(),
    State.DISCARDED: frozenset(),
    State.FAILED: frozenset({State.DISCARDED}),
    State.CANCELLED: frozenset({State.DISCARDED}),
}


def check_transition(current: State, target: State) -> None:
    """Raise Conflict unless `current → target` is an allowed move."""
    if target not in _ALLOWED[current]:
        raise Conflict(f"an attempt in state '{current}' cannot move to '{target}'")


class Step(StrEnum):
    """Where an attempt's pipeline stands, in the order the pipeline runs them; stored so a restart continues."""

    WORKTREE = "worktree"
    IMAGE = "image"  # the repository's own sandbox image: pulled or built (kilod.environments)
    INSTALL = "install"  # an agent CLI for that image: a Python agent's venv for its python3 (kilod.agents.venvs)
    CONTAINER = "container"
    SETUP = "setup"
    AGENT = "agent"
    CHECKS = "checks"
    REVIEW = "review"


class Column(StrEnum):
    TODO = "todo"
    DOING = "doing"
    REVIEW = "review"
    DONE = "done"
    CLOSED = "closed"


COLUMN_TITLES = {Column.TODO: "To Do", Column.DOING: "Doing", Column.REVIEW: "Review", Column.DONE: "Done",
                 Column.CLOSED: "Closed"}


def column_of(states: list[State]) -> Column:
    """A card's column, derived from its attempts' states; the first rule that holds wins:

    Doing   an attempt is starting, running or paused (work under way)
    Review  an attempt waits for a person (review)
    To Do   an attempt waits for a slot (queued), or the card has none yet
    Done    an attempt was approved
    Closed  every attempt failed, was cancelled or discarded: an outcome to see, nothing to decide
    """
    if any(s in (State.STARTING, State.RUNNING, State.PAUSED) for s in states):
        return Column.DOING
    if State.REVIEW in states:
        return Column.REVIEW
    if not states or State.QUEUED in states:
        return Column.TODO
    if State.APPROVED in states:
        return Column.DONE
    return Column.CLOSED


class EventKind(StrEnum):
    STATE = "state"
    MESSAGE = "message"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    LOG = "log"
    CHECK = "check"
    # a setup or check command's output while it runs: `step`, `command` (and a check's `name`), `text`
    # (whole lines where it can), `cut` once the command's output passed the daemon's limit
    OUTPUT = "output"


class ColumnMeta(TypedDict):
    id: str
    title: str


class Meta(TypedDict):
    states: list[str]
    live_states: list[str]
    final_states: list[str]
    columns: list[ColumnMeta]
    steps: list[str]
    event_kinds: list[str]


def meta() -> Meta:
    """The constants clients need, in display order, so none of them keeps a copy."""
    return {
        "states": [str(s) for s in State],
        "live_states": [str(s) for s in State if s in LIVE_STATES],
        "final_states": [str(s) for s in State if s in FINAL_STATES],
        "columns": [{"id": str(c), "title": COLUMN_TITLES[c]} for c in Column],
        "steps": [str(s) for s in Step],
        "event_kinds": [str(k) for k in EventKind],
    }


def new_card_id() -> str:
    return secrets.token_hex(4)


def attempt_id(card_id: str, n: int) -> str:
    return f"{card_id}-{n}"


def branch_name(attempt: str) -> str:
    return f"kilod/{attempt}"


def container_name(attempt: str) -> str:
    return f"kilod-{attempt}"


def now() -> float:
    return time.time()


@dataclass
class Card:
    id: str
    title: str
    prompt: str
    repo: str
    base_ref: str
    base_commit: str
    network: bool
    created_at: float
    base_branch: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)   # .kilod.toml merged with the card's overrides
    settings_source: dict[str, Any] | None = None  # which .kilod.toml, its hash, trusted or not, what was ignored
    budget_tokens: int | None = None
    budget_cost_usd: float | None = None
    archived_at: float | None = None   # off the board (kept, reversible)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "prompt": self.prompt,
            "repo": self.repo,
            "base_ref": self.base_ref,
            "base_commit": self.base_commit,
            "base_branch": self.base_branch,
            "settings": self.settings,
            "settings_source": self.settings_source,
            "budget": {"tokens": self.budget_tokens, "cost_usd": self.budget_cost_usd},
            "network": self.network,
            "created_at": self.created_at,
            "archived_at": self.archived_at,
        }


@dataclass
class Attempt:
    id: str
    card_id: str
    n: int
    model: str
    runtime: str
    branch: str
    worktree: str
    state: State
    step: Step
    created_at: float
    container_id: str | None = None
    error: str | None = None
    summary: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    steps: int = 0
    tool_calls: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    review_tree: str | None = None
    landed_commit: str | None = None
    stop_reason: str | None = None   # why the agent stopped before finishing (budget, step limit)
    run: int = 1                     # agent runs so far: a follow-up starts the next one
    agent: str = "builtin"           # who runs the model: kilod's own loop or an agent CLI (kilod.agents)
    tokens_cached: int = 0           # of tokens_in, those the provider read from its prompt cache
    review_seconds: float = 0.0      # time spent waiting in review before follow-ups: not running time
    summaries: list[str] = field(default_factory=list)   # earlier runs' summaries, oldest first

    @property
    def running_seconds(self) -> float | None:
        """Time the attempt spent being worked on: started to finished (or now), less its waits in review."""
        if self.started_at is None:
            return None
        return max(0.0, (self.finished_at or now()) - self.started_at - self.review_seconds)

    @property
    def waits_for_disk(self) -> bool:
        """Paused by a full disk (it resumes by itself once space is back), not by a person (POST /resume)."""
        return self.state == State.PAUSED and (self.error or "").startswith(DISK_FULL_PAUSE)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "card_id": self.card_id,
            "n": self.n,
            "model": self.model,
            "runtime": self.runtime,
            "branch": self.branch,
            "worktree": self.worktree,
            "container": container_name(self.id),
            "container_id": self.container_id,
            "state": str(self.state),
            "step": str(self.step),
            "error": self.error,
            "summary": self.summary,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached": self.tokens_cached,
            "cost_usd": self.cost_usd,
            "steps": self.steps,
            "tool_calls": self.tool_calls,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "landed_commit": self.landed_commit,
            "stop_reason": self.stop_reason,
            "run": self.run,
            "agent": self.agent,
            "running_seconds": None if self.running_seconds is None else round(self.running_seconds, 3),
            "review_seconds": self.review_seconds,
            "summaries": self.summaries,
        }


def queued_attempt(card_id: str, n: int, model: str, worktrees_dir: str, created_at: float,
                   runtime: str = "docker", agent: str = "builtin") -> Attempt:
    """Attempt n of a card, waiting for a slot: its id, branch and worktree follow from card and n."""
    aid = attempt_id(card_id, n)
    return Attempt(id=aid, card_id=card_id, n=n, model=model, runtime=runtime, branch=branch_name(aid),
                   worktree=f"{worktrees_dir}/{aid}", state=State.QUEUED, step=Step.WORKTREE, created_at=created_at,
                   agent=agent)


@dataclass
class Event:
    id: int
    attempt_id: str
    seq: int
    time: float
    kind: EventKind
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "attempt_id": self.attempt_id,
            "seq": self.seq,
            "time": self.time,
            "kind": str(self.kind),
            "payload": self.payload,
        }


def checks_summary(checks: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {status: sum(1 for c in checks if c["status"] == status) for status in ("passed", "failed", "error")}
    return {**counts, "total": len(checks), "failing": counts["failed"] + counts["error"] > 0}


def usage_totals(attempts: list[Attempt]) -> dict[str, Any]:
    """Tokens and cost summed over attempts; cost is None when no attempt's price is known."""
    known = [a.cost_usd for a in attempts if a.cost_usd is not None]
    return {
        "tokens_in": sum(a.tokens_in for a in attempts),
        "tokens_out": sum(a.tokens_out for a in attempts),
        "tokens_cached": sum(a.tokens_cached for a in attempts),
        "cost_usd": sum(known) if known else None,
        "cost_complete": len(known) == len([a for a in attempts if a.steps > 0]),
    }


def card_json(card: Card, attempts: list[Attempt],
              checks: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    out = card.to_json()
    out["column"] = str(column_of([a.state for a in attempts]))
    out["attempts"] = []
    for attempt in attempts:
        item = attempt.to_json()
        item["checks"] = checks_summary((checks or {}).get(attempt.id, []))
        out["attempts"].append(item)
    out["usage"] = usage_totals(attempts)
    return out
