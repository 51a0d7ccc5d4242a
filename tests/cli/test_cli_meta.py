"""kilod_cli.meta: the daemon's states and columns, read from GET /v1/meta and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from kilod_cli.client import ApiError, CliError
from kilod_cli.meta import fetch_meta, parse_meta

from .conftest import META


def test_the_groupings_are_the_daemons() -> None:
    meta = parse_meta(META)
    assert meta.states[0] == "queued" and "paused" in meta.states
    assert meta.resting_states == {"review", "approved", "discarded", "failed", "cancelled"}
    assert meta.columns[0] == {"id": "todo", "title": "To Do"}
    # another daemon, other words: the CLI follows it
    renamed = parse_meta({**META, "states": ["waiting", "done"], "live_states": ["waiting"], "final_states": ["done"]})
    assert renamed.resting_states == {"done"}


@pytest.mark.parametrize("answer", [
    [], {**META, "states": "queued"}, {**META, "live_states": [1]}, {**META, "columns": [{"id": "todo"}]},
    {key: value for key, value in META.items() if key != "event_kinds"},
])
def test_a_shape_this_cli_does_not_know_is_a_clear_error(answer: Any) -> None:
    with pytest.raises(CliError, match="/v1/meta"):
        parse_meta(answer)


def test_a_daemon_without_meta_is_named_older() -> None:
    def missing(path: str) -> Any:
        raise ApiError(404, f"no route GET {path}")

    def broken(path: str) -> Any:
        raise ApiError(500, "boom")

    with pytest.raises(CliError, match="older than this CLI"):
        fetch_meta(missing, "/run/kilod.sock")
    with pytest.raises(ApiError, match="boom"):
        fetch_meta(broken, "/run/kilod.sock")
