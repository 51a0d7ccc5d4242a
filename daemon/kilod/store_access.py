"""Who may do what, in the store: gateway tokens (their sha256) and trusted repository settings files."""

from __future__ import annotations

from typing import Any

from kilod.domain import now
from kilod.store_base import StoreBase


class AccessTables(StoreBase):
    # -- model gateway tokens ---------------------------------------------------

    def set_gateway_token(self, attempt_id: str, token_sha256: str, agent: str) -> None:
        """Store (replacing any earlier one) the hash of an attempt's gateway token."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO gateway_tokens (attempt_id, token_sha256, agent, created_at)"
                       " VALUES (?, ?, ?, ?)", (attempt_id, token_sha256, agent, now()))

    def gateway_token_owner(self, token_sha256: str) -> tuple[str, str] | None:
        """(attempt id, agent) the token hash was issued to, or None."""
        row = self._db.execute("SELECT attempt_id, agent FROM gateway_tokens WHERE token_sha256 = ?",
                               (token_sha256,)).fetchone()
        return (row["attempt_id"], row["agent"]) if row is not None else None

    def delete_gateway_token(self, attempt_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM gateway_tokens WHERE attempt_id = ?", (attempt_id,))

    # -- trusted repository settings -------------------------------------------

    def trust_settings(self, repo: str, file: str, sha256: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO trusted_settings (repo, file, sha256, trusted_at) VALUES (?, ?, ?, ?)",
                       (repo, file, sha256, now()))

    def is_trusted(self, repo: str, file: str, sha256: str) -> bool:
        row = self._db.execute("SELECT 1 FROM trusted_settings WHERE repo = ? AND file = ? AND sha256 = ?",
                               (repo, file, sha256)).fetchone()
        return row is not None

    def trusted_hashes(self, repo: str, file: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT sha256, trusted_at FROM trusted_settings WHERE repo = ? AND file = ?"
                                " ORDER BY trusted_at", (repo, file))
        return [dict(r) for r in rows]

    def revoke_trust(self, repo: str, file: str) -> int:
        with self.transaction() as db:
            return db.execute("DELETE FROM trusted_settings WHERE repo = ? AND file = ?", (repo, file)).rowcount
