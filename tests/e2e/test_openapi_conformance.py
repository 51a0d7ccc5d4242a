"""Real responses from a real daemon validate against the OpenAPI document it serves.

Every route is exercised through a card's whole life (create, run, diff, comment,
follow-up, shell, approve, retry, cancel, discard, pause, resume) and its error answers, and each
JSON body is checked against the schema the document declares for that route and
status. The requests sent are checked against the request schemas too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.kilod_testing import DaemonProcess, UnixHTTPConnection, git

DOCUMENT = "urn:kilod:openapi"


class Conformance:
    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.document: dict[str, Any] = daemon.request("GET", "/v1/openapi.json")
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT, Resource.from_contents(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **self.document}))
        self.checked: set[tuple[str, str, str]] = set()

    def _validate(self, pointer: str, instance: Any) -> None:
        validator = Draft202012Validator({"$ref": f"{DOCUMENT}#{pointer}"}, registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])

    def _send(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        connection = UnixHTTPConnection(self.daemon.socket)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def call(self, method: str, template: str, status: int, body: Any = None, query: str = "",
             **params: str) -> Any:
        """Send the request, check it, and check the answer against the document; the answer."""
        operation = self.document["paths"][template][method.lower()]
        escaped = "/paths/" + template.replace("~", "~0").replace("/", "~1") + f"/{method.lower()}"
        if body is not None and "requestBody" in operation and status < 400:  # a 4xx is sent bad on purpose
            self._validate(f"{escaped}/requestBody/content/application~1json/schema", body)
        got, answer = self._send(method, template.format(**params) + query, body)
        assert got == status, (method, template, got, answer)
        expected_status = str(status)
        assert expected_status in operation["responses"], f"{method} {template} answers {status}, undocumented"
        self._validate(f"{escaped}/responses/{expected_status}/content/application~1json/schema", answer)
        self.checked.add((method.lower(), template, expected_status))
        return answer


@pytest.fixture
def conformance(daemon: DaemonProcess) -> Conformance:
    return Conformance(daemon)


def test_every_response_matches_the_served_document(conformance: Conformance, daemon: DaemonProcess,
                                                    repo: Path) -> None:
    c = conformance
    c.call("GET", "/healthz", 200)
    c.call("GET", "/v1/status", 200)
    meta = c.call("GET", "/v1/meta", 200)
    assert "paused" in meta["states"] and {"id": "doing", "title": "Doing"} in meta["columns"]

    card = c.call("POST", "/v1/cards", 201, {"prompt": "write notes", "repo": str(repo),
                                             "models": ["scripted/reviewed"], "repeat": 2,
                                             "budget": {"tokens": 1_000_000}})
    first, second = (a["id"] for a in card["attempts"])
    for attempt_id in (first, second):
        daemon.wait_state(attempt_id, "review")

    c.call("GET", "/v1/cards", 200)
    c.call("GET", "/v1/cards/{card_id}", 200, card_id=card["id"])
    c.call("GET", "/v1/board", 200)
    c.call("GET", "/v1/attempts/{attempt_id}", 200, attempt_id=first)
    c.call("GET", "/v1/attempts/{attempt_id}/events", 200, attempt_id=first)
    c.call("GET", "/v1/events", 200)
    diff = c.call("GET", "/v1/attempts/{attempt_id}/diff", 200, attempt_id=first)
    assert [f["path"] for f in diff["files"]] == ["notes.txt"]
    stat = c.call("GET", "/v1/attempts/{attempt_id}/diffstat", 200, attempt_id=first)
    assert stat["files"] == [{"path": "notes.txt", "added": 2, "deleted": 0, "binary": False}]
    c.call("GET", "/v1/cards/{card_id}/compare", 200, card_id=card["id"])

    c.call("POST", "/v1/attempts/{attempt_id}/comments", 201, {"path": "notes.txt", "line": 1, "text": "why?"},
           attempt_id=first)
    c.call("GET", "/v1/attempts/{attempt_id}/comments", 200, attempt_id=first)
    c.call("POST", "/v1/attempts/{attempt_id}/messages", 202, {"text": "once more"}, attempt_id=first)
    daemon.wait_state(first, "review")
    c.call("POST", "/v1/attempts/{attempt_id}/shell", 200, attempt_id=second)

    tree = c.call("GET", "/v1/attempts/{attempt_id}/diff", 200, attempt_id=first)["tree"]
    approval = c.call("POST", "/v1/attempts/{attempt_id}/approve", 200, {"merge": True, "tree": tree},
                      attempt_id=first)
    assert approval["discarded"] == [second]
    retried = c.call("POST", "/v1/attempts/{attempt_id}/retry", 201, attempt_id=second)
    c.call("POST", "/v1/attempts/{attempt_id}/cancel", 200, attempt_id=retried["id"])
    c.call("POST", "/v1/attempts/{attempt_id}/discard", 200, attempt_id=retried["id"])

    # pause (after the call in flight) and resume, the built-in agent's
    slow = c.call("POST", "/v1/cards", 201,
                  {"prompt": "take notes", "repo": str(repo), "models": ["scripted/resumable"]})
    paused_id = slow["attempts"][0]["id"]
    daemon.wait_for(lambda: any(e["kind"] == "tool_call" for e in daemon.events(paused_id)), what="a tool call")
    c.call("POST", "/v1/attempts/{attempt_id}/pause", 202, attempt_id=paused_id)
    daemon.wait_state(paused_id, "paused")
    c.call("POST", "/v1/attempts/{attempt_id}/resume", 202, {"text": "go on"}, attempt_id=paused_id)
    daemon.wait_state(paused_id, "review")

    shown = c.call("GET", "/v1/repos/trust", 200, query=f"?repo={repo}")
    c.call("POST", "/v1/repos/trust", 409, {"repo": str(repo), "sha256": "0" * 64})  # no .kilod.toml to trust
    c.call("DELETE", "/v1/repos/trust", 200, query=f"?repo={repo}")
    (repo / ".kilod.toml").write_text("network = true\n")
    git(repo, "add", ".kilod.toml")
    git(repo, "commit", "-qm", "settings")  # sandbox files are read from commits
    shown = c.call("GET", "/v1/repos/trust", 200, query=f"?repo={repo}")
    assert c.call("POST", "/v1/repos/trust", 200, {"repo": str(repo), "sha256": shown["sha256"]})["trusted"]

    # environments: caches, images, disk and gc (kilod.environments.routes)
    caches = c.call("GET", "/v1/caches", 200)
    assert {c["tool"] for c in caches["caches"]} >= {"pip", "npm"}
    c.call("GET", "/v1/images", 200)
    c.call("GET", "/v1/disk", 200)
    c.call("POST", "/v1/gc", 200, {"idle_after": 0})
    c.call("DELETE", "/v1/caches", 200)
    c.call("DELETE", "/v1/images", 200)
    c.call("POST", "/v1/gc", 400, {"idle_after": -1})

    # and the errors: each a documented status with the Error shape
    missing = c.call("GET", "/v1/attempts/{attempt_id}", 404, attempt_id="nope-1")
    bad = c.call("POST", "/v1/cards", 400, {"prompt": "", "repo": str(repo)})
    late = c.call("POST", "/v1/attempts/{attempt_id}/approve", 409, {"tree": tree}, attempt_id=first)
    assert [e["error"]["reason"] for e in (missing, bad, late)] == ["not_found", "invalid", "conflict"]
    c.call("GET", "/v1/attempts/{attempt_id}/diff", 409, attempt_id=first)

    # cards off the board: archived, back, deleted (approved work stays), then gone
    c.call("POST", "/v1/cards/{card_id}/archive", 200, card_id=card["id"])
    c.call("POST", "/v1/cards/{card_id}/unarchive", 200, card_id=card["id"])
    deleted = c.call("DELETE", "/v1/cards/{card_id}", 200, card_id=card["id"])
    assert deleted["kept_branches"] == [f"kilod/{first}"]
    c.call("DELETE", "/v1/cards/{card_id}", 404, card_id=card["id"])

    documented = {(m, p) for p, item in c.document["paths"].items() for m in item}
    exercised = {(m, p) for m, p, _ in c.checked}
    not_json = {("get", "/metrics"), ("get", "/v1/openapi.json"), ("post", "/v1/shutdown"),
                ("post", "/v1/web/login")}
    assert documented - not_json - exercised == set()
