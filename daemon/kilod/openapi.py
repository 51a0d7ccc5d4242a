"""The OpenAPI document served at /v1/openapi.json: the routes, with schemas from kilod.schemas."""

from __future__ import annotations

from typing import Any

from kilod import __version__
from kilod.environments.openapi import PATHS as ENVIRONMENT_PATHS
from kilod.schemas import Schema, component_schemas, ref


def _json(schema: Schema, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(model: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(model)}}}


def _list(key: str, item: str) -> Schema:
    return {"type": "object", "required": [key], "properties": {key: {"type": "array", "items": ref(item)}}}


_ERRORS = {
    "400": _json(ref("Error"), "bad input"),
    "404": _json(ref("Error"), "not found"),
    "409": _json(ref("Error"), "conflict with the current state"),
    "503": _json(ref("Error"), "a dependency (Docker, git, model API) is unavailable"),
}
_EVENTS = {
    "description": "JSON list, or a live SSE stream when Accept: text/event-stream "
    "(resume with Last-Event-ID)",
    "content": {
        "application/json": {"schema": _list("events", "Event")},
        "text/event-stream": {"schema": {"type": "string"}},
    },
}
_ATTEMPT = {"name": "attempt_id", "in": "path", "required": True, "schema": {"type": "string"}}
_CARD = {"name": "card_id", "in": "path", "required": True, "schema": {"type": "string"}}
_REPO = {"name": "repo", "in": "query", "required": True, "schema": {"type": "string"},
         "description": "absolute path of the repository"}
_BASE = {"name": "base", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "the commit or branch whose sandbox files to read (default HEAD)"}
_AFTER = {"name": "after", "in": "query", "schema": {"type": "integer"}, "required": False}
_OBJECT: Schema = {"type": "object"}


def _attempt_post(summary: str, status: str, response: Schema, body: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": [_ATTEMPT],
                                 "responses": {status: _json(response), **_ERRORS}}
    if body is not None:
        operation["requestBody"] = _body(body)
    return {"post": operation}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kilod", "version": __version__,
             "description": "Run AI coding agents in parallel; every attempt sandboxed and reviewed."},
    "paths": {
        "/healthz": {"get": {"summary": "liveness", "responses": {"200": _json(_OBJECT)}}},
        "/v1/openapi.json": {"get": {"summary": "this document", "responses": {"200": _json(_OBJECT)}}},
        "/v1/status": {"get": {"summary": "daemon status: slots, litellm readiness",
                               "responses": {"200": _json(ref("Status"))}}},
        "/v1/meta": {"get": {"summary": "states, their groupings, board columns, steps and event kinds",
                             "responses": {"200": _json(ref("Meta"))}}},
        "/v1/cards": {
            "get": {"summary": "list cards", "responses": {"200": _json(_list("cards", "Card"))}},
            "post": {"summary": "create a card with one attempt per model", "requestBody": _body("NewCard"),
                     "responses": {"201": _json(ref("Card"), "created"), **_ERRORS}},
        },
        "/v1/cards/{card_id}": {
            "get": {"summary": "one card with its attempts", "parameters": [_CARD],
                    "responses": {"200": _json(ref("Card")), **_ERRORS}},
            "delete": {"summary": "delete a card: its unapproved attempts are discarded first; approved branches stay",
                       "parameters": [_CARD], "responses": {"200": _json({"type": "object", "properties": {
                           "card_id": {"type": "string"},
                           "discarded": {"type": "array", "items": {"type": "string"}},
                           "kept_branches": {"type": "array", "items": {"type": "string"}}}}), **_ERRORS}},
        },
        "/v1/cards/{card_id}/archive": {"post": {
            "summary": "take a card off the board (409 while an attempt is live or in review)",
            "parameters": [_CARD], "responses": {"200": _json(ref("Card")), **_ERRORS}}},
        "/v1/cards/{card_id}/unarchive": {"post": {
            "summary": "put an archived card back on the board",
            "parameters": [_CARD], "responses": {"200": _json(ref("Card")), **_ERRORS}}},
        "/v1/cards/{card_id}/compare": {"get": {
            "summary": "one row per attempt with the best value per column; files touched and overlaps",
            "parameters": [_CARD], "responses": {"200": _json(ref("Compare")), **_ERRORS}}},
        "/v1/board": {"get": {
            "summary": "cards by column (To Do, Doing, Review, Done, Closed) with counts; archived ones left out",
            "parameters": [{"name": "per_column", "in": "query", "schema": {"type": "integer", "minimum": 0},
                            "description": "only each column's newest N cards (count stays the whole column's)"}],
            "responses": {"200": _json(ref("Board")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}": {"get": {"summary": "one attempt", "parameters": [_ATTEMPT],
                                              "responses": {"200": _json(ref("Attempt")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/events": {"get": {
            "summary": "an attempt's event log (seq numbers); SSE follows live",
            "parameters": [_ATTEMPT, _AFTER], "responses": {"200": _EVENTS, **_ERRORS}}},
        "/v1/attempts/{attempt_id}/diffstat": {"get": {
            "summary": "files changed against the base commit, untracked included",
            "parameters": [_ATTEMPT], "responses": {"200": _json(ref("Diffstat")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/diff": {"get": {
            "summary": "the worktree against the base commit: files, hunks, risk flags; ?format=text for a patch",
            "parameters": [_ATTEMPT, {"name": "format", "in": "query",
                                      "schema": {"enum": ["json", "text", "both", "html"]},
                                      "description": "html: lines as Pygments HTML, for the web board"}],
            "responses": {"200": _json(ref("Diff")), **_ERRORS}}},
        "/v1/attempts/{attempt_id}/comments": {
            "get": {"summary": "review comments", "parameters": [_ATTEMPT],
                    "responses": {"200": _json(_list("comments", "Comment")), **_ERRORS}},
            **_attempt_post("comment on a line of the diff (added or context line)", "201", ref("Comment"),
                            "CommentRequest"),
        },
        "/v1/attempts/{attempt_id}/messages": _attempt_post(
            "follow-up: the agent continues with its conversation, pending comments and human changes", "202",
            ref("FollowUp"), "FollowUpRequest"),
        "/v1/attempts/{attempt_id}/approve": _attempt_post(
            "commit the reviewed tree on the attempt's branch; optionally merge into the base branch", "200",
            ref("Approval"), "ApproveRequest"),
        "/v1/attempts/{attempt_id}/discard": _attempt_post("remove container, worktree and branch (idempotent)",
                                                           "200", ref("Attempt")),
        "/v1/attempts/{attempt_id}/cancel": _attempt_post("stop a live attempt; its worktree stays", "200",
                                                          ref("Attempt")),
        "/v1/attempts/{attempt_id}/pause": _attempt_post(
            "the agent stops after its current tool call and waits in `paused`, its container up", "202",
            ref("Attempt")),
        "/v1/attempts/{attempt_id}/resume": _attempt_post(
            "a paused agent continues, told what a person changed in the worktree (and `text`)", "202",
            ref("Attempt"), "ResumeRequest"),
        "/v1/attempts/{attempt_id}/retry": _attempt_post("a fresh attempt with the same prompt and model", "201",
                                                         ref("Attempt")),
        "/v1/attempts/{attempt_id}/shell": _attempt_post("start the container if needed; how to exec into it",
                                                         "200", ref("Shell")),
        "/metrics": {"get": {"summary": "Prometheus metrics (text format)",
                             "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}},
        "/v1/web/login": {"post": {"summary": "(unix socket only) a one-time login URL for the web board",
                                   "responses": {"201": _json(_OBJECT), **_ERRORS}}},
        "/v1/repos/trust": {
            "get": {"summary": "a repository's sandbox files (.kilod.toml, devcontainer, the Dockerfiles they "
                               "name) as committed at `base` (default HEAD; cards read their base commit the "
                               "same way): each file's content, the build contexts' tree ids, their combined "
                               "sha256, trusted or not, which keys widen the sandbox", "parameters": [_REPO, _BASE],
                    "responses": {"200": _json(ref("Trust")), **_ERRORS}},
            "post": {"summary": "trust the files' current content for the repository; sha256 must name the "
                                "combined hash shown (400 without it, 409 if any file changed since)",
                     "requestBody": _body("TrustRequest"), "responses": {"200": _json(ref("Trust")), **_ERRORS}},
            "delete": {"summary": "forget every trusted hash of the repository's sandbox files",
                       "parameters": [_REPO, _BASE], "responses": {"200": _json(ref("Trust")), **_ERRORS}},
        },
        "/v1/events": {"get": {"summary": "every attempt's events (global ids); SSE follows live",
                               "parameters": [_AFTER], "responses": {"200": _EVENTS}}},
        "/v1/shutdown": {"post": {"summary": "stop the daemon; running attempts resume at next start",
                                  "responses": {"202": _json(_OBJECT)}}},
        **ENVIRONMENT_PATHS,  # caches, images, gc, disk (kilod.environments.routes)
    },
    "components": {"schemas": component_schemas()},
}
