"""The one error tree. Every kind carries its HTTP status and its metric reason.

    KilodError                  500 internal      (never raised bare: raise a kind below)
    ├── Invalid                 400 invalid       the request is wrong: bad field, path, ref, model
    ├── Unauthorized            401 unauthorized  no or wrong credentials
    ├── NotFound                404 not_found     the thing named does not exist
    ├── Conflict                409 conflict      it exists, but its state does not allow this
    ├── Unavailable             503 unavailable   something kilod depends on (Docker, git) is not there now
    └── ModelError              502 model         the model call failed (`retryable`, `upstream_status`)

Foreign errors are mapped into this tree once, where they enter: git's in
`kilod.git.repository`, Docker's in the sandbox, litellm's in the model client.
The API reads `.status`, metrics read `.reason`; neither keeps a table of its own.
"""

from __future__ import annotations


class KilodError(Exception):
    """Something the caller can be told about in one sentence."""

    status = 500
    reason = "internal"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(KilodError):
    """The request itself is wrong: bad field, bad path, bad ref, unknown model."""

    status = 400
    reason = "invalid"


class Unauthorized(KilodError):
    """The caller did not prove who it is (missing, wrong or expired credentials)."""

    status = 401
    reason = "unauthorized"


class NotFound(KilodError):
    """The thing named does not exist."""

    status = 404
    reason = "not_found"


class Conflict(KilodError):
    """The thing exists but is in a state that does not allow this."""

    status = 409
    reason = "conflict"


class Unavailable(KilodError):
    """Something kilod depends on (Docker, git, the model API) is not there right now."""

    status = 503
    reason = "unavailable"


class ModelError(KilodError):
    """A model call failed; the attempt fails with this message unless the call may be retried."""

    status = 502
    reason = "model"

    def __init__(self, message: str, *, retryable: bool = False, upstream_status: int | None = None,
                 **details: object) -> None:
        super().__init__(message, **details)
        self.retryable = retryable
        self.upstream_status = upstream_status
