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
import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kilod.agent import scripts
from kilod.agent.prices import Prices
from kilod.agent.retry import ModelError, RetryPolicy, map_model_error
from kilod.errors import Invalid, Unavailable
from kilod.metrics import Metrics

log = logging.getLogger(__name__)
SCRIPTED = "scripted"
AGENT = "builtin"   # the `agent` label of this loop's model metrics (the gateway labels agent CLIs' calls)


@dataclass(frozen=True)
class Completion:
    message: dict[str, Any]
    tokens_in: int
    tokens_out: int
    cost_usd: float | None   # None when the model has no known price
    tokens_cached: int = 0   # input tokens the provider read from its prompt cache


# told (seconds, reason, failures so far) before each wait, so the attempt can say it is waiting
OnWait = Callable[[float, str, int], Awaitable[None]]

__all__ = ["Completion", "ModelError", "Models", "OnWait", "RetryPolicy"]


class Models:
    def __init__(self, scripts_dir: Path | None, timeout: float, metrics: Metrics | None = None,
                 retry: RetryPolicy | None = None) -> None:
        self._scripts_dir = scripts_dir
        self._timeout = timeout
        self._metrics = metrics
        self.retry = retry or RetryPolicy()
        self.prices = Prices()   # which models have no price, asked of litellm once (shared with the gateway)
        self._loading: asyncio.Future[Any] | None = None
        self._calls_loop: asyncio.AbstractEventLoop | None = None  # litellm's loop, in its own thread

    def start_loading(self) -> None:
        # a daemon thread, not the default executor: a daemon stopped while litellm is still importing
        # (seconds on a busy machine) must not wait for the import to finish before it exits
        if self._loading is not None:
            return
        loop = asyncio.get_running_loop()
        loading: asyncio.Future[Any] = loop.create_future()
        self._loading = loading

        def settle(result: Any, error: BaseException | None) -> None:
            if loading.done():
                return
            if error is not None:
                loading.set_exception(error)
            else:
                loading.set_result(result)

        def load() -> None:
            try:
                result, error = self._import(), None
            except BaseException as exc:  # handed to whoever awaits litellm
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the daemon's loop closed while litellm was importing
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=load, name="kilod-litellm-import", daemon=True).start()

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
        missing = missing_credentials(litellm, model)
        if missing:
            # refused now, with the variable to set, rather than failing at run time three errors deep
            raise Invalid(f"model '{model}' cannot be called: set {' or '.join(missing)} in the daemon's environment "
                          f"(or {provider.upper()}_API_BASE for a server that needs no key)", field="models")

    async def count_tokens(self, model: str, messages: list[dict[str, Any]],
                           tools: list[dict[str, Any]] | None = None) -> int:
        """Input tokens of a request, by litellm's counter (the model's tokenizer where known, else tiktoken's)."""
        litellm = await self.litellm()
        try:
            # tokenising a long conversation takes CPU time: off the event loop
            return int(await asyncio.to_thread(litellm.token_counter, model=model, messages=messages, tools=tools))
        except Exception:  # an exotic message shape: a rough count beats none
            return len(json.dumps(messages)) // 4 + (len(json.dumps(tools)) // 4 if tools else 0)

    async def window(self, model: str, default: int) -> int:
        """Input tokens the model accepts: litellm's model map (or a script's `context_window`), else `default`."""
        provider, _, name = model.partition("/")
        if provider == SCRIPTED:
            window = scripts.load(name, self._scripts_dir).get("context_window")
            return window if isinstance(window, int) and window > 0 else default
        litellm = await self.litellm()
        try:
            info = litellm.get_model_info(model)
        except Exception:
            return default
        size = info.get("max_input_tokens") or info.get("max_tokens")
        return int(size) if isinstance(size, int) and size > 0 else default

    async def complete(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                       on_wait: OnWait | None = None, retry: bool = True,
                       failed: ModelError | None = None) -> Completion:
        """One completion; retryable errors are retried per the policy, the rest raise ModelError at once.

        `retry=False`: one try, its error raised. `failed`: what a first try of this same request
        already met (kilod.agent.early): the policy starts from it, its wait shown like any other.
        """
        failures, waited, error = 0, 0.0, failed
        while True:
            if error is None:
                try:
                    return await self._complete_once(model, messages, tools)
                except ModelError as exc:
                    if not retry:
                        raise
                    error = exc
            failures += 1
            delay = self.retry.delay(failures, error, waited)
            if delay is None:
                if error.retryable and failures > 1:
                    error.message = f"{error.message} (gave up after {failures} tries, {waited:.0f}s waiting)"
                    error.args = (error.message,)
                raise error
            if on_wait is not None:
                await on_wait(delay, error.message, failures)
            await asyncio.sleep(delay)
            waited += delay
            error = None

    async def _complete_once(self, model: str, messages: list[dict[str, Any]],
                             tools: list[dict[str, Any]] | None) -> Completion:
        litellm = await self.litellm()
        assert self._calls_loop is not None
        started = time.monotonic()
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        try:
            response, cost = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                self._call(litellm, model, messages, extra), self._calls_loop))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._metrics:
                self._metrics.model_calls.labels(model, "error", AGENT).inc()
                self._metrics.model_latency.labels(model, AGENT).observe(time.monotonic() - started)
            raise map_model_error(exc, model) from exc
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
        tokens_cached = cached_tokens(usage)
        if self._metrics:
            m = self._metrics
            m.model_calls.labels(model, "ok", AGENT).inc()
            m.model_latency.labels(model, AGENT).observe(time.monotonic() - started)
            m.tokens.labels(model, "input", AGENT).inc(tokens_in)
            m.tokens.labels(model, "output", AGENT).inc(tokens_out)
            if tokens_cached:   # the gateway's name for the same count, so one query covers every agent
                m.tokens.labels(model, "cache_read", AGENT).inc(tokens_cached)
            if cost is None:
                m.unpriced_calls.labels(model, AGENT).inc()
            else:
                m.cost.labels(model, AGENT).inc(cost)
        return Completion(message, tokens_in, tokens_out, cost, tokens_cached)

    async def _call(self, litellm: Any, model: str, messages: list[dict[str, Any]],
                    extra: dict[str, Any]) -> tuple[Any, float | None]:
        """On litellm's loop: the call and its price (both CPU work the daemon's loop should not do)."""
        # retries are ours (with the attempt told about each wait): none inside litellm or openai's client
        response = await litellm.acompletion(model=model, messages=messages, timeout=self._timeout,
                                             num_retries=0, max_retries=0, **extra)
        return response, self.prices.cost(
            litellm, model, lambda: litellm.completion_cost(completion_response=response, model=model))


def cached_tokens(usage: Any) -> int:
    """Input tokens served from the provider's prompt cache (OpenAI's and Anthropic's fields, as litellm maps them)."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if not cached:
        cached = getattr(usage, "cache_read_input_tokens", None)
    try:
        return int(cached or 0)
    except (TypeError, ValueError):
        return 0


def missing_credentials(litellm: Any, model: str) -> list[str]:
    """The variables litellm says `model`'s provider needs and the daemon lacks; [] when it can be called.

    A base URL alone is not a credential: litellm has defaults (ollama's localhost), and a
    `<PROVIDER>_API_BASE` pointing at a local server that needs no key is accepted.
    """
    try:
        check = litellm.validate_environment(model=model)
    except Exception:  # litellm cannot tell: the call will say
        return []
    missing = [str(k) for k in check.get("missing_keys") or [] if not str(k).endswith(("_API_BASE", "_BASE_URL"))]
    if check.get("keys_in_environment") or not missing:
        return []
    provider = model.partition("/")[0].upper()
    if os.environ.get(f"{provider}_API_BASE") or os.environ.get(f"{provider}_BASE_URL"):
        return []
    return missing
