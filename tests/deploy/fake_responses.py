"""A local OpenAI-compatible model speaking the Responses API (what litellm sends a `hosted_vllm/…`
model for Codex's requests), streamed (SSE) and not, scripted like a two-turn agent:

1. no tool output yet: a `function_call` of Codex's own `exec_command` tool, writing the file the
   prompt names ("… write NAME …") with `CONTENT` and printing `MARKER` (a NAME starting with
   "slow" sleeps `SLOW_SECONDS` first: time for a test to kill the daemon mid-run);
2. once the input holds that call's output: a message, `Wrote NAME.`

It binds the address it is given (a Docker network's gateway, so containers reach it) and keeps
every request (path, headers, peer address, body) for assertions.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from tests.fake_openai import LoopbackServer

CONTENT = "hello from the dind pod"
MARKER = "checked-in-dind"
USAGE_IN, USAGE_OUT = 23, 9
SLOW_SECONDS = 15
_FILE = re.compile(r"\bwrite ([A-Za-z0-9_.-]+)")


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _texts(value: Any) -> list[str]:
    """Every string under `value` (a Responses `input`: a string, or items with content parts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        return [t for key, item in value.items() if key in ("content", "text", "input") for t in _texts(item)]
    return []


def file_named(body: dict[str, Any]) -> str:
    user = [item for item in body.get("input") or [] if isinstance(item, dict) and item.get("role") == "user"]
    for text in reversed(_texts(user) or _texts(body.get("input"))):
        found = _FILE.search(text)
        if found:
            return found.group(1)
    return "dind.txt"


class FakeResponses(LoopbackServer):
    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self.responses)

    def output_of(self, body: dict[str, Any]) -> dict[str, Any]:
        name = file_named(body)
        given = body.get("input")
        items: list[Any] = given if isinstance(given, list) else []
        if not any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items):
            command = f"printf '{CONTENT}\\n' > /workspace/{name} && cat /workspace/{name} && echo {MARKER}"
            if name.startswith("slow"):
                command = f"sleep {SLOW_SECONDS} && {command}"
            return {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command",
                    # Codex answers after yield_time_ms with the command still running: wait for it
                    "arguments": json.dumps({"cmd": command, "workdir": "/workspace", "yield_time_ms": 60_000}),
                    "status": "completed"}
        return {"type": "message", "id": "msg_2", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": f"Wrote {name}.", "annotations": []}]}

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body,
                              "peer": peer[0] if peer else None})
        item = self.output_of(body)
        usage = {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT,
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        done = {"id": f"resp_{len(self.requests)}", "object": "response", "created_at": int(time.time()),
                "status": "completed", "model": body.get("model", ""), "output": [item], "usage": usage,
                "parallel_tool_calls": False, "tool_choice": "auto", "tools": [], "error": None,
                "incomplete_details": None}
        if not body.get("stream"):
            return web.json_response(done)
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        events: list[dict[str, Any]] = [{"type": "response.created", "response": started},
                                        {"type": "response.in_progress", "response": started}]
        if item["type"] == "function_call":
            events += [
                {"type": "response.output_item.added", "output_index": 0,
                 "item": {**item, "arguments": "", "status": "in_progress"}},
                {"type": "response.function_call_arguments.delta", "item_id": item["id"], "output_index": 0,
                 "delta": item["arguments"]},
                {"type": "response.function_call_arguments.done", "item_id": item["id"], "output_index": 0,
                 "arguments": item["arguments"]},
            ]
        else:
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": text, "annotations": []}
            where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            events += [
                {"type": "response.output_item.added", "output_index": 0,
                 "item": {**item, "status": "in_progress", "content": []}},
                {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
                {"type": "response.output_text.delta", **where, "delta": text},
                {"type": "response.output_text.done", **where, "text": text},
                {"type": "response.content_part.done", **where, "part": part},
            ]
        events += [{"type": "response.output_item.done", "output_index": 0, "item": item},
                   {"type": "response.completed", "response": done}]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for number, event in enumerate(events):
            await response.write(_sse({**event, "sequence_number": number}))
        await response.write_eof()
        return response
