"""/metrics after a real scripted card: parses, moves by the expected amounts, carries no ids."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.kilod_testing import DaemonProcess, UnixHTTPConnection

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(daemon: DaemonProcess) -> str:
    connection = UnixHTTPConnection(daemon.socket)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/plain")
    return text


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_as_a_scripted_card_runs_and_carry_no_ids(daemon: DaemonProcess, repo: Path) -> None:
    before = samples(scrape_text(daemon))
    card = daemon.request("POST", "/v1/cards", {"prompt": "hello", "repo": str(repo), "models": ["scripted/hello"]})
    attempt_id = card["attempts"][0]["id"]
    attempt = daemon.wait_state(attempt_id, "review")
    text = scrape_text(daemon)
    after = samples(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    model = "scripted/hello"
    assert value(after, "kilod_build_info", version="0.1.0") == 1
    assert delta("kilod_attempts_started_total", model=model) == 1
    assert delta("kilod_attempts_finished_total", model=model, outcome="review") == 1
    assert delta("kilod_attempt_duration_seconds_count", outcome="review") == 1
    assert delta("kilod_queue_wait_seconds_count") == 1
    assert delta("kilod_container_start_seconds_count") == 1
    assert delta("kilod_worktree_create_seconds_count") == 1
    assert delta("kilod_model_calls_total", model=model, outcome="ok", agent="builtin") == 4
    assert delta("kilod_model_call_duration_seconds_count", model=model, agent="builtin") == 4
    assert delta("kilod_model_tokens_total", model=model, direction="input", agent="builtin") == attempt["tokens_in"]
    assert delta("kilod_model_tokens_total", model=model, direction="output", agent="builtin") == attempt["tokens_out"]
    assert delta("kilod_model_unpriced_calls_total", model=model, agent="builtin") == 4  # no made-up cost
    assert delta("kilod_model_cost_usd_total", model=model, agent="builtin") == 0
    for tool in ("list_files", "write_file", "shell", "finish"):
        assert delta("kilod_tool_calls_total", tool=tool, outcome="ok") == 1, tool
        assert delta("kilod_tool_call_duration_seconds_count", tool=tool) == 1, tool
    assert value(after, "kilod_attempts", state="review") == 1
    assert value(after, "kilod_cards", column="review") == 1
    assert value(after, "kilod_slots") == 4

    label_values = {v for _, labels in after for _, v in labels}
    assert not any(card["id"] in v or attempt_id in v for v in label_values)


def test_promtool_finds_nothing_wrong(daemon: DaemonProcess, repo: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is not installed (Debian's prometheus package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    card = daemon.request("POST", "/v1/cards", {"prompt": "hello", "repo": str(repo), "models": ["scripted/hello"]})
    daemon.wait_state(card["attempts"][0]["id"], "review")
    checked = subprocess.run([promtool, "check", "metrics"], input=scrape_text(daemon), capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def test_a_follow_up_is_a_run_not_another_finished_attempt(daemon: DaemonProcess, repo: Path) -> None:
    model = "scripted/reviewed"
    before = samples(scrape_text(daemon))
    card = daemon.request("POST", "/v1/cards", {"prompt": "review me", "repo": str(repo), "models": [model]})
    attempt_id = card["attempts"][0]["id"]
    first = daemon.wait_state(attempt_id, "review")
    time.sleep(2.0)  # a person reads the diff: waiting in review is not running time
    daemon.request("POST", f"/v1/attempts/{attempt_id}/messages", {"text": "carry on, please"})
    done = daemon.wait_state(attempt_id, "review")
    assert done["run"] == 2
    # the first run's summary is kept; the time counts only running
    assert first["summary"] == "first pass" and done["summaries"] == ["first pass"]
    assert done["summary"] == "second pass"
    assert done["review_seconds"] >= 2.0
    assert done["running_seconds"] <= done["finished_at"] - done["started_at"] - 2.0
    after = samples(scrape_text(daemon))

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    started = delta("kilod_attempts_started_total", model=model)
    finished = sum(delta("kilod_attempts_finished_total", model=model, outcome=o)
                   for o in ("review", "failed", "cancelled"))
    assert started == 1 and finished == 1  # finished never exceeds started
    assert delta("kilod_attempt_duration_seconds_count", outcome="review") == 1
    assert delta("kilod_attempt_runs_total", model=model, outcome="review") == 2
    assert delta("kilod_follow_ups_total", model=model) == 1
