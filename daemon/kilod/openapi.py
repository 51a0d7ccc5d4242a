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
_ID = {"name": "attempt_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_AFTER = {"name": "after", "in": "query", "schema": {"type": "integer"}, "required": False}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kilod", "version": __version__,
             "description": "Run AI coding agents in parallel; every attempt sandboxed and reviewed."},
    "paths": {
        "/healthz": {"get": {"summary": "liveness", "responses": {"200": _json({"type": "object"})}}},
        "/v1/openapi.json": {"get": {"summary": "this document", "responses": {"200": _json({"type": "object"})}}},
        "/v1/status": {"get": {"summary": "daemon status: slots, litellm readiness",
                               "responses": {"200": _json({"type": "object"})}}},
        "/v1/meta": {"get": {"summary": "states, columns, pipeline steps and event kinds, for clients",
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
        "/v1/attempts/{attempt_id}/diff": {"get": {
            "summary": "the worktree against the base commit: files, hunks, risk flags; ?format=text for a patch",
            "parameters": [_ID, {"name": "format", "in": "query", "schema": {"enum": ["json", "text", "both", "html"]},
                                 "description": "html: lines as Pygments HTML, for the web board"}],
            "responses": {"200": _json(_ref("Diff")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/comments": {
            "get": {"summary": "review comments", "parameters": [_ID], "responses": {"200": _json({"type": "object"})}},
            "post": {"summary": "comment on a line of the diff (added or context line)", "parameters": [_ID],
                     "requestBody": _body({"type": "object", "required": ["path", "line", "text"], "properties": {
                         "path": {"type": "string"}, "line": {"type": "integer", "minimum": 1},
                         "text": {"type": "string"}}}),
                     "responses": {"201": _json({"type": "object"}), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/messages": {"post": {
            "summary": "follow-up: the agent continues with its conversation, pending comments and human changes",
            "parameters": [_ID], "requestBody": _body({"type": "object", "required": ["text"],
                                                       "properties": {"text": {"type": "string"}}}),
            "responses": {"202": _json(_ref("Attempt")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/approve": {"post": {
            "summary": "commit the reviewed tree on the attempt's branch; optionally merge into the base branch",
            "parameters": [_ID], "requestBody": _body({"type": "object", "properties": {
                "message": {"type": "string"}, "merge": {"type": "boolean"},
                "tree": {"type": "string", "description": "the tree id reviewed; 409 if the worktree changed"}}}),
            "responses": {"200": _json({"type": "object"}), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/discard": {"post": {"summary": "remove container, worktree and branch (idempotent)",
                                                       "parameters": [_ID],
                                                       "responses": {"200": _json(_ref("Attempt")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/cancel": {"post": {"summary": "stop a live attempt; its worktree stays",
                                                      "parameters": [_ID],
                                                      "responses": {"200": _json(_ref("Attempt")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/retry": {"post": {"summary": "a fresh attempt with the same prompt and model",
                                                     "parameters": [_ID],
                                                     "responses": {"201": _json(_ref("Attempt")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/shell": {"post": {"summary": "start the container if needed; how to exec into it",
                                                     "parameters": [_ID],
                                                     "responses": {"200": _json({"type": "object"}), **_ERRORS}}},
        "/v1/cards/{card_id}/compare": {"get": {
            "summary": "one row per attempt with the best value per column; files touched and overlaps",
            "parameters": [{"name": "card_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object"}), **_ERRORS}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (text format)",
                             "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}},
        "/v1/web/login": {"post": {"summary": "(unix socket only) a one-time login URL for the web board",
                                   "responses": {"201": _json({"type": "object"}), **_ERRORS}}},
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
                        "network": {"type": "boolean"},
                        "repeat": {"type": "integer", "minimum": 1, "maximum": 8},
                        "settings": {"type": "object", "description": "overrides of .kilod.toml: setup, copy, "
                                     "checks, network"},
                        "budget": {"type": "object", "properties": {"tokens": {"type": "integer"},
                                                                    "cost_usd": {"type": "number"}}}}},
        "Diff": {"type": "object", "properties": {
            "base_commit": {"type": "string"}, "tree": {"type": "string"},
            "files": {"type": "array", "items": {"type": "object"}}, "risks": {"type": "array"},
            "nested_repositories": {"type": "array"}, "additions": {"type": "integer"},
            "deletions": {"type": "integer"}}},
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
            "step": {"enum": ["worktree", "container", "setup", "agent", "checks", "review"]},
            "stop_reason": {"type": ["string", "null"]}, "landed_commit": {"type": ["string", "null"]},
            "checks": {"type": "object"},
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
