"""The HTTP service: validation as 422, the decision, health, metrics, and a property-based
API test generated from the OpenAPI schema (schemathesis)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from bandit_pipeline.identifiers import id_problem
from bandit_pipeline.online_store import Snapshot, open_store
from bandit_pipeline.serving import ExplorationService
from bandit_pipeline.serving.app import create_app
from bandit_pipeline.settings import load_settings
from bandit_pipeline_tests.helpers import free_port

GOOD = {
    "surface": "home",
    "user_id": "u1",
    "request_id": "r1",
    "items": [f"r{i}" for i in range(6)],
}


def build_app(tmp_path, **overrides):
    url = f"sqlite:///{tmp_path}/online.db"
    store = open_store(url)
    store.publish(
        Snapshot("default", "home", "v1", datetime.now(UTC), None, ("n1", "n2", "n3"),
                 np.ones(3), np.ones(3))
    )  # fmt: skip
    settings = load_settings(
        online_store_url=url, exploration_enabled=True, max_request_items=50, **overrides
    )
    service = ExplorationService(settings, store, background=False)
    return create_app(settings, service)


@pytest.fixture
def client(tmp_path):
    with TestClient(build_app(tmp_path)) as test_client:
        yield test_client


def test_decide_injects_an_exploration_item(client):
    response = client.post("/v1/decide", json=GOOD)
    assert response.status_code == 200
    body = response.json()
    explored = [item for item in body["items"] if item["explore"]]
    assert [item["slot"] for item in explored] == [2]
    assert explored[0]["item_id"] in {"n1", "n2", "n3"}
    assert body["trace"]["snapshot_version"] == "v1"
    assert len(body["items"]) == len(GOOD["items"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"surface": "home page!"}, "surface"),
        ({"items": [f"i{n}" for n in range(51)]}, "items"),
        ({"items": "r1"}, "items"),
        ({"user_id": 7}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"request_id": None}, "request_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, change, field):
    response = client.post("/v1/decide", json={**GOOD, **change})
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_the_api_docs_load_without_the_internet(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), f"/docs loads {asset} from elsewhere"
        response = client.get(asset)
        assert response.status_code == 200
        assert len(response.content) > 100
    assert "/openapi.json" in page.text
    assert client.get("/openapi.json").json()["info"]["title"] == "bandit exploration"


def test_health_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok", "store": "ok", "detail": None}
    client.post("/v1/decide", json=GOOD)
    text = client.get("/metrics").text
    assert 'bandit_explore_impressions_total{namespace="default",surface="home"}' in text
    assert "bandit_decisions_total" in text
    assert "bandit_snapshot_age_seconds" in text


def test_unexpected_failure_returns_the_ranker_items(tmp_path, monkeypatch):
    """A failure the decision does not expect (here: a bug in the store it was given)."""
    app = build_app(tmp_path)
    with TestClient(app) as test_client:
        monkeypatch.setattr(app.state.service.store, "exchange_exposures", lambda *a: 1 / 0)
        response = test_client.post("/v1/decide", json=GOOD)
    assert response.status_code == 200
    assert [i["item_id"] for i in response.json()["items"]] == GOOD["items"]
    assert response.json()["trace"]["reason"] == "internal_error"


def _breaks_the_id_rule(case) -> bool:
    """Whether a generated decision request holds an id the product's rule refuses."""
    if case.path != "/v1/decide" or not isinstance(case.body, dict):
        return False
    ids = [case.body.get("user_id"), case.body.get("request_id"),
           *(case.body.get("items") or []), *(case.body.get("candidates") or [])]  # fmt: skip
    return any(isinstance(v, str) and id_problem(v) is not None for v in ids)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema_and_never_fails(tmp_path, mode):
    """Requests generated from the OpenAPI schema, valid and invalid: never a 5xx, every
    response matches the schema, invalid bodies are refused with a 4xx."""
    app = build_app(tmp_path)
    with TestClient(app):  # the lifespan owns the service
        api = schemathesis.openapi.from_asgi("/openapi.json", app)
        strategies = [
            api[path][method].as_strategy(generation_mode=mode)
            for path, method in [("/v1/decide", "POST"), ("/healthz", "GET")]
        ]

        @given(case=st.one_of(strategies))
        @hypothesis_settings(
            max_examples=80, deadline=None, suppress_health_check=list(HealthCheck)
        )
        def check(case) -> None:
            response = case.call()
            assert response.status_code < 500, response.text
            if mode is GenerationMode.POSITIVE and _breaks_the_id_rule(case):
                # Printable characters only: wider than a JSON Schema pattern can say.
                assert response.status_code == 422, case.body
            elif mode is GenerationMode.POSITIVE:
                case.validate_response(response)
            elif case.path == "/v1/decide":
                assert 400 <= response.status_code < 500, case.body

        check()


def test_serve_command_answers_over_http(tmp_path):
    """`bandit-pipeline serve` on a loopback port: health, a decision, JSON trace lines."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    url = f"sqlite:///{tmp_path}/online.db"
    open_store(url).publish(
        Snapshot("default", "home", "v7", datetime.now(UTC), None, ("n1",), np.ones(1), np.ones(1))
    )
    env = {**os.environ, "BANDIT_ONLINE_STORE_URL": url, "BANDIT_EXPLORATION_ENABLED": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "bandit_pipeline.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail("the server did not come up")
        assert health.json()["status"] == "ok"
        decision = httpx.post(f"http://127.0.0.1:{port}/v1/decide", json=GOOD, timeout=5).json()
        assert decision["trace"]["chosen"] == ["n1"]
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=20)
    trace_lines = [line for line in errors.splitlines() if '"bandit decision"' in line]
    assert trace_lines, errors
    assert '"bandit_snapshot_version": "v7"' in trace_lines[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": "\ud800"}, "user_id"),
        ({"items": ["r1", "\udfff"]}, "items"),
        ({"candidates": ["\ud800x"]}, "candidates"),
        ({"user_id": "u\x00"}, "user_id"),
        ({"request_id": "r\r\n1"}, "request_id"),
        ({"items": ["r1", "a\u202eb"]}, "items"),  # a bidirectional override
        ({"surface": "home\n"}, "surface"),
        ({"namespace": "default\n"}, "namespace"),
    ],
)
def test_hostile_identifiers_are_a_short_422_never_a_500(client, change, field):
    body = json.dumps({**GOOD, **change})  # escapes the lone surrogates as JSON allows
    response = client.post("/v1/decide", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_errors_quote_a_short_excerpt_and_big_bodies_are_refused(tmp_path):
    with TestClient(build_app(tmp_path, max_request_bytes=65_536)) as small:
        long_id = "x" * 60_000
        response = small.post("/v1/decide", json={**GOOD, "user_id": long_id})
        assert response.status_code == 422
        assert len(response.content) < 1_000  # not the 60 kB value echoed back
        huge = json.dumps({**GOOD, "items": ["r" * 200] * 2_000})
        response = small.post(
            "/v1/decide", content=huge, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert "larger than 65536 bytes" in response.json()["detail"]

        def stream():  # no Content-Length: the limit holds while the body arrives
            yield huge[:40_000].encode()
            yield huge[40_000:].encode()

        response = small.post(
            "/v1/decide", content=stream(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert small.post("/v1/decide", json=GOOD).status_code == 200


def test_the_namespace_of_a_request_defaults_to_the_settings(tmp_path):
    with TestClient(build_app(tmp_path, namespace="shop-eu")) as eu:
        trace = eu.post("/v1/decide", json=GOOD).json()["trace"]
    assert trace["namespace"] == "shop-eu"


def test_the_decision_time_is_an_optional_input(client):
    body = client.post("/v1/decide", json={**GOOD, "decided_at": "2026-01-05T09:00:00Z"}).json()
    assert body["trace"]["decided_at"].startswith("2026-01-05T09:00:00")
    naive = client.post("/v1/decide", json={**GOOD, "decided_at": "2026-01-05T09:00:00"})
    assert naive.status_code == 422
    assert any("decided_at" in error["loc"] for error in naive.json()["detail"])
    # A number is not read as Unix seconds: the schema says a date-time string.
    number = client.post("/v1/decide", json={**GOOD, "decided_at": 0})
    assert number.status_code == 422
    assert any("decided_at" in error["loc"] for error in number.json()["detail"])


def test_metric_labels_are_bounded_to_the_configured_names(tmp_path):
    """Namespaces and surfaces come from the request: only the configured ones become
    label values, so 50 random requests add no series."""
    with TestClient(build_app(tmp_path, metric_namespaces="shop-eu")) as bounded:
        before = bounded.get("/metrics").text.count("\n")
        for n in range(50):
            bounded.post("/v1/decide", json={**GOOD, "namespace": f"ns{n}", "surface": f"s{n}"})
        bounded.post("/v1/decide", json={**GOOD, "namespace": "shop-eu"})
        text = bounded.get("/metrics").text
    assert 'namespace="ns7"' not in text
    assert 'surface="s7"' not in text
    assert 'bandit_decisions_total{namespace="other",outcome="not_explored",' in text
    assert 'namespace="shop-eu",outcome="not_explored",reason="no_snapshot",surface="home"' in text
    assert text.count("\n") - before < 12  # a handful of new series, not a hundred


def test_no_answer_or_log_line_carries_the_store_password(tmp_path, caplog):
    """With the store down, the reason travels in traces, /healthz and the logs: the
    URL's password never does."""
    closed = free_port()
    secret = "st0re-s3cret"
    settings = load_settings(
        online_store_url=f"redis://:{secret}@127.0.0.1:{closed}/0",
        online_store_timeout_ms=200,
        exploration_enabled=True,
    )
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings, ExplorationService(settings, background=False))) as c:
        decided = c.post("/v1/decide", json=GOOD)
        health = c.get("/healthz")
        metrics_text = c.get("/metrics").text
    assert decided.status_code == 200
    assert decided.json()["trace"]["reason"] in {"store_unavailable", "flags_unavailable"}
    assert health.json()["status"] == "degraded"
    for text in (decided.text, health.text, metrics_text, caplog.text):
        assert secret not in text
