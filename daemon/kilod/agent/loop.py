"""The agent loop: ask the model, run its tool calls in the sandbox, store, repeat.

The conversation is stored after every step, so a restarted daemon resumes an
attempt exactly where it stopped: tool calls the model made before the crash but
whose results were never stored are run on resume, then the loop carries on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kilod.agent.models import Models
from kilod.agent.tools import FINISH, TOOL_SCHEMAS, ToolRunner, truncate
from kilod.domain import EventKind
from kilod.lifecycle import Lifecycle

SYSTEM_PROMPT = """\
You are a coding agent. The repository is checked out at /workspace (a git worktree on its
own branch) inside a sandbox container; every tool you call runs there. Read before you
change, keep the change focused on the task, and run the project's tests when there are any.
Do not commit: a person reviews your diff and commits it. When the task is done, call
`finish` with a short summary of what you changed and why."""

EVENT_OUTPUT_LIMIT = 4000


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


@dataclass(frozen=True)
class AgentResult:
    summary: str
    stopped_early: str | None = None   # why the loop stopped before the model finished


def pending_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant turn that have no stored result yet."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            answered = {m.get("tool_call_id") for m in messages[index + 1:] if m.get("role") == "tool"}
            calls = messages[index].get("tool_calls") or []
            return [c for c in calls if c["id"] not in answered]
    return []


def finish_summary(messages: list[dict[str, Any]]) -> str | None:
    """The summary if the last assistant turn called `finish` and its result is stored.

    A person's message after it (a follow-up) means the work is not finished.
    """
    if messages and messages[-1].get("role") == "user":
        return None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                if call["function"]["name"] == FINISH and not pending_tool_calls(messages):
                    try:
                        return str(json.loads(call["function"]["arguments"] or "{}").get("summary", ""))
                    except (ValueError, AttributeError):
                        return ""
            return None
    return None


class AgentRun:
    def __init__(self, attempt_id: str, model: str, prompt: str, lifecycle: Lifecycle, models: Models,
                 tools: ToolRunner, step_limit: int, budget: Budget | None = None) -> None:
        self.attempt_id = attempt_id
        self.model = model
        self.prompt = prompt
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.models = models
        self.tools = tools
        self.step_limit = step_limit
        self.budget = budget or Budget()

    async def run(self) -> AgentResult:
        messages = self.store.conversation(self.attempt_id)
        if not messages:
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": self.prompt},
            ]
            await self.store.append_messages_async(self.attempt_id, 0, messages)
        else:
            await self.lifecycle.record_async(self.attempt_id, EventKind.LOG,
                                  {"message": f"resuming the conversation at message {len(messages)}"})
        while True:
            pending = pending_tool_calls(messages)
            if pending:
                await self._run_tools(messages, pending)
                continue
            summary = finish_summary(messages)
            if summary is not None:
                return AgentResult(summary)
            last = messages[-1]
            if last.get("role") == "assistant" and not last.get("tool_calls"):
                # the model answered in prose without calling finish: that is its summary
                return AgentResult(str(last.get("content") or ""))
            if self._steps(messages) >= self.step_limit:
                return AgentResult("", stopped_early=f"step limit of {self.step_limit} model calls reached")
            attempt = self.store.get_attempt(self.attempt_id)
            over = self.budget.exceeded(attempt.tokens_in + attempt.tokens_out, attempt.cost_usd)
            if over:
                return AgentResult("", stopped_early=over)
            await self._ask_model(messages)

    @staticmethod
    def _steps(messages: list[dict[str, Any]]) -> int:
        """Model calls since the person last spoke: each follow-up gets the full step budget."""
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
        return sum(1 for m in messages[last_user:] if m.get("role") == "assistant")

    async def _ask_model(self, messages: list[dict[str, Any]]) -> None:
        completion = await self.models.complete(self.model, messages, TOOL_SCHEMAS)
        attempt = self.store.get_attempt(self.attempt_id)
        cost = attempt.cost_usd
        if completion.cost_usd is not None:
            cost = (cost or 0.0) + completion.cost_usd
        await self.store.append_messages_async(
            self.attempt_id, len(messages), [completion.message],
            steps=attempt.steps + 1,
            tokens_in=attempt.tokens_in + completion.tokens_in,
            tokens_out=attempt.tokens_out + completion.tokens_out,
            cost_usd=cost,
        )
        messages.append(completion.message)
        await self.lifecycle.record_async(self.attempt_id, EventKind.MESSAGE, {
            "role": "assistant",
            "content": completion.message.get("content"),
            "step": attempt.steps + 1,
            "tokens_in": completion.tokens_in,
            "tokens_out": completion.tokens_out,
            "cost_usd": completion.cost_usd,
        })
        for call in completion.message.get("tool_calls") or []:
            await self.lifecycle.record_async(self.attempt_id, EventKind.TOOL_CALL, {
                "id": call["id"],
                "name": call["function"]["name"],
                "arguments": truncate(call["function"]["arguments"], EVENT_OUTPUT_LIMIT),
            })

    async def _run_tools(self, messages: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
        for call in calls:
            name = call["function"]["name"]
            outcome = await self.tools.run(name, call["function"]["arguments"])
            result = {"role": "tool", "tool_call_id": call["id"], "name": name, "content": outcome.output}
            attempt = self.store.get_attempt(self.attempt_id)
            await self.store.append_messages_async(self.attempt_id, len(messages), [result],
                                                   tool_calls=attempt.tool_calls + 1)
            messages.append(result)
            await self.lifecycle.record_async(self.attempt_id, EventKind.TOOL_RESULT, {
                "id": call["id"],
                "name": name,
                "ok": outcome.ok,
                "output": truncate(outcome.output, EVENT_OUTPUT_LIMIT),
            })
