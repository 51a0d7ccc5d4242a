"""The web board's credentials: the daemon's token, one-time login tickets, session cookies.

The token is random, made at the first start with the web board on and kept `0600` in
`<data_dir>/token` (or given as `KILOD_TOKEN`). A ticket is minted on the unix socket
(only the daemon's user can reach it), works once and expires after five minutes; it
buys a session cookie whose value is an expiry signed with the token, so sessions
outlive a daemon restart and end when the token changes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path

from kilod.errors import Invalid

TICKET_SECONDS = 300.0
SESSION_SECONDS = 30 * 24 * 3600
MIN_TOKEN_LENGTH = 16
_SESSION_CONTEXT = b"kilod web session\0"


def load_token(path: Path) -> str:
    """The token in `path`, created (0600, never through a symlink) if there is none yet."""
    flags = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, 0o600)
    except FileExistsError:
        pass
    else:
        token = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token
    try:
        fd = os.open(path, os.O_RDONLY | flags)
    except OSError as exc:
        raise Invalid(f"cannot read the web token {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Invalid(f"the web token {path} is not a regular file")
        if info.st_mode & 0o077:
            os.fchmod(handle.fileno(), 0o600)
        token = handle.read().strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise Invalid(f"the web token in {path} is shorter than {MIN_TOKEN_LENGTH} characters; "
                      "delete the file to have a new one made")
    return token


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Credentials:
    def __init__(self, token: str, clock: Callable[[], float] = time.time) -> None:
        self._token = token
        self._key = hashlib.sha256(_SESSION_CONTEXT + token.encode()).digest()
        self._tickets: dict[str, float] = {}  # sha256(ticket) → expiry
        self._now = clock

    @property
    def token(self) -> str:
        return self._token

    def bearer_ok(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._token.encode())

    def issue_ticket(self) -> tuple[str, float]:
        now = self._now()
        self._tickets = {k: exp for k, exp in self._tickets.items() if exp > now}
        ticket = secrets.token_urlsafe(24)
        expires = now + TICKET_SECONDS
        self._tickets[_digest(ticket)] = expires
        return ticket, expires

    def redeem(self, ticket: str) -> bool:
        """True once per ticket, before it expires; a used ticket is forgotten."""
        expires = self._tickets.pop(_digest(ticket), None)
        return expires is not None and expires > self._now()

    def new_session(self) -> str:
        expires = str(int(self._now() + SESSION_SECONDS))
        return f"{expires}.{self._sign(expires)}"

    def session_ok(self, value: str) -> bool:
        expires, dot, signature = value.partition(".")
        if not dot or not expires.isdigit():
            return False
        return hmac.compare_digest(signature, self._sign(expires)) and int(expires) > self._now()

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
