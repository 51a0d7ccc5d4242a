"""JSON schemas of what the API takes and returns, for the OpenAPI document.

Request bodies come from the pydantic models that validate them, so the document
cannot drift from the checks. Responses are written here against the domain's
enums; tests/e2e/test_openapi_conformance.py validates real responses against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kilod.cards import NewCard
from kilod.domain import Column, EventKind, State, Step
from kilod.review.commands import FollowUpRequest, ResumeRequest
from kilod.review.landing import ApproveRequest
from kilod.review.queries import CommentRequest
from kilod.trust import TrustRequest

REQUEST_MODELS: tuple[type[BaseModel], ...] = (NewCard, CommentRequest, FollowUpRequest, ApproveRequest,
                                               ResumeRequest, TrustRequest)
REF_TEMPLATE = "#/components/schemas/{model}"

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def _enum(values: type[State] | type[Step] | type[EventKind] | type[Column]) -> Schema:
    return {"type": "string", "enum": [str(v) for v in values]}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {"type": "object", "required": sorted(required), "properties": {**required, **(optional or {})}}


STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_ATTEMPT = _object({
    "id": STRING, "card_id": STRING, "n": INT, "model": STRING, "runtime": STRING, "branch": STRING,
    "worktree": STRING, "container": STRING, "container_id": nullable(STRING),
    "state": _enum(State), "step": _enum(Step), "error": nullable(STRING), "summary": nullable(STRING),
    "tokens_in": INT, "tokens_out": INT, "cost_usd": nullable(NUMBER), "steps": INT,
    "tool_calls": INT, "created_at": NUMBER, "started_at": nullable(NUMBER), "finished_at": nullable(NUMBER),
    "landed_commit": nullable(STRING), "stop_reason": nullable(STRING), "run": INT,
}, {"agent": STRING, "running_seconds": nullable(NUMBER), "review_seconds": NUMBER,
    "summaries": {"type": "array", "items": STRING},
    "checks": _object({"passed": INT, "failed": INT, "error": INT, "total": INT, "failing": BOOL}),
    "tokens_cached": INT})   # of tokens_in, read from the provider's prompt cache

_USAGE = _object({"tokens_in": INT, "tokens_out": INT, "cost_usd": nullable(NUMBER), "cost_complete": BOOL},
                 {"tokens_cached": INT})

_CARD = _object({
    "id": STRING, "title": STRING, "prompt": STRING, "repo": STRING, "base_ref": STRING, "base_commit": STRING,
    "base_branch": nullable(STRING), "settings": {"type": "object"}, "network": BOOL, "created_at": NUMBER,
    "budget": _object({"tokens": nullable(INT), "cost_usd": nullable(NUMBER)}),
    "column": _enum(Column), "attempts": {"type": "array", "items": ref("Attempt")}, "usage": _USAGE,
}, {"archived_at": nullable(NUMBER), "settings_source": nullable(ref("SettingsSource"))})

_EVENT = _object({"id": INT, "attempt_id": STRING, "seq": INT, "time": NUMBER, "kind": _enum(EventKind),
                  "payload": {"type": "object"}})

_LINE = _object({"kind": {"type": "string", "enum": ["add", "delete", "context", "note"]},
                 "old": nullable(INT), "new": nullable(INT), "text": STRING})
_HUNK = _object({"header": STRING, "old_start": INT, "old_lines": INT, "new_start": INT, "new_lines": INT,
                 "lines": {"type": "array", "items": _LINE}})
_FILE_DIFF = _object({
    "path": STRING, "old_path": nullable(STRING),
    "status": {"type": "string", "enum": ["added", "modified", "deleted", "renamed"]},
    "binary": BOOL, "additions": INT, "deletions": INT, "old_mode": nullable(STRING), "new_mode": nullable(STRING),
    "risks": {"type": "array", "items": STRING}, "hunks": {"type": "array", "items": _HUNK},
}, {"path_base64": STRING, "old_path_base64": nullable(STRING)})   # exact bytes; `path` shows others as \\xNN
_DIFF = _object({
    "attempt_id": STRING, "base_commit": STRING, "tree": STRING, "files": {"type": "array", "items": _FILE_DIFF},
    "nested_repositories": {"type": "array", "items": STRING}, "additions": INT, "deletions": INT,
    "risks": {"type": "array", "items": STRING},
}, {"text": STRING, "left_out": {"type": "array", "items": _object(
    {"path": STRING, "path_base64": STRING, "reason": STRING, "note": STRING})}})
_DIFFSTAT = _object({
    "attempt_id": STRING, "base_commit": STRING, "added": INT, "deleted": INT,
    "files": {"type": "array", "items": _object({"path": STRING, "added": nullable(INT), "deleted": nullable(INT),
                                                  "binary": BOOL})},
})
_COMMENT = _object({"id": INT, "attempt_id": STRING, "path": STRING, "line": INT, "text": STRING},
                   {"created_at": NUMBER, "sent_at": nullable(NUMBER)})
_COMPARE = _object({
    "card_id": STRING, "title": STRING, "usage": _USAGE, "overlap": {"type": "array", "items": STRING},
    "best": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
    "files": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
    "rows": {"type": "array", "items": _object({
        "attempt_id": STRING, "model": STRING, "state": _enum(State), "files_changed": nullable(INT),
        "additions": nullable(INT), "deletions": nullable(INT), "checks_failing": BOOL, "steps": INT,
        "tool_calls": INT, "tokens": INT, "cost_usd": nullable(NUMBER), "wall_seconds": nullable(NUMBER),
        "files": {"type": "array", "items": STRING}}, {"agent": STRING})},
})
# count: every card of the column, also when `?per_column=N` sends only its newest N
_BOARD = _object({"columns": {"type": "array", "items": _object({
    "id": _enum(Column), "title": STRING, "cards": {"type": "array", "items": ref("Card")}}, {"count": INT})}})
_APPROVAL = _object({
    "attempt": ref("Attempt"), "commit": STRING, "branch": STRING, "discarded": {"type": "array", "items": STRING},
    "merge": nullable(_object({"branch": STRING, "head": STRING, "fast_forward": BOOL,
                               "worktree_updated": nullable(STRING), "checkout": nullable(STRING),
                               "note": STRING})),
})
_SHELL = _object({"container": STRING, "container_id": STRING, "user": STRING, "workdir": STRING,
                  "worktree": STRING})
_STATUS = _object({"version": STRING, "pid": INT, "instance": STRING, "max_parallel": INT, "running": INT,
                   "queued": INT, "litellm_ready": BOOL, "last_event_id": INT},
                  {"disk": _object({"data_dir": STRING, "free_bytes": INT, "min_free_bytes": INT,
                                    "below_floor": BOOL})})
_META = _object({
    "states": {"type": "array", "items": _enum(State)}, "live_states": {"type": "array", "items": _enum(State)},
    "final_states": {"type": "array", "items": _enum(State)}, "steps": {"type": "array", "items": _enum(Step)},
    "event_kinds": {"type": "array", "items": _enum(EventKind)},
    "columns": {"type": "array", "items": _object({"id": _enum(Column), "title": STRING})},
})
# what a card made of its repository's .kilod.toml (kilod.trust.SettingsSource)
_SETTINGS_SOURCE = _object({"file": STRING, "exists": BOOL, "sha256": nullable(STRING), "trusted": BOOL,
                            "ignored": {"type": "array", "items": STRING}, "error": nullable(STRING),
                            "note": nullable(STRING)}, {"files": {"type": "array", "items": STRING}})
# GET/POST/DELETE /v1/repos/trust (kilod.trust.TrustView)
_SANDBOX_FILE = _object({"path": STRING, "exists": BOOL, "content": nullable(STRING), "sha256": nullable(STRING),
                         "error": nullable(STRING)})
_TRUST = _object({"repo": STRING, "file": STRING, "exists": BOOL, "content": nullable(STRING),
                  "sha256": nullable(STRING), "files": {"type": "array", "items": _SANDBOX_FILE},
                  "trusted": BOOL, "widening": {"type": "array", "items": STRING},
                  "settings": nullable({"type": "object"}), "error": nullable(STRING),
                  "trusted_hashes": {"type": "array", "items": _object({"sha256": STRING, "trusted_at": NUMBER})}},
                 {"base": STRING,
                  "inputs": {"type": "array", "items": _object({"path": STRING, "id": nullable(STRING)})}})
_ERROR = _object({"error": _object({"status": INT, "message": STRING}, {"reason": STRING})})


def component_schemas() -> dict[str, Schema]:
    schemas: dict[str, Schema] = {
        "Error": _ERROR, "Card": _CARD, "Attempt": _ATTEMPT, "Event": _EVENT, "Diff": _DIFF,
        "Diffstat": _DIFFSTAT, "Comment": _COMMENT, "Compare": _COMPARE, "Board": _BOARD, "Approval": _APPROVAL,
        "Shell": _SHELL, "Status": _STATUS, "Meta": _META, "SettingsSource": _SETTINGS_SOURCE, "Trust": _TRUST,
        "FollowUp": {"allOf": [ref("Attempt"), _object({"follow_from_seq": INT})]},
    }
    for model in REQUEST_MODELS:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))  # nested models become components of their own
        schemas[model.__name__] = schema
    return schemas
