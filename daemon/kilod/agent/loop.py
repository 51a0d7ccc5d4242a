"""The agent loop: ask the model, run its tool calls in the sandbox, store, repeat.

The conversation is stored after every step, so a restarted daemon resumes an
attempt exactly where it stopped: a tool call is stored as started before it runs, so
one that started before a crash is never run again (the model is told how it ended);
calls never started run on resume. On a full disk each of these writes waits for space
(`persist_async`) holding what it has, so a tool call is never re-run for want of a write.
Every write goes through the store's group commit (`…_async`): twenty agents share an
fsync, and the event loop (which serves the API) never waits for one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from kilod.agent.caching import PrefixMeter, with_cache_marks
from kilod.agent.context import (
    ContextPolicy,
    ContextView,
    compaction_from_event,
    summary_request,
)
from kilod.agent.conversation import (
    call_problem,
    finish_summary,
    last_person_index,
    pending_tool_calls,
    prose_summary,
    raw_arguments,
    reminded,
    reminder_message,
    repair_tool_calls,
    sendable,
)
from kilod.agent.early import EarlyCall
from kilod.agent.models import Completion, ModelError, Models
from kilod.agent.prompt import Environment, system_prompt
from kilod.agent.tools import TOOL_SCHEMAS, ToolOutcome, ToolRunner, truncate
from kilod.diskspace import persist_async
from kilod.domain import Attempt, EventKind
from kilod.lifecycle import Lifecycle

SYSTEM_PROMPT = system_prompt()   # with kilod's default environment (tests and bare runs)

EVENT_OUTPUT_LIMIT = 4000
TOOLS_BYTES = len(json.dumps(TOOL_SCHEMAS, ensure_ascii=False).encode())   # sent with every call
DEFAULT_CONTEXT_WINDOW = 128_000   # input tokens of a model litellm's map does not know


@dataclass(frozen=True)
class Budget:
    """Optional per-card limits; an attempt that reaches one stops and waits in Review."""

    tokens: int | None = None
    cost_usd: float | None = None

    def exceeded(self, tokens: int, cost_usd: float | None) -> str | None:
        if self.tokens is not None and tokens >= self.tokens:
            return f"token budget of {self.tokens} reached ({tokens} used)"
        if self.cost_usd is not None and cost_usd is not None and cost_usd >= self.cost_usd:
            return f"cost budget of ${self.cost_usd:g} reached (${cost_usd:.6g} used)"
        return None


def opening(prompt: str, environment: Environment | None) -> list[dict[str, Any]]:
    """A fresh conversation: the system prompt and the task."""
    return [{"role": "system", "content": system_prompt(environment) if environment else SYSTEM_PROMPT},
            {"role": "user", "content": prompt}]


def first_request(model: str, prompt: str, environment: Environment | None) -> list[dict[str, Any]]:
    """What a fresh conversation's first call sends (the view of `opening`, with cache marks)."""
    return with_cache_marks(model, [sendable(m) for m in opening(prompt, environment)])


async def _never_paused() -> bool:
    return False


@dataclass(frozen=True)
class AgentResult:
    summary: str
    stopped_early: str | None = None   # why the loop stopped before the model finished
    paused: bool = False               # stopped because a person asked; resumes like a follow-up


class AgentRun:
    def __init__(self, attempt_id: str, model: str, prompt: str, lifecycle: Lifecycle, models: Models,
                 tools: ToolRunner, step_limit: int, budget: Budget | None = None, *,
                 context_window: int = DEFAULT_CONTEXT_WINDOW, manage_context: bool = True,
                 context_policy: ContextPolicy | None = None, environment: Environment | None = None,
                 pause_requested: Callable[[], Awaitable[bool]] | None = None,
                 early: EarlyCall | None = None) -> None:
        self.attempt_id = attempt_id
        self.model = model
        self.prompt = prompt
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.models = models
        self.tools = tools
        self.step_limit = step_limit
        self.budget = budget or Budget()
        self.default_window = context_window
        self.manage_context = manage_context
        self.context_policy = context_policy
        self.environment = environment
        # read between steps (a running tool call always completes); a store read, so off the event loop
        self.pause_requested = pause_requested or _never_paused
        self.early = early   # the first call, sent while the container started (kilod.agent.early)
        self.context: ContextView | None = None
        self.prefix = PrefixMeter()
        self._started_ids: set[str] = set()
        self._started_loaded = False
        self._counted: Attempt | None = None   # the attempt's counters as this run last wrote them

    async def _context(self) -> ContextView:
        """The view builder, with the last stored summary (a restart does not summarise again)."""
        if self.context is None:
            compaction = None
            for event in self.store.events_of(self.attempt_id):
                if event.kind == EventKind.LOG:
                    compaction = compaction_from_event(event.payload) or compaction
            window = await self.models.window(self.model, self.default_window)
            self.context = ContextView(window, self._count, self._summarize, self.context_policy, compaction,
                                       fixed_bytes=TOOLS_BYTES)
        return self.context

    async def _count(self, view: list[dict[str, Any]]) -> int:
        return await self.models.count_tokens(self.model, view, TOOL_SCHEMAS)

    async def _summarize(self, older: list[dict[str, Any]]) -> str:
        window = self.context.window if self.context is not None else self.default_window
        completion = await self.models.complete(self.model, summary_request(older, window), None, self._waiting)
        # a summary is paid for like any call
        counters = self._account(completion)
        await self.store.update_attempt_async(self.attempt_id, None, **counters)
        self._written(counters)
        return str(completion.message.get("content") or "").strip() or "(the model gave no summary)"

    def _account(self, completion: Completion, **fields: Any) -> dict[str, Any]:
        """The attempt's counters after this completion (for the caller to write, with its message if any)."""
        attempt = self._counters()
        cost = attempt.cost_usd
        if completion.cost_usd is not None:
            cost = (cost or 0.0) + completion.cost_usd
        counters = {"tokens_in": attempt.tokens_in + completion.tokens_in,
                    "tokens_out": attempt.tokens_out + completion.tokens_out,
                    "tokens_cached": attempt.tokens_cached + completion.tokens_cached, "cost_usd": cost, **fields}
        return counters

    def _counters(self) -> Attempt:
        """The attempt with its counters (tokens, cost, steps, tool calls) as this run last wrote them.

        Only this loop changes them while it runs, so they are read from the store once per
        run, not before every step: under load each read on the event loop's thread waits
        for the GIL behind the worker threads, and the API waits with it.
        """
        if self._counted is None:
            self._counted = self.store.get_attempt(self.attempt_id)
        return self._counted

    def _written(self, counters: dict[str, Any]) -> None:
        """Counters this run has just stored."""
        self._counted = dataclasses.replace(self._counters(), **counters)

    async def _view(self, messages: list[dict[str, Any]], force: bool) -> list[dict[str, Any]]:
        if not self.manage_context:
            return [sendable(m) for m in messages]
        context = await self._context()
        before = context.compaction
        view, notes = await context.view(messages, force)
        summarised = context.compaction if context.compaction != before else None
        for note in notes:
            payload: dict[str, Any] = {"message": f"context: {note}"}
            if summarised is not None and note.startswith("summarised"):
                # stored with the event: a restarted run sends the same summary without asking again
                payload["compaction"] = {"upto": summarised.upto, "turns": summarised.turns,
                                         "summary": summarised.summary}
            await self.lifecycle.record_async(self.attempt_id, EventKind.LOG, payload)
        return view

    async def run(self) -> AgentResult:
        try:
            return await self._run()
        finally:
            if self.early is not None:   # not taken (paused, over budget, …): stop it
                await self.early.drop()

    async def _run(self) -> AgentResult:
        messages = self.store.conversation(self.attempt_id)
        if not messages:
            messages = opening(self.prompt, self.environment)
            await self.store.append_messages_async(self.attempt_id, 0, messages)
        else:
            await self.lifecycle.record_async(self.attempt_id, EventKind.LOG,
                                              {"message": f"resuming the conversation at message {len(messages)}"})
        while True:
            if await self.pause_requested():
                await self.lifecycle.record_async(self.attempt_id, EventKind.LOG, {"message": "paused by a person"})
                return AgentResult("", paused=True)
            pending = pending_tool_calls(messages)
            if pending:
                await self._run_tools(messages, pending)
                continue
            summary = finish_summary(messages)
            if summary is not None:
                return AgentResult(summary)
            last = messages[-1]
            if last.get("role") == "assistant" and not last.get("tool_calls"):
                # prose without `finish`: once it is reminded; a second time, that prose is its answer
                if reminded(messages) or self._steps(messages) >= self.step_limit:
                    return AgentResult(prose_summary(messages))
                reminder = reminder_message()
                await self.store.append_messages_async(self.attempt_id, len(messages), [reminder])
                messages.append(reminder)
                await self.lifecycle.record_async(self.attempt_id, EventKind.LOG, {
                    "message": "the model answered without calling finish: reminded once"})
                continue
            if self._steps(messages) >= self.step_limit:
                return AgentResult("", stopped_early=f"step limit of {self.step_limit} model calls reached")
            attempt = self._counters()
            over = self.budget.exceeded(attempt.tokens_in + attempt.tokens_out, attempt.cost_usd)
            if over:
                return AgentResult("", stopped_early=over)
            try:
                await self._ask_model(messages)
            except ModelError as error:
                # the conversation and the worktree stay: the attempt waits in Review, a follow-up continues
                await self.lifecycle.record_async(self.attempt_id, EventKind.LOG, {
                    "message": f"model error: {error.message}", "model_error": error.message,
                    "retryable": error.retryable, "upstream_status": error.upstream_status})
                return AgentResult("", stopped_early=f"model error: {error.message}")

    async def _waiting(self, seconds: float, reason: str, failures: int) -> None:
        await self.lifecycle.record_async(self.attempt_id, EventKind.LOG, {
            "message": f"model call failed (try {failures}); retrying in {seconds:.0f}s",
            "waiting": round(seconds, 1), "reason": reason[:500], "failures": failures})

    @staticmethod
    def _steps(messages: list[dict[str, Any]]) -> int:
        """Model calls since the person last spoke: each follow-up gets the full step budget."""
        return sum(1 for m in messages[last_person_index(messages):] if m.get("role") == "assistant")

    async def _ask_model(self, messages: list[dict[str, Any]]) -> None:
        try:
            view = await self._view(messages, force=False)
            request = with_cache_marks(self.model, view)
            early, self.early = self.early, None
            answer = await early.answer(request) if early is not None else None
            completion = answer if isinstance(answer, Completion) else await self.models.complete(
                self.model, request, TOOL_SCHEMAS, self._waiting, failed=answer)
        except ModelError as error:
            if not (error.context_exceeded and self.manage_context):
                raise
            # our count was short of the provider's: compact now and try once more
            view = await self._view(messages, force=True)
            completion = await self.models.complete(self.model, with_cache_marks(self.model, view), TOOL_SCHEMAS,
                                                    self._waiting)
        cacheable = self.prefix.cacheable_share(view)
        attempt = self._counters()
        # what is stored (and re-sent) is always valid; each call is announced as sent when it starts
        message = repair_tool_calls(completion.message)
        # persist: on a full disk the reply (paid for) is kept and written once space is back
        counters = self._account(completion, steps=attempt.steps + 1)
        shown = (EventKind.MESSAGE, {
            "role": "assistant",
            "content": completion.message.get("content"),
            "step": attempt.steps + 1,
            "tokens_in": completion.tokens_in,
            "tokens_out": completion.tokens_out,
            "tokens_cached": completion.tokens_cached,
            "cacheable": round(cacheable, 3),   # share of this request repeating the previous one's start
            "cost_usd": completion.cost_usd,
        })
        # the reply, its counters and the event that shows it: one commit (one fsync per model call, not two)
        event = await persist_async(partial(self.store.append_messages_async, self.attempt_id, len(messages),
                                            [message], shown, **counters))
        self._written(counters)
        messages.append(message)
        if event is not None:
            self.lifecycle.events.publish(event)

    async def _run_tools(self, messages: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
        for call in calls:
            if await self.pause_requested():
                return   # the calls not started yet run after the resume
            name = call["function"]["name"]
            if call["id"] in self._started():
                outcome = await self._orphaned(call)
            else:
                # stored before it runs: after a crash this call is known to have started, and is not run twice
                # (persist: on a full disk the announcement waits for space, and the call runs only after it)
                await persist_async(partial(self.lifecycle.record_async, self.attempt_id, EventKind.TOOL_CALL, {
                    "id": call["id"], "name": name,
                    "arguments": truncate(raw_arguments(call), EVENT_OUTPUT_LIMIT)}))
                self._started_ids.add(call["id"])
                problem = call_problem(call)
                if problem is not None:
                    outcome = ToolOutcome(f"error: {problem}", False)
                else:
                    outcome = await self.tools.run(name, call["function"]["arguments"], call["id"])
            if outcome.todo is not None:   # the card shows the agent's plan
                done = sum(1 for t in outcome.todo if t.status == "done")
                await persist_async(partial(self.lifecycle.record_async, self.attempt_id, EventKind.LOG, {
                    "message": f"todo: {done}/{len(outcome.todo)} done", "todo": [t.to_json() for t in outcome.todo]}))
            result = {"role": "tool", "tool_call_id": call["id"], "name": name, "content": outcome.output}
            tool_calls = self._counters().tool_calls + 1
            shown = (EventKind.TOOL_RESULT, {
                "id": call["id"],
                "name": name,
                "ok": outcome.ok,
                "output": truncate(outcome.output, EVENT_OUTPUT_LIMIT),
            })
            # persist: the call ran; on a full disk its result (with its event, one transaction) waits in
            # memory and is written once there is room: the call is never run twice
            event = await persist_async(partial(self.store.append_messages_async, self.attempt_id, len(messages),
                                                [result], shown, tool_calls=tool_calls))
            self._written({"tool_calls": tool_calls})
            messages.append(result)
            if event is not None:
                self.lifecycle.events.publish(event)

    def _started(self) -> set[str]:
        """Ids of tool calls announced as started (read from the stored events once per run)."""
        if self._started_loaded is False:
            self._started_ids |= {str(e.payload.get("id")) for e in self.store.events_of(self.attempt_id, limit=10**9)
                                  if e.kind == EventKind.TOOL_CALL}
            self._started_loaded = True
        return self._started_ids

    async def _orphaned(self, call: dict[str, Any]) -> ToolOutcome:
        """A call that started before the daemon stopped and has no result: it is never run a second time."""
        name = call["function"]["name"]
        ended, output = await self.tools.orphan(call["id"]) if name == "shell" else ("unknown", "")
        known = {"killed": "it was still running after the shell timeout and has been stopped",
                 "unknown": "how it ended is not known"}
        state = known.get(ended, f"it ended with {ended.replace('exit', 'exit code')}")
        await persist_async(partial(self.lifecycle.record_async, self.attempt_id, EventKind.LOG, {
            "message": f"tool call {call['id']} ({name}) was interrupted by a daemon restart; not run again ({state})",
            "interrupted": call["id"], "ended": ended}))
        text = (f"note: the kilod daemon restarted while this call was running; {state}. It was NOT run again: "
                "its effects, if any, are in the workspace; check them before deciding to run it again.")
        if output:
            text += "\nIts output:\n" + output
        return ToolOutcome(truncate(text, self.tools.output_limit), ended == "exit 0")
