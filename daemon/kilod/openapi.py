"""The OpenAPI document served at /v1/openapi.json."""

from __future__ import annotations

from typing import Any

from kilod import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "bad input"),
    "404": _json(_ref("Error"), "not found"),
    "409": _json(_ref("Error"), "conflict with the current state"),
    "503": _json(_ref("Error"), "a dependency (Docker, git, model API) is unavailable"),
}
_EVENTS = {
    "description": "JSON list, or a live SSE stream when Accept: text/event-stream "
    "(resume with Last-Event-ID)",
    "content": {
        "application/json": {"schema": {"type": "object", "properties": {
            "events": {"type": "array", "items": _ref("Event")}}}},
        "text/event-stream": {"schema": {"type": "string"}},
    },
}
_AFTER = {"name": "after", "in": "query", "schema": {"type": "integer"}, "required": False}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kilod", "version": __version__,
             "description": "Run AI coding agents in parallel; every attempt sandboxed and reviewed."},
    "paths": {
        "/healthz": {"get": {"summary": "liveness", "responses": {"200": _json({"type": "object"})}}},
        "/v1/status": {"get": {"summary": "daemon status: slots, litellm readiness",
                               "responses": {"200": _json({"type": "object"})}}},
        "/v1/cards": {
            "get": {"summary": "list cards", "responses": {"200": _json(
                {"type": "object", "properties": {"cards": {"type": "array", "items": _ref("Card")}}})}},
            "post": {
                "summary": "create a card with one attempt per model",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewCard")}}},
                "responses": {"201": _json(_ref("Card"), "created"), **_ERRORS},
            },
        },
        "/v1/cards/{card_id}": {"get": {
            "summary": "one card with its attempts",
            "parameters": [{"name": "card_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ref("Card")), **_ERRORS}}},
        "/v1/board": {"get": {"summary": "cards by column (To Do, Doing, Review, Done)",
                              "responses": {"200": _json({"type": "object"})}}},
        "/v1/attempts/{attempt_id}": {"get": {
            "summary": "one attempt",
            "parameters": [{"name": "attempt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ref("Attempt")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/events": {"get": {
            "summary": "an attempt's event log (seq numbers); SSE follows live",
            "parameters": [{"name": "attempt_id", "in": "path", "required": True, "schema": {"type": "string"}},
                           _AFTER],
            "responses": {"200": _EVENTS, **_ERRORS}}},
        "/v1/attempts/{attempt_id}/diffstat": {"get": {
            "summary": "files changed against the base commit, untracked included",
            "parameters": [{"name": "attempt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object"}), **_ERRORS}}},
        "/v1/events": {"get": {"summary": "every attempt's events (global ids); SSE follows live",
                               "parameters": [_AFTER], "responses": {"200": _EVENTS}}},
        "/v1/shutdown": {"post": {"summary": "stop the daemon; running attempts resume at next start",
                                  "responses": {"202": _json({"type": "object"})}}},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "status": {"type": "integer"}, "message": {"type": "string"}}}}},
        "NewCard": {"type": "object", "required": ["prompt", "repo"], "additionalProperties": False,
                    "properties": {
                        "prompt": {"type": "string"}, "repo": {"type": "string", "description": "absolute path"},
                        "title": {"type": "string"}, "base": {"type": "string", "default": "HEAD"},
                        "models": {"type": "array", "items": {"type": "string"}},
                        "network": {"type": "boolean"}}},
        "Card": {"type": "object", "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "prompt": {"type": "string"},
            "repo": {"type": "string"}, "base_ref": {"type": "string"}, "base_commit": {"type": "string"},
            "network": {"type": "boolean"}, "created_at": {"type": "number"},
            "column": {"enum": ["todo", "doing", "review", "done"]},
            "attempts": {"type": "array", "items": _ref("Attempt")}}},
        "Attempt": {"type": "object", "properties": {
            "id": {"type": "string"}, "card_id": {"type": "string"}, "model": {"type": "string"},
            "state": {"enum": ["queued", "starting", "running", "review", "approved", "discarded",
                               "failed", "cancelled"]},
            "step": {"enum": ["worktree", "container", "agent", "review"]},
            "branch": {"type": "string"}, "worktree": {"type": "string"}, "container": {"type": "string"},
            "error": {"type": ["string", "null"]}, "summary": {"type": ["string", "null"]},
            "tokens_in": {"type": "integer"}, "tokens_out": {"type": "integer"},
            "cost_usd": {"type": ["number", "null"]}, "steps": {"type": "integer"},
            "tool_calls": {"type": "integer"}}},
        "Event": {"type": "object", "properties": {
            "id": {"type": "integer"}, "attempt_id": {"type": "string"}, "seq": {"type": "integer"},
            "time": {"type": "number"},
            "kind": {"enum": ["state", "message", "tool_call", "tool_result", "log", "check"]},
            "payload": {"type": "object"}}},
    }},
}
