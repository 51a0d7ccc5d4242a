"""One agent request through litellm, in the agent's own wire format, streamed as it arrives.

    Anthropic Messages  → litellm.anthropic_messages   (native for anthropic/…, otherwise litellm's
                                                        adapter: Chat Completions, or the Responses
                                                        API for openai/… models)
    Chat Completions    → litellm.acompletion
    Responses           → litellm.aresponses           (native where the provider has it, otherwise
                                                        bridged to Chat Completions, e.g. scripted/…)

A streamed answer becomes server-sent-event bytes; the first event is awaited before the
answer starts, so a failure of the call itself still gets its own status code.

litellm 1.110's streaming of a provider's *native* Messages API (anthropic/…) and its
Messages→Responses stream adapter import its proxy package, which needs fastapi and a dozen
more packages kilod does not install. So (`prepare`) Messages for openai/… go through the
Chat Completions adapter, and a streamed Messages call to a native provider is made whole
and replayed as a stream when that module cannot load: the agent gets its stream either way.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kilod.gateway.wire import StreamUsage, Wire, anthropic_stream_of, sse

log = logging.getLogger(__name__)
NATIVE_STREAMING = "litellm.llms.anthropic.messages.native.streaming_iterator"

# The request fields each API defines: only these pass to litellm. litellm also takes keyword
# arguments that redirect a call or change its accounting (api_base, api_key, extra_headers,
# input_cost_per_token, mock_response, fallbacks, …): an agent must never reach those.
_COMMON = frozenset({"messages", "stream", "temperature", "top_p", "tools", "tool_choice", "metadata",
                     "service_tier", "user", "stop"})
ALLOWED: dict[Wire, frozenset[str]] = {
    Wire.ANTHROPIC: _COMMON | {"max_tokens", "system", "stop_sequences", "top_k", "thinking", "container",
                               "mcp_servers", "context_management", "output_format", "output_config"},
    Wire.CHAT: _COMMON | {"frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
                          "max_tokens", "max_completion_tokens", "n", "response_format", "seed", "stream_options",
                          "parallel_tool_calls", "reasoning_effort", "modalities", "audio", "prediction", "store",
                          "verbosity", "web_search_options", "functions", "function_call", "prompt_cache_key",
                          "safety_identifier", "thinking"},
    Wire.RESPONSES: (_COMMON - {"messages", "stop"}) | {
        "input", "instructions", "max_output_tokens", "parallel_tool_calls", "previous_response_id", "reasoning",
        "store", "text", "truncation", "include", "prompt_cache_key", "max_tool_calls", "safety_identifier",
        "top_logprobs", "conversation", "prompt", "stream_options", "background"},
}


@dataclass(frozen=True)
class Answer:
    """A whole JSON body, or (streaming) SSE bytes as they come."""

    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None


def to_json(value: Any) -> dict[str, Any]:
    """litellm answers with dicts, TypedDicts or pydantic models: one JSON-shaped dict."""
    if isinstance(value, dict):
        return json.loads(json.dumps(value, default=_default))  # type: ignore[no-any-return]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True, warnings=False)  # type: ignore[no-any-return]
    raise TypeError(f"unexpected answer from litellm: {type(value).__name__}")


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True, warnings=False)
    return str(value)


def request_kwargs(wire: Wire, body: dict[str, Any], model: str, timeout: float) -> dict[str, Any]:
    """litellm's keyword arguments: the API's own fields from `body`, then what the gateway decides."""
    dropped = sorted(k for k in body if k not in ALLOWED[wire] and k != "model")
    if dropped:
        log.debug("gateway: dropped request fields %s", dropped)
    kwargs = {k: v for k, v in body.items() if k in ALLOWED[wire]}
    kwargs.update(model=model, timeout=timeout, num_retries=0)  # the agent retries, seeing our status
    if wire == Wire.CHAT and kwargs.get("stream"):
        # usage arrives in the last chunk only when asked for: the meter always needs it
        kwargs["stream_options"] = {**(kwargs.get("stream_options") or {}), "include_usage": True}
    # a parameter this provider lacks is dropped, not a 400 (Claude Code's `thinking` becomes
    # `reasoning_effort`, which many models do not take)
    kwargs["drop_params"] = True
    return kwargs


def prepare(litellm: Any) -> bool:
    """Set litellm up for the gateway (once); True when native Messages streaming can load."""
    litellm.use_chat_completions_url_for_anthropic_messages = True
    try:
        importlib.import_module(NATIVE_STREAMING)
    except ImportError as exc:
        log.warning("litellm cannot stream native Messages APIs here (%s): such streams are sent whole", exc)
        return False
    return True


@functools.lru_cache(maxsize=256)
def is_native_messages(model: str) -> bool:
    """Whether litellm sends Messages for `model` to the provider's own Messages API.

    Remembered per model (0.15 ms of litellm's routing each time, on the way to an agent's first byte).
    """
    try:
        from litellm.messages.dispatch import messages_target
        from litellm.rust_bridge.catalog import Target
    except ImportError:
        return False
    try:
        return bool(messages_target(model, None, None, None) == Target.MESSAGES)
    except Exception:
        return False


async def call(litellm: Any, wire: Wire, kwargs: dict[str, Any], usage: StreamUsage,
               usage_wanted: bool = True, native_streaming: bool = True) -> Answer:
    """Make the call; raises whatever litellm raises (mapped by the caller, once).

    A stream's usage is fed to `usage` as its events pass (before anything is trimmed for the agent).
    """
    stream = bool(kwargs.get("stream"))
    if wire == Wire.ANTHROPIC and stream and not native_streaming and is_native_messages(kwargs["model"]):
        whole = to_json(await litellm.anthropic_messages(**{**kwargs, "stream": False}))
        replayed = anthropic_stream_of(whole)
        for event in replayed:
            usage.feed_bytes(event)
        return Answer(stream=_replay(replayed))
    if wire == Wire.ANTHROPIC:
        result = await litellm.anthropic_messages(**kwargs)
    elif wire == Wire.CHAT:
        result = await litellm.acompletion(**kwargs)
    else:
        result = await litellm.aresponses(**kwargs)
    if not stream:
        return Answer(body=to_json(result))
    events = _encode(wire, result, usage, usage_wanted)
    first = await anext(events, None)   # a failure before the first event is still a status code
    return Answer(stream=_prepend(first, events))


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


async def _prepend(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


async def _encode(wire: Wire, result: Any, usage: StreamUsage, usage_wanted: bool) -> AsyncIterator[bytes]:
    if wire == Wire.ANTHROPIC:
        async for item in result:
            if isinstance(item, (bytes, str)):
                raw = item if isinstance(item, bytes) else item.encode()
                usage.feed_bytes(raw)
                yield raw
            else:
                event = to_json(item)
                usage.feed(event)
                yield sse(event, str(event.get("type") or "message"))
        return
    if wire == Wire.CHAT:
        async for chunk in result:
            data = to_json(chunk)
            usage.feed(data)
            if not usage_wanted:   # the agent did not ask for usage: keep the stream as it expects it
                data.pop("usage", None)
                if not data.get("choices"):
                    continue
            yield sse(data)
        yield b"data: [DONE]\n\n"
        return
    async for event in result:
        data = to_json(event)
        usage.feed(data)
        yield sse(data, str(data.get("type") or "message"))
