"""Model errors: what litellm raised, mapped once to a ModelError, and how long to wait before trying again.

    ModelError (kilod.errors.ModelError: status 502, reason "model")
      retryable=True   429, 408/409/425, 5xx, 529 "overloaded", connection errors, timeouts
      retryable=False  400 (bad request, context window), 401/403 (key), 404 (model), anything else

A retryable error is retried with exponential backoff (honouring the server's
`Retry-After`) until the policy's total wait is spent: minutes, not seconds, since
a rate-limited provider usually recovers within a minute or two (SWE-agent waits up
to 20 tries, OpenHands backs off 8-64 s). Whatever the outcome, the attempt's
conversation is kept: the loop stops, the attempt waits in Review, a follow-up
continues it.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

from kilod.errors import ModelError as BaseModelError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# names of litellm/openai exception classes that mean "try again later" whatever the status says
_RETRYABLE_KINDS = ("RateLimitError", "APIConnectionError", "Timeout", "APITimeoutError",
                    "ServiceUnavailableError", "InternalServerError")
_RETRYABLE_WORDS = ("overloaded", "rate limit", "rate_limit", "try again", "temporarily unavailable")


class ModelError(BaseModelError):
    """kilod.errors.ModelError with what a retry needs: the server's `Retry-After`, and whether the
    request was too long for the model (then a compaction, not a wait, can help)."""

    def __init__(self, message: str, *, retryable: bool = False, upstream_status: int | None = None,
                 retry_after: float | None = None, context_exceeded: bool = False) -> None:
        super().__init__(message, retryable=retryable, upstream_status=upstream_status)
        self.retry_after = retry_after
        self.context_exceeded = context_exceeded


def _headers(exc: BaseException) -> dict[str, str]:
    for source in (getattr(getattr(exc, "response", None), "headers", None),
                   getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None)):
        if source:
            try:
                return {str(k).lower(): str(v) for k, v in dict(source).items()}
            except (TypeError, ValueError):
                continue
    return {}


def retry_after_seconds(headers: dict[str, str], now: float | None = None) -> float | None:
    """`retry-after-ms`, `retry-after` in seconds or as an HTTP date; None when absent or unreadable."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def map_model_error(exc: BaseException, model: str) -> ModelError:
    """The one place a foreign exception from a model call becomes a ModelError."""
    if isinstance(exc, ModelError):
        return exc
    kind = type(exc).__name__
    status_value: Any = getattr(exc, "status_code", None)
    status = status_value if isinstance(status_value, int) else None
    text = str(exc)
    lowered = text.lower()
    context_exceeded = kind == "ContextWindowExceededError" or "context window" in lowered \
        or "context_length_exceeded" in lowered or "prompt is too long" in lowered
    retryable = not context_exceeded and (
        (status in RETRYABLE_STATUS) or any(k in kind for k in _RETRYABLE_KINDS)
        or (status is None and any(w in lowered for w in _RETRYABLE_WORDS))
        or "overloaded" in lowered
    )
    if status in (400, 401, 403, 404, 422) and "overloaded" not in lowered:
        retryable = False
    where = f" (HTTP {status})" if status else ""
    return ModelError(f"model call to {model} failed{where}: {kind}: {text[:2000]}", retryable=retryable,
                      upstream_status=status, retry_after=retry_after_seconds(_headers(exc)),
                      context_exceeded=context_exceeded)


@dataclass(frozen=True)
class RetryPolicy:
    """How long a model call keeps trying: `patience` seconds of waiting in total, at most `retries` tries."""

    patience: float = 900.0
    retries: int = 30
    first_delay: float = 2.0
    max_delay: float = 120.0
    jitter: float = 0.1

    def delay(self, failures: int, error: ModelError, waited: float) -> float | None:
        """Seconds to wait before try number `failures + 1`, or None to give up."""
        if not error.retryable or failures > self.retries:
            return None
        if error.retry_after is not None:
            seconds = min(error.retry_after, self.patience)  # the server knows best, within our patience
        else:
            seconds = min(self.max_delay, self.first_delay * 2 ** (failures - 1))
            seconds *= 1 + random.uniform(-self.jitter, self.jitter)
        if waited + seconds > self.patience:
            return None
        return seconds
