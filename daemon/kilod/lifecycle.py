"""The one place an attempt's state changes: check, write, then publish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kilod.domain import FINISHED_STATES, Attempt, EventKind, State, check_transition, now
from kilod.events import EventLog
from kilod.store import Store

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(self, store: Store, events: EventLog) -> None:
        self.store = store
        self.events = events
        # told (before, after) once a transition is committed: metrics, mostly
        self.observers: list[Callable[[Attempt, Attempt], None]] = []

    def transition(self, attempt_id: str, target: State, **fields: Any) -> Attempt:
        """Move an attempt to `target` if allowed; the store is committed before anyone hears of it."""
        return self._move(attempt_id, target, None, [], fields)

    def follow_up(self, attempt_id: str, message: dict[str, Any], sent_comments: list[int],
                  **fields: Any) -> Attempt:
        """Back to running with a person's `message`, written in the same transaction as the move.

        The comments it carries are marked sent in that transaction too: after a crash
        the follow-up is all there or not there.
        """
        return self._move(attempt_id, State.RUNNING, message, sent_comments, fields)

    def _move(self, attempt_id: str, target: State, message: dict[str, Any] | None, sent_comments: list[int],
              fields: dict[str, Any]) -> Attempt:
        attempt = self.store.get_attempt(attempt_id)
        check_transition(attempt.state, target)
        if target == State.STARTING and attempt.started_at is None:
            fields.setdefault("started_at", now())
        if target in FINISHED_STATES:
            fields.setdefault("finished_at", now())
        payload: dict[str, Any] = {"from": str(attempt.state), "to": str(target), "card_id": attempt.card_id}
        if fields.get("error"):
            payload["error"] = fields["error"]
        event = self.store.update_attempt(attempt_id, (EventKind.STATE, payload), message=message,
                                          sent_comments=sent_comments, state=target, **fields)
        assert event is not None
        self.events.publish(event)
        after = self.store.get_attempt(attempt_id)
        log.info("attempt %s: %s → %s%s", attempt_id, attempt.state, target,
                 f" ({fields['error']})" if fields.get("error") else "",
                 extra={"card_id": attempt.card_id, "attempt_id": attempt_id, "model": attempt.model})
        for observe in self.observers:
            observe(attempt, after)
        return after

    def record(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> None:
        """Append a non-state event (message, tool call, log) and publish it."""
        self.events.publish(self.store.append_event(attempt_id, kind, payload))

    async def record_async(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> None:
        """`record` through the store's group commit: the event loop does not wait for the fsync."""
        self.events.publish(await self.store.append_event_async(attempt_id, kind, payload))
