"""Metering and budgets for gateway calls, counted exactly as the built-in agent counts its own.

Each model call adds one step, its tokens and its cost (litellm's price map; None when the
model has no price, never made up) to the attempt in one transaction, with a `log` event
saying what the call cost. Before a call, the card's budget is checked with the built-in
agent's own `Budget`: once spent, the call is refused, the stop reason is stored on the
attempt and the pipeline's hook is told (once per attempt run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kilod.agent.loop import Budget
from kilod.agent.prices import Prices
from kilod.domain import EventKind
from kilod.events import EventLog
from kilod.gateway.errors import BudgetSpent, GatewayError
from kilod.gateway.wire import Usage, Wire
from kilod.metrics import Metrics, agent_label
from kilod.store import Store

log = logging.getLogger(__name__)

BudgetHook = Callable[[str, str], None]   # (attempt_id, reason)


class Meter:
    def __init__(self, store: Store, events: EventLog, metrics: Metrics | None = None,
                 on_budget_spent: BudgetHook | None = None, prices: Prices | None = None) -> None:
        self.store = store
        self.prices = prices or Prices()
        self.events = events
        self.metrics = metrics
        self.on_budget_spent = on_budget_spent
        self._told: set[tuple[str, int]] = set()   # (attempt, run) whose budget hook already ran
        self._pending: dict[str, set[asyncio.Task[None]]] = {}   # calls answered, their counts not yet durable

    def check_budget(self, attempt_id: str) -> None:
        """Raise BudgetSpent when the card's budget is used up (recording why, telling the hook once)."""
        attempt = self.store.get_attempt(attempt_id)
        card = self.store.get_card(attempt.card_id)
        reason = Budget(card.budget_tokens, card.budget_cost_usd).exceeded(
            attempt.tokens_in + attempt.tokens_out, attempt.cost_usd)
        if reason is None:
            return
        key = (attempt_id, attempt.run)
        if key not in self._told:
            self._told.add(key)
            event = self.store.update_attempt(
                attempt_id, (EventKind.LOG, {"message": f"stopped: {reason}", "source": "gateway"}),
                stop_reason=reason)
            if event is not None:
                self.events.publish(event)
            log.info("attempt %s: %s", attempt_id, reason, extra={"attempt_id": attempt_id})
            if self.on_budget_spent is not None:
                try:
                    self.on_budget_spent(attempt_id, reason)
                except Exception:  # the hook's failure must not turn a clear 400 into a 500
                    log.exception("on_budget_spent failed for %s", attempt_id)
        raise BudgetSpent(reason)

    def record_soon(self, litellm: Any, attempt_id: str, agent: str, model: str, wire: Wire, usage: Usage,
                    started: float, stream: bool, error: GatewayError | None = None,
                    called: bool = False) -> asyncio.Task[None]:
        """Count one model call in the store's next group commit; the task ends once it is durable.

        The caller may answer the agent meanwhile: the attempt's next call waits for it
        (`settled`) before its budget check, so a budget is never judged on stale counts.
        """
        seconds = time.monotonic() - started   # the call's own time, not the commit's
        task = asyncio.get_running_loop().create_task(
            self._record(litellm, attempt_id, agent, model, wire, usage, seconds, stream, error, called))
        pending = self._pending.setdefault(attempt_id, set())
        pending.add(task)
        task.add_done_callback(lambda done: self._recorded(attempt_id, done))
        return task

    async def record(self, litellm: Any, attempt_id: str, agent: str, model: str, wire: Wire, usage: Usage,
                     started: float, stream: bool, error: GatewayError | None = None, called: bool = False) -> None:
        """Count one model call and return once it is durable."""
        await asyncio.shield(self.record_soon(litellm, attempt_id, agent, model, wire, usage, started, stream,
                                              error, called))

    async def settled(self, attempt_id: str | None = None) -> None:
        """Wait until every call recorded so far (of one attempt, or of all) is durable."""
        tasks = [t for key, group in self._pending.items() if attempt_id in (None, key) for t in group]
        if tasks:
            await asyncio.wait(tasks)

    def _recorded(self, attempt_id: str, task: asyncio.Task[None]) -> None:
        group = self._pending.get(attempt_id)
        if group is not None:
            group.discard(task)
            if not group:
                del self._pending[attempt_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("attempt %s: a model call could not be recorded: %s", attempt_id, task.exception(),
                      extra={"attempt_id": attempt_id})

    async def _record(self, litellm: Any, attempt_id: str, agent: str, model: str, wire: Wire, usage: Usage,
                      seconds: float, stream: bool, error: GatewayError | None, called: bool) -> None:
        """A failed call reaches the log, and is a step if the provider answered (`called`: a stream
        started) or reported tokens."""
        cost = cost_of(litellm, model, usage, self.prices) if usage.reported else None
        payload: dict[str, Any] = {
            "source": "gateway", "agent": agent, "model": model, "wire": str(wire), "stream": stream,
            "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out,
            "cache_read": usage.cache_read, "cache_write": usage.cache_write,
            "cost_usd": cost, "seconds": round(seconds, 3),
        }
        if error is None:
            price = "cost unknown" if cost is None else f"${cost:.6g}"
            payload["message"] = (f"model call: {model}, {usage.tokens_in} in / {usage.tokens_out} out"
                                  f"{f' ({usage.cache_read} cached)' if usage.cache_read else ''}, {price}")
        else:
            payload["message"] = f"model call failed ({error.status}): {error.message}"
            payload["status"] = error.status
        if error is None or called or usage.reported:
            event = await self.store.add_model_call_async(attempt_id, usage.tokens_in, usage.tokens_out, cost,
                                                          (EventKind.LOG, payload), tokens_cached=usage.cache_read)
        else:  # refused before any token was spent: not a step, as for the built-in agent
            event = await self.store.append_event_async(attempt_id, EventKind.LOG, payload)
        self.events.publish(event)
        self._count(model, agent_label(agent), usage, cost, seconds, error is None)

    def _count(self, model: str, agent: str, usage: Usage, cost: float | None, seconds: float, ok: bool) -> None:
        m = self.metrics
        if m is None:
            return
        m.model_calls.labels(model, "ok" if ok else "error", agent).inc()
        m.model_latency.labels(model, agent).observe(seconds)
        for direction, count in (("input", usage.tokens_in), ("output", usage.tokens_out),
                                 ("cache_read", usage.cache_read), ("cache_write", usage.cache_write)):
            if count or direction in ("input", "output"):
                m.tokens.labels(model, direction, agent).inc(count)
        if ok and cost is None:
            m.unpriced_calls.labels(model, agent).inc()
        elif cost is not None:
            m.cost.labels(model, agent).inc(cost)


def cost_of(litellm: Any, model: str, usage: Usage, prices: Prices) -> float | None:
    """The call's cost from litellm's price map (cache reads/writes at their own prices), or None."""
    def price() -> float:
        prompt, completion = litellm.cost_per_token(
            model=model, prompt_tokens=usage.tokens_in, completion_tokens=usage.tokens_out,
            cache_read_input_tokens=usage.cache_read, cache_creation_input_tokens=usage.cache_write)
        return float(prompt) + float(completion)
    return prices.cost(litellm, model, price)
