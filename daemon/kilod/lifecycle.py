"""The one place an attempt's state changes: check, write, then publish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from kilod.domain import FINISHED_STATES, Attempt, Event, EventKind, State, check_transition, now
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

    async def transition_async(self, attempt_id: str, target: State, **fields: Any) -> Attempt:
        """`transition` through the store's group commit: the move is checked in the transaction that writes it,
        and the event loop does not wait for the fsync (nor for another commit's)."""
        before, event, after = await self.store.move_attempt_async(attempt_id, partial(_plan, target, fields))
        self._moved(before, event, after, target, fields)
        return after

    def _move(self, attempt_id: str, target: State, message: dict[str, Any] | None, sent_comments: list[int],
              fields: dict[str, Any]) -> Attempt:
        attempt = self.store.get_attempt(attempt_id)
        state_event, fields = _plan(target, fields, attempt)
        event = self.store.update_attempt(attempt_id, state_event, message=message,
                                          sent_comments=sent_comments, **fields)
        assert event is not None
        after = self.store.get_attempt(attempt_id)
        self._moved(attempt, event, after, target, fields)
        return after

    def _moved(self, before: Attempt, event: Event, after: Attempt, target: State, fields: dict[str, Any]) -> None:
        self.events.publish(event)
        log.info("attempt %s: %s → %s%s", before.id, before.state, target,
                 f" ({fields['error']})" if fields.get("error") else "",
                 extra={"card_id": before.card_id, "attempt_id": before.id, "model": before.model})
        for observe in self.observers:
            observe(before, after)

    def record(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> None:
        """Append a non-state event (message, tool call, log) and publish it."""
        self.events.publish(self.store.append_event(attempt_id, kind, payload))

    async def record_async(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> None:
        """`record` through the store's group commit: the event loop does not wait for the fsync."""
        self.events.publish(await self.store.append_event_async(attempt_id, kind, payload))


def _plan(target: State, fields: dict[str, Any], attempt: Attempt) -> tuple[tuple[EventKind, dict[str, Any]],
                                                                           dict[str, Any]]:
    """The state event and fields of moving `attempt` to `target`; Conflict if that move is not allowed."""
    check_transition(attempt.state, target)
    fields = {**fields, "state": target}
    if target == State.STARTING and attempt.started_at is None:
        fields.setdefault("started_at", now())
    if target in FINISHED_STATES:
        fields.setdefault("finished_at", now())
    payload: dict[str, Any] = {"from": str(attempt.state), "to": str(target), "card_id": attempt.card_id}
    if fields.get("error"):
        payload["error"] = fields["error"]
    return (EventKind.STATE, payload), fields
