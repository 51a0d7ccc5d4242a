"""The one error tree. The API maps each kind to an HTTP status, the CLI to an exit code."""


class KilodError(Exception):
    """Something the caller can be told about in one sentence."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(KilodError):
    """The thing named does not exist."""


class Conflict(KilodError):
    """The thing exists but is in a state that does not allow this."""


class Invalid(KilodError):
    """The request itself is wrong: bad field, bad path, bad ref, unknown model."""


class Unavailable(KilodError):
    """Something kilod depends on (Docker, git, the model API) is not there right now."""
