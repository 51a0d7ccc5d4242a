"""`ctl board --repo/--model/--state/--text`: which cards of the board to keep.

Filters of different kinds all have to match (AND); a filter given several times matches
any of its values (OR). The board keeps its shape (the same columns), so `--json` output
filtered this way reads like the daemon's. Standard library only: `--json` loads no rich.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple


def _folded(value: Any) -> str:
    return str(value or "").casefold()


class CardFilter(NamedTuple):  # not a dataclass: `ctl board` imports no dataclasses (inspect, ast)
    repos: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    text: str | None = None

    def __bool__(self) -> bool:
        return bool(self.repos or self.models or self.states or self.text)

    def _repo_matches(self, repo: str) -> bool:
        # a path (made absolute, as `ctl new --repo` does) or just the repository's folder name
        return any(repo in (os.path.abspath(os.path.expanduser(wanted)), os.path.join(os.sep, wanted))
                   or os.path.basename(repo) == wanted for wanted in self.repos)

    def matches(self, card: dict[str, Any]) -> bool:
        attempts: list[dict[str, Any]] = card.get("attempts") or []
        if self.repos and not self._repo_matches(str(card.get("repo") or "")):
            return False
        if self.models and not any(_folded(wanted) in _folded(a.get("model"))
                                   for a in attempts for wanted in self.models):
            return False
        if self.states and not any(a.get("state") in self.states for a in attempts):
            return False
        if self.text:
            needle = self.text.casefold()
            if not any(needle in _folded(card.get(key)) for key in ("title", "prompt", "id")):
                return False
        return True

    def apply(self, board: dict[str, Any]) -> dict[str, Any]:
        """The board with only the matching cards in each column (the board itself when no filter is set)."""
        if not self:
            return board
        columns = []
        for column in board.get("columns") or []:
            cards = [card for card in column.get("cards") or [] if self.matches(card)]
            columns.append({**column, "cards": cards, **({"count": len(cards)} if "count" in column else {})})
        return {**board, "columns": columns}
