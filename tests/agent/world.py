"""An attempt to run the agent loop on without Docker: real SQLite, real litellm, real asyncio.

Tools that reach for a container fail (DOCKER_HOST points nowhere), so scenarios use
tools that answer without one (`finish`, an unknown tool, `todo`) unless they bring a sandbox.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kilod.agent.loop import AgentRun, Budget
from kilod.agent.models import Models, RetryPolicy
from kilod.agent.tools import ToolRunner
from kilod.domain import Attempt, Event, EventKind, State
from kilod.events import EventLog
from kilod.lifecycle import Lifecycle
from kilod.sandbox.docker import DockerSandbox
from kilod.store import Store
from tests.daemon.records import make_attempts, make_card

FAST_RETRY = RetryPolicy(patience=30.0, retries=10, first_delay=0.05, max_delay=0.2)


@dataclass
class World:
    db_path: Path
    store: Store
    lifecycle: Lifecycle
    models: Models
    attempt: Attempt

    def agent(self, model: str, prompt: str = "Tidy up the greeter.", step_limit: int = 50,
              **options: Any) -> AgentRun:
        tools = ToolRunner(sandbox=DockerSandbox(), container_id="no-such-container", uid=1000, gid=1000,
                           shell_timeout=5.0, output_limit=4000)
        return AgentRun(self.attempt.id, model, prompt, self.lifecycle, self.models, tools, step_limit,
                        Budget(), **options)

    def committed_conversation(self) -> list[dict[str, Any]]:
        """What another connection reads from the file: only what was committed."""
        with sqlite3.connect(self.db_path) as other:
            rows = other.execute("SELECT message FROM conversation WHERE attempt_id = ? ORDER BY idx",
                                 (self.attempt.id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def events(self, kind: EventKind | None = None) -> list[Event]:
        return [e for e in self.store.events_of(self.attempt.id) if kind is None or e.kind == kind]

    def follow_up(self, text: str) -> None:
        """What the review desk does: the person's message is appended to the stored conversation."""
        stored = self.store.conversation(self.attempt.id)
        self.store.append_messages(self.attempt.id, len(stored), [{"role": "user", "content": text}])


@contextmanager
def make_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, dict[str, Any]] | None = None,
               retry: RetryPolicy = FAST_RETRY, model: str = "scripted/hello") -> Iterator[World]:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/kilod-tests-no-docker.sock")
    folder = tmp_path / "scripts"
    folder.mkdir(exist_ok=True)
    for name, script in (scripts or {}).items():
        (folder / f"{name}.json").write_text(json.dumps(script))
    db_path = tmp_path / "kilod.db"
    store = Store(db_path)
    lifecycle = Lifecycle(store, EventLog(store))
    card = make_card()
    (attempt,) = make_attempts(card, model=model)
    store.insert_card(card, [attempt])
    for state in (State.STARTING, State.RUNNING):
        lifecycle.transition(attempt.id, state)
    try:
        yield World(db_path, store, lifecycle, Models(folder, timeout=30, retry=retry), attempt)
    finally:
        store.close()
