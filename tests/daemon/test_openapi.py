"""The OpenAPI document describes exactly the routes the API serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kilod.api import Api, Services
from kilod.config import Settings
from kilod.environments.routes import EnvironmentRoutes
from kilod.openapi import OPENAPI
from kilod.web.server import WebBoard


def served_routes() -> set[tuple[str, str]]:
    none: Any = None
    services = Services(none, none, none, none, none, none, none, none, none)
    api = Api(services, on_change=lambda: None, on_shutdown=lambda: None, status=dict)
    environments = EnvironmentRoutes(none, none, Path("/nonexistent"), 0.0)  # served on the unix socket too
    return {(route.method.lower(), route.path)  # type: ignore[attr-defined]
            for route in [*api.routes(), *environments.routes()]}


def test_every_served_route_is_documented_and_nothing_else() -> None:
    documented = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    settings = Settings(data_dir=Path("/nonexistent"), http="127.0.0.1:8765")
    none: Any = None
    unix_only = {(r.method.lower(), r.path) for r in WebBoard(settings, none).unix_routes()}  # type: ignore[attr-defined]
    assert served_routes() | unix_only == documented


def test_every_documented_operation_has_a_summary_and_responses() -> None:
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("responses"), (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path, (method, path, parameter["name"])
