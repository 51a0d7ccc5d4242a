"""What the daemon says its words are: attempt states and their groupings, board columns, steps.

The CLI keeps no copy of them (`GET /v1/meta` is their one source, `kilod.domain`); it asks
once per invocation, and only in verbs that need them (`ctl board` without filters does
not: the board carries its column titles). Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

from kilod_cli.client import ApiError, CliError

META_PATH = "/v1/meta"


class Column(TypedDict):
    id: str
    title: str


@dataclass(frozen=True)
class Meta:
    states: tuple[str, ...]
    live_states: frozenset[str]
    final_states: frozenset[str]
    columns: tuple[Column, ...]
    steps: tuple[str, ...]
    event_kinds: tuple[str, ...]

    @property
    def resting_states(self) -> frozenset[str]:
        """States an attempt stays in until a person acts (review, and the final ones): not live."""
        return frozenset(self.states) - self.live_states


def _words(answer: dict[str, Any], key: str) -> tuple[str, ...]:
    value = answer.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CliError(f"the daemon's {META_PATH} has no list of names under '{key}'")
    return tuple(value)


def _columns(answer: dict[str, Any]) -> tuple[Column, ...]:
    value = answer.get("columns")
    if not isinstance(value, list):
        raise CliError(f"the daemon's {META_PATH} has no list under 'columns'")
    columns: list[Column] = []
    for item in value:
        if not (isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("title"), str)):
            raise CliError(f"the daemon's {META_PATH} has a column without an id and a title: {item!r}")
        columns.append(Column(id=item["id"], title=item["title"]))
    return tuple(columns)


def parse_meta(answer: Any) -> Meta:
    """The answer of `GET /v1/meta`; CliError when it is not the shape this CLI knows."""
    if not isinstance(answer, dict):
        raise CliError(f"the daemon's {META_PATH} is not a JSON object")
    return Meta(states=_words(answer, "states"), live_states=frozenset(_words(answer, "live_states")),
                final_states=frozenset(_words(answer, "final_states")), columns=_columns(answer),
                steps=_words(answer, "steps"), event_kinds=_words(answer, "event_kinds"))


def fetch_meta(get: Callable[[str], Any], where: str) -> Meta:
    """`GET /v1/meta` through `get` (a Client's); a daemon without it is older than this CLI."""
    try:
        answer = get(META_PATH)
    except ApiError as exc:
        if exc.status in (404, 405):
            raise CliError(f"the daemon on {where} does not answer GET {META_PATH}: it is older than this CLI; "
                           "restart it ('kilod ctl shutdown', then 'kilod serve')") from None
        raise
    return parse_meta(answer)
