"""The Grafana dashboard: what Grafana needs, and only metrics a live daemon exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.tools import CHART
from tests.kilod_testing import DaemonProcess, UnixHTTPConnection

DASHBOARD_FILE = CHART / "dashboards" / "kilod.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# A metric name: a kilod_ identifier not inside a string (strings are removed first) and
# not the tail of a longer identifier, ending where PromQL ends a name.
METRIC = re.compile(r"(?<![A-Za-z0-9_:])(kilod_[A-Za-z0-9_:]*)(?=\s*[{\[),]|\s|$)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def scrape_text(daemon: DaemonProcess) -> str:
    connection = UnixHTTPConnection(daemon.socket)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200, text
    return text


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels, rows' nested panels included."""
    found: list[dict[str, Any]] = []
    for panel in panels:
        found.append(panel)
        found.extend(all_panels(panel.get("panels", [])))
    return found


def metric_names(promql: str) -> set[str]:
    return set(METRIC.findall(STRING.sub('""', promql)))


def queries(board: dict[str, Any]) -> dict[str, str]:
    """Every PromQL expression of the dashboard, by where it is."""
    found: dict[str, str] = {}
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found[f"variable {variable['name']}"] = query["query"] if isinstance(query, dict) else query
    return found


def exported_names(text: str) -> set[str]:
    """Names a PromQL query may use against this scrape: sample names, and for each family
    the names its type implies (a histogram's _bucket/_sum/_count, a counter's _total),
    so series that exist but have no sample yet still count."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        elif family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "info":
            names.add(family.name + "_info")
        else:
            names.add(family.name)
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, model) (rate(kilod_model_call_duration_seconds_bucket'
            '{model=~"$model", job="kilod_not_a_metric"}[$__rate_interval]))) / kilod_slots '
            '+ on() group_left kilod_slots_in_use offset 5m')
    assert metric_names(expr) == {"kilod_model_call_duration_seconds_bucket", "kilod_slots", "kilod_slots_in_use"}
    assert metric_names("label_values(kilod_model_calls_total, model)") == {"kilod_model_calls_total"}
    assert metric_names("sum(rate(kilod_errors_total[5m]))") == {"kilod_errors_total"}
    assert metric_names('count by (version) (kilod_build_info)') == {"kilod_build_info"}
    assert metric_names('up{job="kilod"}') == set()


def test_dashboard_has_what_grafana_needs() -> None:
    board = dashboard()
    assert board["uid"] and len(board["uid"]) <= 40
    assert board["title"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    model = variables["model"]
    assert model["type"] == "query"
    assert model["datasource"]["uid"] == "${datasource}"
    assert model["query"]["query"] == "label_values(kilod_model_calls_total, model)"
    panels = all_panels(board["panels"])
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        assert panel["title"] and panel["targets"], panel
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        for target in panel["targets"]:
            assert target["refId"] and target["expr"].strip()
            assert target["datasource"]["uid"] == "${datasource}"
            assert metric_names(target["expr"]), f"{panel['title']}: no kilod metric in {target['expr']}"


def test_dashboard_covers_the_issue_panels() -> None:
    exprs = " ".join(queries(dashboard()).values())
    for needed in ("kilod_cards", "rate(kilod_attempts_finished_total", "histogram_quantile(0.5",
                   "histogram_quantile(0.95", "kilod_attempt_duration_seconds_bucket",
                   "kilod_queue_wait_seconds_bucket",
                   "kilod_model_tokens_total", "kilod_model_cost_usd_total", 'kilod_tool_calls_total{outcome="error"}',
                   "kilod_container_start_seconds_bucket", 'model=~"$model"'):
        assert needed in exprs, needed


def test_every_query_names_only_metrics_a_live_daemon_exports(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo), "models": ["scripted/hello"]})
    daemon.wait_state(card["attempts"][0]["id"], "review")
    exported = exported_names(scrape_text(daemon))
    missing = {where: sorted(metric_names(expr) - exported) for where, expr in queries(dashboard()).items()}
    missing = {where: names for where, names in missing.items() if names}
    assert missing == {}, f"queries name metrics /metrics does not export: {missing}"
    # the names checked are real ones: the histogram suffixes only exist for histograms
    assert "kilod_attempt_duration_seconds_bucket" in exported
    assert "kilod_cards_bucket" not in exported
