"""Runs in the helm venv (Python >= 3.12): Helm's lint and offline render for the tests.

stdin: a JSON list of requests, `{"action": "lint", "chart": DIR}` (helm-sdkpy) or
`{"action": "render", "chart": DIR, "values": {...}, "name": ..., "namespace": ...}`
(helm-python-sdk). stdout: a JSON list of answers; a Helm error is an answer
(`{"error": "...", "kind": "..."}`), not a crash.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


def lint(chart: str) -> dict[str, Any]:
    import helm_sdkpy

    result: dict[str, Any] = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(chart))
    return {"lint": result}


def render(chart: str, values: dict[str, Any] | None, name: str, namespace: str) -> dict[str, Any]:
    from helm_python.chart import Chart

    with Chart.load(chart) as loaded:
        return {"manifests": loaded.render(values=values, name=name, namespace=namespace, is_install=True)}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    try:
        if request["action"] == "lint":
            return lint(request["chart"])
        if request["action"] == "render":
            return render(request["chart"], request.get("values"), request.get("name", "kilod"),
                          request.get("namespace", "default"))
        return {"error": f"unknown action {request['action']!r}", "kind": "usage"}
    except Exception as exc:  # Helm's errors come back as data
        return {"error": str(exc), "kind": type(exc).__name__}


def main() -> int:
    requests = json.load(sys.stdin)
    json.dump([answer(r) for r in requests], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
