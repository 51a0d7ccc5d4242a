"""The Grafana dashboard: what Grafana needs, and only metrics a live daemon exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
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
    assert model["query"]["query"] == (
        'label_values(kilod_model_calls_total{job=~"$job", instance=~"$instance"}, model)')
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
                   "kilod_model_tokens_total", "kilod_model_cost_usd_total",
                   'kilod_tool_calls_total{job=~"$job", instance=~"$instance", outcome="error"}',
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


SELECTOR = re.compile(r'(?<![A-Za-z0-9_:])(kilod_[A-Za-z0-9_:]*)(\{[^}]*\})?')


def test_every_query_is_scoped_to_one_job_and_instance() -> None:
    """Several daemons scraped by one Prometheus are never summed: each query names $job and $instance."""
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["job"]["query"]["query"] == "label_values(kilod_build_info, job)"
    instance = variables["instance"]
    assert instance["query"]["query"] == 'label_values(kilod_build_info{job=~"$job"}, instance)'
    assert instance["multi"] is False and instance["includeAll"] is False  # one daemon at a time
    unscoped = []
    for where, expr in queries(board).items():
        if where == "variable job":
            continue
        wanted = ['job=~"$job"'] if where == "variable instance" else ['job=~"$job"', 'instance=~"$instance"']
        for match in SELECTOR.finditer(expr):
            if not all(w in (match.group(2) or "") for w in wanted):
                unscoped.append(f"{where}: {match.group(0)}")
    assert unscoped == []


def test_per_minute_rates_say_so_and_cost_shows_zero_not_no_data() -> None:
    for panel in all_panels(dashboard()["panels"]):
        exprs = [t["expr"] for t in panel.get("targets", [])]
        per_minute = [e for e in exprs if re.search(r"\*\s*60\s*$", e)]
        if per_minute:
            assert len(per_minute) == len(exprs), panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"] == "opm", panel["title"]
        if "kilod_model_cost_usd_total" in " ".join(exprs) or "kilod_model_unpriced_calls_total" in " ".join(exprs):
            assert all(e.rstrip().endswith("or vector(0)") for e in exprs), panel["title"]


def test_throughput_counts_attempts_once_and_runs_apart() -> None:
    exprs = " ".join(queries(dashboard()).values())
    assert "rate(kilod_attempt_runs_total{" in exprs and "rate(kilod_follow_ups_total{" in exprs


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", '"$model"': '".*"', '"$job"': '"kilod"',
                     '"$instance"': '"one:8765"'}


def promql(expr: str) -> str:
    """A dashboard query as Prometheus would get it from Grafana (variables filled in)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian's prometheus package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_queries_parse_and_cost_is_zero_before_any_priced_call(tmp_path: Path) -> None:
    """promtool evaluates the panels' PromQL against two daemons' series: each query parses, a cost panel
    says 0 (not "No data") while nothing was priced, and one instance's figures leave the other's out."""
    exprs = {where: promql(expr) for where, expr in queries(dashboard()).items() if where.startswith("panel")}
    cost = {where: expr for where, expr in exprs.items() if "kilod_model_cost_usd_total" in expr}
    slots = next(expr for expr in exprs.values() if expr.startswith("sum(kilod_slots{"))
    series = [
        {"series": 'kilod_build_info{job="kilod", instance="one:8765", version="0.1.0"}', "values": "1x30"},
        {"series": 'kilod_slots{job="kilod", instance="one:8765"}', "values": "4x30"},
        {"series": 'kilod_slots{job="kilod", instance="two:8765"}', "values": "8x30"},
        {"series": 'kilod_model_unpriced_calls_total{job="kilod", instance="one:8765", model="m"}', "values": "0+1x30"},
    ]
    tests = [{"expr": expr, "eval_time": "20m", "exp_samples": [{"labels": "{}", "value": 0}]}
             for expr in cost.values()]
    tests.append({"expr": slots, "eval_time": "20m", "exp_samples": [{"labels": "{}", "value": 4}]})
    rules = tmp_path / "rules.yml"
    rules.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs.values())]}]}))
    spec = tmp_path / "test.yml"
    spec.write_text(json.dumps({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": tests}]}))
    checked = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", str(spec)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert len(cost) >= 2
