"""Per-attempt gateway tokens: random, shown once, stored only as a sha256.

A token is valid while its attempt is live (starting, running, or paused where that state
exists) and was not revoked; on a per-attempt socket it must also be that attempt's own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from kilod.domain import Attempt, State
from kilod.gateway.errors import Unauthorized
from kilod.store import Store

PREFIX = "kgw_"
# an agent may talk to its model while its attempt starts, runs or is paused; never after
USABLE_STATES = frozenset(s for s in State if str(s) in ("starting", "running", "paused"))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def presented(headers: Mapping[str, str]) -> str | None:
    """The token as the agent sends it: `x-api-key` (Anthropic) or `Authorization: Bearer` (all)."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class TokenBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def issue(self, attempt_id: str, agent: str) -> str:
        self.store.get_attempt(attempt_id)  # NotFound for an unknown attempt
        token = PREFIX + secrets.token_urlsafe(32)
        self.store.set_gateway_token(attempt_id, digest(token), agent)
        return token

    def revoke(self, attempt_id: str) -> None:
        self.store.delete_gateway_token(attempt_id)

    def check(self, token: str | None, socket_attempt: str | None) -> tuple[Attempt, str]:
        """(attempt, agent) the token belongs to; Unauthorized unless it is valid here and now."""
        if not token:
            raise Unauthorized("kilod gateway: no token (send it as x-api-key or Authorization: Bearer)")
        # looked up by its sha256: timing of the lookup tells nothing about a 256-bit random token
        owner = self.store.gateway_token_owner(digest(token))
        if owner is None:
            raise Unauthorized("kilod gateway: unknown or revoked token")
        attempt_id, agent = owner
        if socket_attempt is not None and attempt_id != socket_attempt:
            raise Unauthorized("kilod gateway: this token belongs to another attempt")
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state not in USABLE_STATES:
            raise Unauthorized(f"kilod gateway: the token's attempt is {attempt.state}, no longer running")
        return attempt, agent
