"""The `scripted/…` litellm provider: plays a script through litellm's custom-provider hook.

The step to play is the number of assistant turns already in the conversation, so
a conversation restored after a crash continues exactly where it stopped. Imported
only in the daemon's litellm-loading thread (it subclasses litellm's CustomLLM).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM

from kilod.agent import scripts


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _fill(value: Any, fields: dict[str, str]) -> Any:
    """Replace {{name}} in a step's strings: lets a script show what it was told."""
    if isinstance(value, str):
        for name, text in fields.items():
            value = value.replace("{{" + name + "}}", text)
        return value
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    return value


class ScriptedLLM(CustomLLM):  # type: ignore[misc]
    def __init__(self, scripts_dir: Path | None) -> None:
        super().__init__()
        self.scripts_dir = scripts_dir

    def step_for(self, model: str, messages: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """(turn, step): the step to play is the number of assistant turns so far."""
        steps = scripts.load(model.split("/", 1)[-1], self.scripts_dir)["steps"]
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        return turn, (steps[turn] if turn < len(steps) else {"say": "The script has no more steps."})

    def reply(self, model: str, messages: list[dict[str, Any]], turn: int, step: dict[str, Any]
              ) -> litellm.ModelResponse:
        last_user = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
        step = _fill(step, {"last_user": last_user, "message_count": str(len(messages)),
                            "roles": " ".join(str(m.get("role")) for m in messages)})
        tool_calls = [
            {
                "id": f"call_{turn}_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
            }
            for i, call in enumerate(step.get("tools", []))
        ]
        message: dict[str, Any] = {"role": "assistant", "content": step.get("say")}
        if tool_calls:
            message["tool_calls"] = tool_calls
        usage = step.get("usage") or {
            "prompt_tokens": _estimate_tokens(json.dumps(messages)),
            "completion_tokens": _estimate_tokens(json.dumps(message)),
        }
        usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
        return litellm.ModelResponse(
            model=model,
            choices=[{"index": 0, "finish_reason": "tool_calls" if tool_calls else "stop", "message": message}],
            usage=usage,
        )

    async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any,
                          **kwargs: Any) -> litellm.ModelResponse:
        turn, step = self.step_for(model, messages)
        delay = float(step.get("delay", 0))
        if delay:
            await asyncio.sleep(delay)
        return self.reply(model, messages, turn, step)

    def completion(self, model: str, messages: list[dict[str, Any]], *args: Any,
                   **kwargs: Any) -> litellm.ModelResponse:
        return self.reply(model, messages, *self.step_for(model, messages))

    # Streaming (the model gateway passes agents' `stream: true` through): the same reply,
    # as litellm's generic chunks: the text, then one chunk per tool call, then usage.
    async def astreaming(self, model: str, messages: list[dict[str, Any]], *args: Any,  # type: ignore[override]
                         **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        turn, step = self.step_for(model, messages)
        delay = float(step.get("delay", 0))
        if delay:
            await asyncio.sleep(delay)
        for chunk in _chunks(self.reply(model, messages, turn, step)):
            yield chunk

    def streaming(self, model: str, messages: list[dict[str, Any]], *args: Any,  # type: ignore[override]
                  **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from _chunks(self.reply(model, messages, *self.step_for(model, messages)))


def _chunks(response: litellm.ModelResponse) -> Iterator[dict[str, Any]]:
    """A whole reply as litellm GenericStreamingChunk dicts."""
    choice = response.choices[0]
    calls = choice.message.tool_calls or []
    usage = response.usage
    done = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}
    if choice.message.content:
        yield {"text": choice.message.content, "tool_use": None, "is_finished": False,
               "finish_reason": "", "usage": None, "index": 0}
    for i, call in enumerate(calls):
        yield {"text": "", "is_finished": False, "finish_reason": "", "usage": None, "index": 0,
               "tool_use": {"id": call.id, "type": "function", "index": i,
                            "function": {"name": call.function.name, "arguments": call.function.arguments}}}
    yield {"text": "", "tool_use": None, "is_finished": True, "finish_reason": choice.finish_reason,
           "usage": done, "index": 0}


def make_provider(scripts_dir: Path | None) -> ScriptedLLM:
    return ScriptedLLM(scripts_dir)
