"""Between SQLite rows and domain objects: the attempt columns, row → Card/Attempt/Event, field updates."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator
from typing import Any

from kilod.domain import Attempt, Card, Event, EventKind, State, Step

ATTEMPT_COLUMNS = (
    "id, card_id, n, model, runtime, branch, worktree, container_id, state, step, error, summary, "
    "tokens_in, tokens_out, cost_usd, steps, tool_calls, created_at, started_at, finished_at, "
    "review_tree, landed_commit, stop_reason, run, agent, tokens_cached, review_seconds, summaries"
)
_UPDATABLE = frozenset(
    {
        "container_id", "state", "step", "error", "summary", "tokens_in", "tokens_out", "cost_usd",
        "steps", "tool_calls", "started_at", "finished_at", "review_tree", "landed_commit", "stop_reason", "run",
        "tokens_cached", "review_seconds", "summaries", "pause_requested",
    }
)


def check_updatable(fields: dict[str, Any]) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")




# ids per `IN (…)` of a batch read: well under SQLite's limit of bound variables
_IN_CHUNK = 500


def chunks(ids: Collection[str]) -> Iterator[tuple[list[str], str]]:
    """The ids in chunks, each with its `?, ?, …` marks."""
    ordered = list(ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start:start + _IN_CHUNK]
        yield chunk, ", ".join("?" * len(chunk))


def set_fields(db: sqlite3.Connection, attempt_id: str, fields: dict[str, Any]) -> None:
    """UPDATE the attempt's columns named in `fields` (already checked), inside the caller's transaction."""
    if fields:
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [str(v) if isinstance(v, (State, Step)) else json.dumps(v) if isinstance(v, list) else v
                  for v in fields.values()]
        db.execute(f"UPDATE attempts SET {sets} WHERE id = ?", [*values, attempt_id])


def card_of(row: sqlite3.Row) -> Card:
    return Card(
        id=row["id"], title=row["title"], prompt=row["prompt"], repo=row["repo"],
        base_ref=row["base_ref"], base_commit=row["base_commit"], network=bool(row["network"]),
        created_at=row["created_at"], base_branch=row["base_branch"], settings=json.loads(row["settings"]),
        budget_tokens=row["budget_tokens"], budget_cost_usd=row["budget_cost_usd"], archived_at=row["archived_at"],
        settings_source=json.loads(row["settings_source"]) if row["settings_source"] else None,
    )


def attempt_of(row: sqlite3.Row) -> Attempt:
    values = dict(row)
    values["state"] = State(values["state"])
    values["step"] = Step(values["step"])
    values["summaries"] = json.loads(values["summaries"])
    return Attempt(**values)


def event_of(row: sqlite3.Row) -> Event:
    return Event(
        id=row["id"], attempt_id=row["attempt_id"], seq=row["seq"], time=row["time"],
        kind=EventKind(row["kind"]), payload=json.loads(row["payload"]),
    )

