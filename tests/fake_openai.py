"""A local OpenAI-compatible chat completions server, so litellm's real HTTP client path runs.

By default it plays a two-turn agent: first a `write_file` tool call, then (once it has
seen the tool's result) a `finish` call. A test may queue `failures` (status, headers)
answered first, one per request, and pass its own `reply(body) -> response JSON`.
Every request it receives is kept for assertions.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def tool_call_response(model: str, turn: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{turn}",
        "object": "chat.completion",
        "created": 1_700_000_000 + turn,
        "model": model,
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{
                    "id": f"call_{turn}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }],
            },
        }],
        "usage": USAGE,
    }


Reply = Callable[[dict[str, Any]], dict[str, Any]]


def text_response(model: str, turn: int, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{turn}", "object": "chat.completion", "created": 1_700_000_000 + turn, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": USAGE,
    }


class LoopbackServer:
    """An aiohttp app on 127.0.0.1 (a free port) in its own thread, for `with`: subclasses add their routes.

    `host` binds another local address instead (e.g. a Docker network's gateway, for containers).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0)
        self._loop.run_until_complete(site.start())
        server: Any = site._server  # aiohttp keeps the listening server private
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class FakeOpenAI(LoopbackServer):
    def __init__(self, failures: list[tuple[int, dict[str, str]]] | None = None,
                 reply: Reply | None = None) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.failures = list(failures or [])
        self.reply = reply

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.failures:
            status, headers = self.failures.pop(0)
            return web.json_response({"error": {"message": f"fake failure {status}", "type": "fake"}},
                                     status=status, headers=headers)
        if self.reply is not None:
            return web.json_response(self.reply(body))
        model = body.get("model", "")
        tool_results = [m for m in body["messages"] if m.get("role") == "tool"]
        if not tool_results:
            return web.json_response(tool_call_response(model, 1, "write_file", {
                "path": "from-http.txt", "content": "written through litellm's HTTP path\n",
            }))
        return web.json_response(tool_call_response(model, 2, "finish", {
            "summary": f"wrote the file; the tool said: {tool_results[-1]['content']}",
        }))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.completions)
