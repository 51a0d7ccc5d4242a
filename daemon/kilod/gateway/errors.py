"""Errors the gateway answers with, and the one place litellm's exceptions are mapped to them.

    GatewayError(status, code)            the agent sees `status` and a body in its wire format
    ├── Unauthorized       401            no/wrong/foreign/expired token: no provider was reached
    ├── BudgetSpent        400            the card's token or cost budget is used up: do not retry
    │                                     (Codex retries a 403 five times, and Claude Code calls a 403
    │                                     "Failed to authenticate"; both show a 400's message and stop)
    ├── BadRequest         400            the agent's request cannot be served (bad JSON, no model…)
    └── from_litellm(exc)                 a provider's or litellm's failure, keeping what it meant:
          429 rate limited · 529 overloaded · 503 unavailable · 504 timed out    → agents retry
          502 provider failed (5xx) or could not be reached                     → agents retry
          400 bad request / context too long · 403 provider refused kilod's key
          404 model not found                                                    → retrying cannot help

Claude Code retries a 5xx up to 10 times with backoff to ~40 s, so a failure that retrying
cannot fix must never be a 5xx. Messages keep the provider's words but never a key: every
value of a `*_KEY`/`*_TOKEN`/`*_SECRET` environment variable and anything shaped like a
bearer token is replaced before the message leaves the daemon.
"""

from __future__ import annotations

import os
import re

from kilod.errors import KilodError

MESSAGE_LIMIT = 2000
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
_SECRET_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|(?<=Bearer )[A-Za-z0-9._\-]{8,}|kgw_[A-Za-z0-9_\-]{8,})")


class GatewayError(KilodError):
    """Answered to the agent with `status` and `message` in its wire format's error shape."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status in (408, 429) or self.status >= 500


class Unauthorized(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(401, message, "invalid_api_key")


class BudgetSpent(GatewayError):
    def __init__(self, reason: str) -> None:
        super().__init__(400, f"kilod: {reason}; the attempt stops here and waits for review "
                              "(do not retry)", "budget_exceeded")
        self.reason = reason


class BadRequest(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message, "invalid_request")


def redact(text: str) -> str:
    """`text` without the daemon's secrets (values of secret-named env vars, key-shaped strings)."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "[redacted]")
    return _SECRET_SHAPES.sub("[redacted]", text)


def _provider_message(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    # litellm appends tracebacks and bug-report links: the agent needs the provider's words only
    for marker in ("\nTraceback", "\nThis looks like a bug in LiteLLM", " Original exception:"):
        text = text.split(marker, 1)[0]
    return redact(text.strip())[:MESSAGE_LIMIT]


def from_litellm(exc: BaseException, model: str) -> GatewayError:
    """The GatewayError that says what happened to a litellm call, with the provider's message."""
    import litellm.exceptions as le  # imported here: litellm is loaded in a thread at daemon start

    said = _provider_message(exc)
    upstream = getattr(exc, "status_code", None)
    status = upstream if isinstance(upstream, int) else None

    def fail(status: int, what: str, code: str) -> GatewayError:
        return GatewayError(status, f"{what} ({model}): {said}", code)

    if isinstance(exc, le.ContextWindowExceededError):
        # Claude Code compacts its context when it reads "prompt is too long"
        return fail(400, "prompt is too long for the model", "context_length_exceeded")
    if isinstance(exc, le.RateLimitError):
        return fail(429, "rate limited by the model provider", "rate_limit_exceeded")
    if isinstance(exc, le.Timeout):
        return fail(504, "the model provider did not answer in time", "timeout")
    if isinstance(exc, (le.AuthenticationError, le.PermissionDeniedError)):
        return fail(403, "the model provider refused kilod's credentials", "provider_auth")
    if isinstance(exc, le.NotFoundError):
        return fail(404, "the model provider does not know this model", "model_not_found")
    if isinstance(exc, (le.BadRequestError, le.UnprocessableEntityError, le.UnsupportedParamsError)):
        return fail(400, "the model provider rejected the request", "invalid_request")
    if status == 529 or "overloaded" in said.lower():
        return fail(529, "the model provider is overloaded", "overloaded")
    if isinstance(exc, le.ServiceUnavailableError) or status == 503:
        return fail(503, "the model provider is unavailable", "unavailable")
    if isinstance(exc, le.APIConnectionError) and not (status and status >= 400 and status != 500):
        return fail(502, "the model provider could not be reached or failed", "provider_error")
    if status is not None and 400 <= status < 500:
        return fail(status, "the model provider rejected the request", "invalid_request")
    if (status is not None and status >= 500) or isinstance(exc, le.APIError):
        return fail(502, "the model provider failed", "provider_error")
    return GatewayError(500, f"kilod gateway error calling {model}: {type(exc).__name__}: {said}", "internal")
