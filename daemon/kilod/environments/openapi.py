"""The OpenAPI paths of kilod.environments.routes, merged into the daemon's document (kilod.openapi)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_NAMES = {"type": "array", "items": {"type": "string"}}
_CACHE = {"type": "object", "required": ["name", "tool", "repo", "image_family", "path"], "properties": {
    "name": {"type": "string"}, "tool": {"type": "string", "description": "pip, uv, npm, cargo, go, maven, "
                                                                           "gradle, or path (a caches entry)"},
    "repo": {"type": "string"}, "image_family": {"type": "string"}, "path": {"type": "string"},
    "size_bytes": {"type": ["integer", "null"]}, "in_use": {"type": ["integer", "null"]}}}
_IMAGE = {"type": "object", "required": ["id", "tags", "kind", "repo", "size_bytes"], "properties": {
    "id": {"type": "string"}, "tags": _NAMES, "repo": {"type": "string"}, "size_bytes": {"type": "integer"},
    "kind": {"type": "string", "description": "repository (built for one), or images/build.sh's name"},
    "created": {"type": "string"}}}
_REMOVED = {"type": "object", "required": ["removed", "in_use"], "properties": {
    "removed": _NAMES, "in_use": {**_NAMES, "description": "kept: a container still uses them"}}}


def _ok(schema: dict[str, Any], **errors: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
    for status, what in errors.items():
        responses[status.lstrip("_")] = {"description": what, "content": {"application/json": {"schema": _ERROR}}}
    return responses


PATHS: dict[str, Any] = {
    "/v1/caches": {
        "get": {"summary": "dependency cache volumes per repository, with sizes",
                "responses": _ok({"type": "object", "required": ["caches", "total_bytes"], "properties": {
                    "caches": {"type": "array", "items": _CACHE}, "total_bytes": {"type": "integer"}}},
                    _503="Docker is unavailable")},
        "delete": {"summary": "remove cache volumes no container uses (?repo=PATH: one repository's)",
                   "parameters": [{"name": "repo", "in": "query", "required": False, "schema": {"type": "string"}}],
                   "responses": _ok(_REMOVED, _400="bad input", _503="Docker is unavailable")},
    },
    "/v1/images": {
        "get": {"summary": "images kilod built: repositories' sandbox images and images/build.sh's",
                "responses": _ok({"type": "object", "required": ["images"], "properties": {
                    "images": {"type": "array", "items": _IMAGE}}}, _503="Docker is unavailable")},
        "delete": {"summary": "remove repositories' images no container uses",
                   "responses": _ok(_REMOVED, _503="Docker is unavailable")},
    },
    "/v1/gc": {
        "post": {"summary": "remove discarded attempts' leftovers and idle resting attempts' containers",
                 "requestBody": {"required": False, "content": {"application/json": {"schema": {
                     "type": "object", "additionalProperties": False, "properties": {
                         "idle_after": {"type": "number", "minimum": 0,
                                        "description": "seconds without activity (default KILOD_GC_IDLE_AFTER)"}}}}}},
                 "responses": _ok({"type": "object", "required": ["worktrees_removed", "containers_removed",
                                                                  "errors", "idle_after"], "properties": {
                     "worktrees_removed": _NAMES, "containers_removed": _NAMES, "errors": _NAMES,
                     "idle_after": {"type": "number"}}}, _400="bad input")},
    },
    "/v1/disk": {
        "get": {"summary": "bytes in worktrees, cache volumes and the images kilod built",
                "responses": _ok({"type": "object", "properties": {
                    k: {"type": "integer"} for k in ("worktrees_bytes", "worktrees", "caches_bytes", "caches",
                                                     "images_bytes", "images", "base_images_bytes")}},
                    _503="Docker is unavailable")},
    },
}
