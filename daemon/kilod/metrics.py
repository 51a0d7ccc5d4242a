"""Prometheus metrics: `kilod_` prefix, base units, bounded labels (never a card or attempt id).

Counters and histograms are moved where things happen (lifecycle, pipeline, model
calls, tools); gauges of what exists (attempts by state, cards by column) are read
from the store at scrape time, so they are right after a restart too.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kilod import __version__
from kilod.domain import RESTING_STATES, Attempt, Column, State, column_of
from kilod.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# a minute-long attempt is typical, an hour is possible
LONG_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
SHORT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# the `agent` label of kilod_model_*: a bounded set, whatever name an attempt carries
AGENTS = ("builtin", "claude-code", "codex", "aider", "mini-swe-agent", "other")


def agent_label(agent: str) -> str:
    return agent if agent in AGENTS else "other"


class _StateCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        attempts = self.store.all_attempts()
        by_state = GaugeMetricFamily("kilod_attempts", "Attempts by state.", labels=["state"])
        for state in State:
            by_state.add_metric([str(state)], sum(1 for a in attempts if a.state == state))
        yield by_state
        states_by_card: dict[str, list[State]] = {}
        archived = {card.id for card in self.store.list_cards() if card.archived_at is not None}
        for attempt in attempts:
            if attempt.card_id not in archived:  # off the board: not counted in its columns
                states_by_card.setdefault(attempt.card_id, []).append(attempt.state)
        by_column = GaugeMetricFamily("kilod_cards", "Cards by board column (archived cards left out).",
                                      labels=["column"])
        columns = [column_of(states) for states in states_by_card.values()]
        for column in Column:
            by_column.add_metric([str(column)], sum(1 for c in columns if c == column))
        yield by_column


class Metrics:
    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("kilod_build", "kilod's version.", registry=r).info({"version": __version__})
        self.attempts_started = Counter("kilod_attempts_started_total", "Attempts that left the queue.",
                                        ["model"], registry=r)
        self.attempts_finished = Counter("kilod_attempts_finished_total",
                                         "Attempts that came to rest for the first time, by outcome (review, failed, "
                                         "cancelled); a follow-up's run is counted in kilod_attempt_runs_total.",
                                         ["model", "outcome"], registry=r)
        self.runs = Counter("kilod_attempt_runs_total",
                            "Agent runs that came to rest, by outcome: an attempt's first run and each follow-up.",
                            ["model", "outcome"], registry=r)
        self.follow_ups = Counter("kilod_follow_ups_total",
                                  "Follow-ups sent to attempts in review (each starts a run).", ["model"], registry=r)
        self.attempt_duration = Histogram("kilod_attempt_duration_seconds",
                                          "From leaving the queue to coming to rest.", ["outcome"],
                                          buckets=LONG_BUCKETS, registry=r)
        self.queue_wait = Histogram("kilod_queue_wait_seconds", "From creation to leaving the queue.",
                                    buckets=LONG_BUCKETS, registry=r)
        self.container_start = Histogram("kilod_container_start_seconds",
                                         "Creating (or adopting) and starting an attempt's container.",
                                         buckets=SHORT_BUCKETS, registry=r)
        self.worktree_create = Histogram("kilod_worktree_create_seconds", "Creating an attempt's git worktree.",
                                         buckets=SHORT_BUCKETS, registry=r)
        self.model_calls = Counter("kilod_model_calls_total", "Model calls by outcome (ok, error).",
                                   ["model", "outcome", "agent"], registry=r)
        self.model_latency = Histogram("kilod_model_call_duration_seconds", "Model call latency.", ["model", "agent"],
                                       buckets=(*SHORT_BUCKETS, 120, 300, 600), registry=r)
        self.tokens = Counter("kilod_model_tokens_total",
                              "Tokens by direction (input, output; cache_read, cache_write where reported).",
                              ["model", "direction", "agent"], registry=r)
        self.cost = Counter("kilod_model_cost_usd_total", "Model cost in US dollars, where the price is known.",
                            ["model", "agent"], registry=r)
        self.unpriced_calls = Counter("kilod_model_unpriced_calls_total",
                                      "Model calls whose cost is unknown (no price in litellm's map).",
                                      ["model", "agent"], registry=r)
        self.tool_calls = Counter("kilod_tool_calls_total", "Tool calls by tool and outcome (ok, error).",
                                  ["tool", "outcome"], registry=r)
        self.tool_duration = Histogram("kilod_tool_call_duration_seconds", "Tool call duration.", ["tool"],
                                       buckets=(*SHORT_BUCKETS, 120, 300), registry=r)
        self.checks = Counter("kilod_checks_total", "Repository checks by outcome (passed, failed, error).",
                              ["outcome"], registry=r)
        self.egress_refused = Counter("kilod_egress_refused_total",
                                      "Requests the egress proxy refused (host not on the allowlist, or not 443).",
                                      registry=r)
        self.errors = Counter("kilod_errors_total", "Errors by reason.", ["reason"], registry=r)
        self.running = Gauge("kilod_slots_in_use", "Attempts holding a max_parallel slot.", registry=r)
        self.slots = Gauge("kilod_slots", "max_parallel.", registry=r)
        if store is not None:
            r.register(_StateCollector(store))
        for outcome in ("ok", "error"):
            self.tool_calls.labels("shell", outcome)  # so dashboards see the series before the first call

    def transition(self, before: Attempt, after: Attempt) -> None:
        if after.state == State.STARTING and before.state == State.QUEUED:
            self.attempts_started.labels(after.model).inc()
            self.queue_wait.observe(max(0.0, (after.started_at or after.created_at) - after.created_at))
        if after.state == State.RUNNING and before.state == State.REVIEW:
            self.follow_ups.labels(after.model).inc()
        if after.state in RESTING_STATES and before.state not in RESTING_STATES:
            self.runs.labels(after.model, str(after.state)).inc()
            if after.run > 1 and after.review_seconds > 0:
                # a follow-up's run (it waited in review first): the attempt itself finished, and was timed,
                # when it first came to rest; fix rounds after failed checks are runs that never rested
                return
            self.attempts_finished.labels(after.model, str(after.state)).inc()
            if after.started_at is not None and after.finished_at is not None:
                self.attempt_duration.labels(str(after.state)).observe(max(0.0, after.finished_at - after.started_at))

    def render(self) -> bytes:
        return generate_latest(self.registry)
