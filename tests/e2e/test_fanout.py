"""Many models, one prompt: parallel attempts, .kilod.toml setup/copy/checks, compare, cost, budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from kilod.repo_settings import RepoSettings
from tests.kilod_testing import ApiError, DaemonProcess, git, make_repo

KILOD_TOML = """\
setup = ["echo 'setup ok' > setup-ran.txt"]
copy = [".env"]
network = false
fix_rounds = 0  # the failing check must stay failed: these scripts have no fix to play

[[checks]]
name = "verdict"
run = "./verdict.sh"

[[checks]]
name = "setup-seen"
run = "test -f setup-ran.txt"
"""
MODELS = ["scripted/fan_pass", "scripted/fan_fail", "scripted/fan_error"]
PRICE_IN, PRICE_OUT = 0.000001, 0.000002


@pytest.fixture
def configured_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "configured", {
        "README.md": "# configured\n", ".kilod.toml": KILOD_TOML, ".gitignore": ".env\n",
    })
    (repo / ".env").write_text("SECRET_SETTING=local-only\n")  # untracked: must be copied, not committed
    return repo


def run_three(daemon: DaemonProcess, repo: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    shown = daemon.request("GET", f"/v1/repos/trust?repo={repo}")  # setup and copy apply once trusted
    daemon.request("POST", "/v1/repos/trust", {"repo": str(repo), "sha256": shown["sha256"]})
    card = daemon.request("POST", "/v1/cards", {"prompt": "fan out", "repo": str(repo), "models": MODELS})
    attempts = [daemon.wait_state(a["id"], "review", timeout=180) for a in card["attempts"]]
    return card, attempts


def test_three_models_run_in_parallel_each_in_its_own_worktree_container_and_branch(
    daemon: DaemonProcess, configured_repo: Path
) -> None:
    _, attempts = run_three(daemon, configured_repo)
    ids = [a["id"] for a in attempts]
    assert [a["model"] for a in attempts] == MODELS
    assert len({a["branch"] for a in attempts}) == 3 and len({a["worktree"] for a in attempts}) == 3
    for attempt in attempts:
        assert git(configured_repo, "branch", "--list", attempt["branch"]).strip()
    client = docker.from_env()
    containers = {c.labels["kilod.attempt"]: c.id
                  for c in client.containers.list(all=True, filters={"label": f"kilod.instance={daemon.instance}"})}
    assert set(containers) == set(ids) and len(set(containers.values())) == 3

    own = {"scripted/fan_pass": "pass.txt", "scripted/fan_fail": "fail.txt", "scripted/fan_error": "error.txt"}
    for attempt in attempts:
        worktree = Path(attempt["worktree"])
        present = {name for name in own.values() if (worktree / name).exists()}
        assert present == {own[attempt["model"]]}  # nothing leaks between attempts
        assert (worktree / "shared.txt").read_text() == f"{attempt['model'].split('/')[1]} was here\n"
        assert (worktree / ".env").read_text() == "SECRET_SETTING=local-only\n"
    assert not (configured_repo / "pass.txt").exists()

    running: set[str] = set()
    most = 0
    for event in daemon.request("GET", "/v1/events")["events"]:
        if event["kind"] == "state":
            if event["payload"]["to"] == "running":
                running.add(event["attempt_id"])
            elif event["payload"]["to"] in ("review", "failed", "cancelled"):
                running.discard(event["attempt_id"])
            most = max(most, len(running))
    assert most == 3


def test_setup_copy_checks_and_the_compare_table(daemon: DaemonProcess, configured_repo: Path) -> None:
    card, attempts = run_three(daemon, configured_repo)
    by_model = {a["model"]: a for a in attempts}
    for attempt in attempts:
        events = daemon.events(attempt["id"])
        kinds = [(e["kind"], e["payload"].get("step"), e["payload"].get("name")) for e in events]
        setup_at = kinds.index(("log", "setup", None))
        first_tool = next(i for i, k in enumerate(kinds) if k[0] == "tool_call")
        assert setup_at < first_tool  # setup ran before the agent
        first_result = next(e for e in events if e["kind"] == "tool_result")
        assert "setup ok" in first_result["payload"]["output"] and "local-only" in first_result["payload"]["output"]
        checks = [e["payload"] for e in events if e["kind"] == "check"]
        assert [c["name"] for c in checks] == ["verdict", "setup-seen"]
        assert events.index(next(e for e in events if e["kind"] == "check")) > first_tool  # checks after

    assert {m: a["checks"] for m, a in ((a["model"], daemon_card_attempt(daemon, card["id"], a["id"]))
                                        for a in attempts)} == {
        "scripted/fan_pass": {"passed": 2, "failed": 0, "error": 0, "total": 2, "failing": False},
        "scripted/fan_fail": {"passed": 1, "failed": 1, "error": 0, "total": 2, "failing": True},
        "scripted/fan_error": {"passed": 1, "failed": 0, "error": 1, "total": 2, "failing": True},
    }
    assert all(a["state"] == "review" for a in attempts)  # a failing check still waits for review

    compare = daemon.request("GET", f"/v1/cards/{card['id']}/compare")
    rows = {r["model"]: r for r in compare["rows"]}
    assert rows["scripted/fan_pass"]["checks_passed"] == 2 and rows["scripted/fan_pass"]["checks_failed"] == 0
    assert rows["scripted/fan_fail"]["checks_failed"] == 1 and rows["scripted/fan_fail"]["checks_error"] == 0
    assert rows["scripted/fan_error"]["checks_failed"] == 1 and rows["scripted/fan_error"]["checks_error"] == 1
    steps = {"scripted/fan_pass": 5, "scripted/fan_fail": 5, "scripted/fan_error": 4}
    usage = {"scripted/fan_pass": (100, 10), "scripted/fan_fail": (200, 20), "scripted/fan_error": (300, 30)}
    for model, row in rows.items():
        tokens_in, tokens_out = usage[model][0] * steps[model], usage[model][1] * steps[model]
        assert row["steps"] == steps[model] and row["tool_calls"] == steps[model]
        assert (row["tokens_in"], row["tokens_out"]) == (tokens_in, tokens_out)
        assert row["cost_usd"] == pytest.approx(tokens_in * PRICE_IN + tokens_out * PRICE_OUT)
        assert row["files_changed"] == len(row["files"])
    # .env is copied in but ignored by .gitignore: never part of a diff, so never committed
    assert set(rows["scripted/fan_pass"]["files"]) == {"pass.txt", "setup-ran.txt", "shared.txt", "verdict.sh"}
    assert compare["best"]["checks_passed"] == [by_model["scripted/fan_pass"]["id"]]
    assert compare["best"]["cost_usd"] == [by_model["scripted/fan_pass"]["id"]]
    assert compare["best"]["steps"] == [by_model["scripted/fan_error"]["id"]]
    assert compare["overlap"] == ["setup-ran.txt", "shared.txt", "verdict.sh"]
    assert compare["files"]["pass.txt"] == [by_model["scripted/fan_pass"]["id"]]
    total_cost = sum(r["cost_usd"] for r in rows.values())
    assert daemon.request("GET", f"/v1/cards/{card['id']}")["usage"]["cost_usd"] == pytest.approx(total_cost)


def daemon_card_attempt(daemon: DaemonProcess, card_id: str, attempt_id: str) -> dict[str, Any]:
    card = daemon.request("GET", f"/v1/cards/{card_id}")
    return next(a for a in card["attempts"] if a["id"] == attempt_id)


def test_a_token_budget_stops_the_attempt_at_the_limit(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "spend", "repo": str(repo), "models": ["scripted/budgeted"],
                                                "budget": {"tokens": 250}})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review")
    assert attempt["steps"] == 3  # 120, 240, 360 tokens: the third call crosses 250, no fourth
    assert attempt["tokens_in"] + attempt["tokens_out"] == 360
    assert attempt["stop_reason"] == "token budget of 250 reached (360 used)"
    assert attempt["summary"] == "stopped: token budget of 250 reached (360 used)"
    assert (Path(attempt["worktree"]) / "steps.txt").read_text() == "step 0\nstep 1\nstep 2\n"


def test_repeat_runs_the_same_model_n_times(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "best of three", "repo": str(repo),
                                                "models": ["scripted/hello"], "repeat": 3})
    assert [a["model"] for a in card["attempts"]] == ["scripted/hello"] * 3
    assert [a["n"] for a in card["attempts"]] == [1, 2, 3]


@pytest.mark.parametrize(("toml", "expected"), [
    ("setup = [\"ok\"\ncopy = 3\n", "TOML syntax error"),
    ("setup = []\ncolour = \"red\"\n", ".kilod.toml:2: colour: unknown key"),
    ("checks = \"lint\"\n", ".kilod.toml:1: checks: Input should be a valid list"),
    ("network = \"sometimes\"\n", ".kilod.toml:1: network: Value error, expected true, false or a list of host names"),
    ("\n\n[[checks]]\nname = \"x\"\nrun = 42\n", ".kilod.toml:5: checks.0.run: Input should be a valid string"),
    ("copy = [\"../outside\"]\n", ".kilod.toml:1: copy: Value error, copy glob '../outside' must stay inside"),
])
def test_a_bad_kilod_toml_blocks_no_card_and_is_named_with_file_key_and_line(
    daemon: DaemonProcess, tmp_path: Path, toml: str, expected: str
) -> None:
    # a broken file on main must not block the repository: cards run with the safe defaults and say why
    repo = make_repo(tmp_path / "bad", {"README.md": "# bad\n", ".kilod.toml": toml})
    card = daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo), "models": ["scripted/hello"]})
    error = card["settings_source"]["error"]
    assert str(repo / ".kilod.toml") in error
    assert expected in error, error
    # every key at its default; the network resolved to the daemon's default (none)
    assert card["settings"] == {**RepoSettings().to_json(), "network": False} and card["network"] is False
    daemon.wait_state(card["attempts"][0]["id"], "review")
    with pytest.raises(ApiError) as caught:  # what a person types is still checked strictly
        daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo), "models": ["scripted/hello"],
                                             "settings": {"network": "yes"}})
    assert caught.value.status == 400 and "settings" in caught.value.body["error"]["message"]
    assert git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/kilod").split() == [
        card["attempts"][0]["branch"]]


def test_a_cost_budget_stops_a_priced_model_at_the_limit(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "spend money", "repo": str(repo),
                                                "models": ["scripted/fan_pass"], "budget": {"cost_usd": 0.0002}})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review")
    # each call costs 100 * $0.000001 + 10 * $0.000002 = $0.00012: the second crosses $0.0002
    assert attempt["steps"] == 2
    assert attempt["cost_usd"] == pytest.approx(0.00024)
    assert attempt["stop_reason"] == "cost budget of $0.0002 reached ($0.00024 used)"
