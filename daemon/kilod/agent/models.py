"""Model calls through litellm, which is imported once, in a thread, at daemon start.

litellm takes seconds to import; the daemon answers requests meanwhile and only a
model call or a model-name check waits for it. Its first completion imports more
(its proxy types), so the loading thread also makes one mocked call. Every call then
runs on litellm's own event loop in its own thread: building a request, parsing the
answer and pricing it take milliseconds of CPU per call, which must not stall the
daemon's loop while 20 agents talk to their models. Prices come from litellm's bundled
map (LITELLM_LOCAL_MODEL_COST_MAP): offline and reproducible.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kilod.agent import scripts
from kilod.errors import Invalid, ModelError, Unavailable
from kilod.metrics import Metrics

log = logging.getLogger(__name__)
SCRIPTED = "scripted"


@dataclass(frozen=True)
class Completion:
    message: dict[str, Any]
    tokens_in: int
    tokens_out: int
    cost_usd: float | None   # None when the model has no known price


class Models:
    def __init__(self, scripts_dir: Path | None, timeout: float, metrics: Metrics | None = None) -> None:
        self._scripts_dir = scripts_dir
        self._timeout = timeout
        self._metrics = metrics
        self._loading: asyncio.Task[Any] | None = None
        self._calls_loop: asyncio.AbstractEventLoop | None = None  # litellm's loop, in its own thread

    def start_loading(self) -> None:
        if self._loading is None:
            self._loading = asyncio.create_task(asyncio.to_thread(self._import))

    @property
    def ready(self) -> bool:
        return self._loading is not None and self._loading.done() and self._loading.exception() is None

    def _import(self) -> Any:  # the litellm module: untyped, so Any
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        litellm: Any = importlib.import_module("litellm")
        litellm.suppress_debug_info = True
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        from kilod.agent.scripted import make_provider

        litellm.custom_provider_map = [
            {"provider": SCRIPTED, "custom_handler": make_provider(self._scripts_dir)}
        ]
        # a script may declare a price, so cost accounting runs through litellm's own pricing path
        for name in scripts.known(self._scripts_dir):
            price = scripts.load(name, self._scripts_dir).get("price")
            if isinstance(price, dict):
                litellm.register_model({f"{SCRIPTED}/{name}": {**price, "litellm_provider": SCRIPTED, "mode": "chat"}})
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="kilod-litellm", daemon=True).start()
        # the first completion imports litellm's proxy types (seconds on a busy machine): pay it here
        try:
            asyncio.run_coroutine_threadsafe(litellm.acompletion(
                model="openai/kilod-warm-up", messages=[{"role": "user", "content": "warm up"}],
                mock_response="warm"), loop).result()
        except Exception:  # only a warm-up: the first real call pays instead
            log.warning("litellm's warm-up call failed", exc_info=True)
        self._calls_loop = loop
        log.info("litellm %s ready", importlib.metadata.version("litellm"))
        return litellm

    async def litellm(self) -> Any:
        self.start_loading()
        assert self._loading is not None
        try:
            return await asyncio.shield(self._loading)
        except Exception as exc:
            raise Unavailable(f"litellm could not be loaded: {exc}") from exc

    async def validate(self, model: str) -> None:
        """Invalid unless `model` names a provider litellm knows (or an existing script)."""
        if not model or model != model.strip() or len(model) > 200:
            raise Invalid(f"bad model name '{model}'", field="models")
        provider, _, name = model.partition("/")
        if provider == SCRIPTED:
            scripts.load(name, self._scripts_dir)  # raises Invalid naming the known scripts
            return
        litellm = await self.litellm()
        try:
            litellm.get_llm_provider(model)
        except Exception:
            raise Invalid(
                f"unknown model provider in '{model}': use litellm's provider/model form, "
                "e.g. anthropic/claude-sonnet-4-5, openai/gpt-4o, ollama/llama3",
                field="models",
            ) from None

    async def complete(self, model: str, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]]) -> Completion:
        litellm = await self.litellm()
        assert self._calls_loop is not None
        started = time.monotonic()
        try:
            response, cost = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                self._call(litellm, model, messages, tools), self._calls_loop))
        except Exception as exc:
            if self._metrics:
                self._metrics.model_calls.labels(model, "error", "builtin").inc()
                self._metrics.model_latency.labels(model, "builtin").observe(time.monotonic() - started)
            raise ModelError(f"model call to {model} failed: {type(exc).__name__}: {exc}") from exc
        choice = response.choices[0].message
        message: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments or "{}"},
                }
                for call in choice.tool_calls
            ]
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        if self._metrics:
            m = self._metrics
            m.model_calls.labels(model, "ok", "builtin").inc()
            m.model_latency.labels(model, "builtin").observe(time.monotonic() - started)
            m.tokens.labels(model, "input", "builtin").inc(tokens_in)
            m.tokens.labels(model, "output", "builtin").inc(tokens_out)
            if cost is None:
                m.unpriced_calls.labels(model, "builtin").inc()
            else:
                m.cost.labels(model, "builtin").inc(cost)
        return Completion(message, tokens_in, tokens_out, cost)

    async def _call(self, litellm: Any, model: str, messages: list[dict[str, Any]],
                    tools: list[dict[str, Any]]) -> tuple[Any, float | None]:
        """On litellm's loop: the call and its price (both CPU work the daemon's loop should not do)."""
        response = await litellm.acompletion(
            model=model, messages=messages, tools=tools, timeout=self._timeout, num_retries=2
        )
        return response, self._cost(litellm, response, model)

    @staticmethod
    def _cost(litellm: Any, response: Any, model: str) -> float | None:
        try:
            cost = litellm.completion_cost(completion_response=response, model=model)
        except Exception:
            return None
        return float(cost) if cost is not None else None
