"""The judge of the fake daemon's answers: it accepts the documented shapes and catches drift."""

from __future__ import annotations

from . import api_schemas
from .conftest import META
from .test_cli_fake_daemon import BOARD, BUSY_CARD, HISTORY


def test_documented_answers_pass() -> None:
    assert api_schemas.problems("GET", "/v1/cards/c0ffee01", 200, BUSY_CARD) == []
    assert api_schemas.problems("GET", "/v1/attempts/c0ffee01-1/events?after=3", 200, {"events": HISTORY}) == []
    assert api_schemas.problems("GET", "/v1/board", 200, BOARD) == []
    assert api_schemas.problems("GET", "/v1/meta", 200, META) == []
    assert api_schemas.problems("POST", "/v1/attempts/c0ffee01-1/cancel", 409,
                                {"error": {"status": 409, "message": "not live"}}) == []


def test_a_shape_the_daemon_does_not_send_is_caught() -> None:
    moved = {**BUSY_CARD, "column": "somewhere"}
    assert any("column" in problem for problem in api_schemas.problems("GET", "/v1/cards/c0ffee01", 200, moved))
    attempt = {**BUSY_CARD["attempts"][0], "state": "sleeping", "tokens_in": "many"}
    found = api_schemas.problems("GET", "/v1/attempts/c0ffee01-1", 200, attempt)
    assert any("state" in problem for problem in found) and any("tokens_in" in problem for problem in found)
    assert api_schemas.problems("GET", "/v1/meta", 200, {**META, "columns": ["todo"]}) != []
    assert api_schemas.event_problems('{"id": 1, "kind": "telepathy"}') != []


def test_routes_and_statuses_the_daemon_does_not_document_are_caught() -> None:
    assert api_schemas.problems("GET", "/v1/wishes", 200, {}) == ["GET /v1/wishes is not in the daemon's OpenAPI "
                                                                  "document"]
    assert api_schemas.problems("GET", "/v1/cards/c0ffee01", 202, BUSY_CARD) != []
