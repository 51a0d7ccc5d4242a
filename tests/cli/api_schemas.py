"""The daemon's OpenAPI document as a judge of the fake daemon's canned answers.

The CLI tests answer with shapes written by hand; each answer is checked against the schema
the real daemon documents (kilod.openapi) for that method, path and status, so that when
the API changes shape the tests that still feed the CLI the old one fail.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from kilod.openapi import OPENAPI

ERROR_SCHEMA: dict[str, Any] = {"$ref": "#/components/schemas/Error"}


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")


TEMPLATES = [(path, _template(path)) for path in OPENAPI["paths"]]


def documented_path(path: str) -> str | None:
    """The OpenAPI path template a concrete request path falls under (query string ignored)."""
    bare = path.split("?", 1)[0]
    for template, pattern in TEMPLATES:
        if pattern.match(bare):
            return template
    return None


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    # The schema sits in a document with the components, so its `$ref`s resolve.
    return Draft202012Validator({**json.loads(schema_json), "components": OPENAPI["components"]})


def _schema_for(method: str, path: str, status: int) -> tuple[dict[str, Any] | None, str | None]:
    """(schema, problem): the documented JSON schema of this answer, or why there is none."""
    template = documented_path(path)
    bare = path.split("?", 1)[0]
    operation = OPENAPI["paths"].get(template or "", {}).get(method.lower()) if template else None
    if operation is None:
        return None, f"{method} {bare} is not in the daemon's OpenAPI document"
    response = operation["responses"].get(str(status))
    if response is None:
        if status >= 400:
            return ERROR_SCHEMA, None
        return None, f"the daemon's OpenAPI document has no {status} answer for {method} {template}"
    schema = (response.get("content") or {}).get("application/json", {}).get("schema")
    return schema, None


def problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with answering `method path` with `status` and JSON `body` ([] when nothing)."""
    schema, problem = _schema_for(method, path, status)
    if problem is not None:
        return [problem]
    if schema is None:
        return []  # documented without a JSON schema (text, metrics)
    validator = _validator(json.dumps(schema, sort_keys=True))
    return [f"{method} {path} → {status}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(body)]


def event_problems(data: str) -> list[str]:
    """An SSE frame's data against the documented Event schema."""
    try:
        event = json.loads(data)
    except ValueError:
        return []  # the tests that send broken frames mean to
    validator = _validator(json.dumps({"$ref": "#/components/schemas/Event"}))
    return [f"event {error.message}" for error in validator.iter_errors(event)]
