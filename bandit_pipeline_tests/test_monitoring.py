"""The CTR alert and the kill switch on real warehouses and stores, end to end with serving."""

from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest

from bandit_pipeline.monitoring.alerts import AlertThresholds, evaluate_ctr_alerts, webhook_notifier
from bandit_pipeline.monitoring.killswitch import (
    KillSwitchPolicy,
    evaluate_killswitch,
    killswitch_events,
    reset_killswitch,
)
from bandit_pipeline.monitoring.rollups import materialise_metrics
from bandit_pipeline.online_store import Snapshot
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.settings import load_settings
from bandit_pipeline_tests.helpers import PARAMS, START, as_of, load_events, reset, rows, traffic

THRESHOLDS = AlertThresholds(ctr_ratio=0.5, min_explore_impressions=100)
POLICY = KillSwitchPolicy(mode="relative", threshold=0.25, min_explore_impressions=100)


def run_windows(engine, events, first, last):
    load_events(engine, events)
    for window in range(first, last + 1):
        materialise_metrics(engine, as_of(window), PARAMS, "default")


class Webhook:
    """A local webhook receiver; fails the first ``failures`` posts with a 500."""

    def __init__(self, failures: int = 0):
        self.failures, self.received = failures, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if owner.failures > 0:
                    owner.failures -= 1
                    self.send_response(500)
                else:
                    owner.received.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def webhook():
    hook = Webhook(failures=1)
    yield hook
    hook.close()


def test_bad_exploration_alerts_after_an_hour_trips_the_switch_and_reset_restores(
    engine, store, webhook
):
    reset(engine)
    notify = webhook_notifier(webhook.url, attempts=3)
    store.publish(
        Snapshot("default", "home", "v1", START, None, ("new-1", "new-2"), np.ones(2), np.ones(2))
    )
    store.set_flag("default", "bandit_exploration_enabled", "true")
    settings = load_settings(online_store_url="sqlite:///unused.db")
    service = ExplorationService(settings, store, background=False)
    request = DecisionRequest("default", "home", "u1", "r1", [f"r{i}" for i in range(6)])
    assert service.decide(request).trace.explored

    opened_at = None
    for window in range(4):  # exploration CTR 1% against 20% baseline
        run_windows(engine, traffic(window, 0.01, 0.20), window, window)
        changes = evaluate_ctr_alerts(engine, "default", as_of(window), THRESHOLDS, notify)
        evaluate_killswitch(engine, store, "default", as_of(window), POLICY)
        if any(c.action == "opened" for c in changes):
            opened_at = window
    assert opened_at == 3  # only once the whole hour was bad
    assert len(webhook.received) == 1  # delivered on the retry after one failure
    assert webhook.received[0]["surface"] == "home"
    alerts = rows(engine, "SELECT surface, resolved_at, notified_at FROM bandit_alerts")
    assert len(alerts) == 1
    assert alerts[0][1] is None
    assert alerts[0][2] is not None
    events = killswitch_events(engine, "default")
    assert [(e.surface, e.action) for e in events] == [("home", "trip")]
    assert "below 0.25 x baseline" in events[0].reason

    # Serving stops exploring within one refresh.
    service.state.refresh()
    trace = service.decide(request).trace
    assert (trace.explored, trace.reason) == (False, "kill_switch")

    # A repeated evaluation (a restarted sensor) neither re-opens, re-sends nor re-trips.
    assert evaluate_ctr_alerts(engine, "default", as_of(3), THRESHOLDS, notify) == []
    assert evaluate_killswitch(engine, store, "default", as_of(3), POLICY) == []
    assert len(webhook.received) == 1

    # The switch stays tripped until reset; reset restores exploration.
    reset_killswitch(engine, store, "default", "home", "fixed the ranking bug", "operator")
    service.state.refresh()
    assert service.decide(
        DecisionRequest("default", "home", "u2", "r2", request.items)
    ).trace.explored
    assert [e.action for e in killswitch_events(engine, "default")] == ["reset", "trip"]

    # Exploration recovers for an hour: the alert resolves.
    for window in range(4, 8):
        run_windows(engine, traffic(window, 0.20, 0.20), window, window)
        evaluate_ctr_alerts(engine, "default", as_of(window), THRESHOLDS, notify)
    resolved = rows(engine, "SELECT resolved_at FROM bandit_alerts")
    assert resolved[0][0] is not None
    assert len(webhook.received) == 1  # once per episode
    service.close()


def test_noise_below_the_minimum_impressions_alerts_and_trips_nothing(engine, store):
    reset(engine)
    for window in range(4):
        run_windows(engine, traffic(window, 0.0, 0.5, n_explore=20, n_baseline=100), window, window)
        assert evaluate_ctr_alerts(engine, "default", as_of(window), THRESHOLDS) == []
        assert evaluate_killswitch(engine, store, "default", as_of(window), POLICY) == []
    assert store.killswitch("default", "home") is None


def test_one_bad_window_is_not_an_hour(engine, store):
    reset(engine)
    for window in range(4):
        explore_ctr = 0.01 if window != 2 else 0.25
        run_windows(engine, traffic(window, explore_ctr, 0.20), window, window)
        assert evaluate_ctr_alerts(engine, "default", as_of(window), THRESHOLDS) == []


def test_absolute_policy_and_an_unreachable_webhook(engine, store):
    reset(engine)
    run_windows(engine, traffic(0, 0.02, 0.02, n_explore=150), 0, 0)
    absolute = KillSwitchPolicy(mode="absolute", threshold=0.5, min_explore_impressions=100)
    assert evaluate_killswitch(engine, store, "default", as_of(0), POLICY) == []  # same as baseline
    assert [
        c.action for c in evaluate_killswitch(engine, store, "default", as_of(0), absolute)
    ] == ["trip"]
    notify = webhook_notifier("http://127.0.0.1:1/nowhere", attempts=2, timeout=0.5)
    assert notify({"text": "x"}) is False  # logged, never raised


def test_a_tripped_switch_stays_tripped_through_a_good_hour(engine, store):
    """The documented policy: no re-arming by itself, only a deliberate reset."""
    reset(engine)
    for window in range(4):
        run_windows(engine, traffic(window, 0.0, 0.3, n_explore=60), window, window)
    assert [c.action for c in evaluate_killswitch(engine, store, "default", as_of(3), POLICY)] == [
        "trip"
    ]
    for window in range(4, 8):
        run_windows(engine, traffic(window, 0.4, 0.3, n_explore=60), window, window)
        assert evaluate_killswitch(engine, store, "default", as_of(window), POLICY) == []
    assert store.killswitch("default", "home").tripped
