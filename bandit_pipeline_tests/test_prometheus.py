"""The alerting rules under promtool, and a real Prometheus scraping a running
``bandit-pipeline serve`` (both started here on loopback ports, stopped by process id)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from bandit_pipeline.deploy import DEPLOY_DIR
from bandit_pipeline.online_store import Snapshot, open_store
from bandit_pipeline_tests.helpers import free_port, stop_process

RULES = DEPLOY_DIR / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY_DIR / "prometheus" / "alerts_test.yml"


def _binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is needed (make test installs Debian's prometheus package)"
    return found


def test_the_rules_are_valid_and_their_unit_tests_pass():
    checked = subprocess.run([_binary("promtool"), "check", "rules", str(RULES)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 3 rules found" in checked.stdout
    tested = subprocess.run([_binary("promtool"), "test", "rules", str(RULE_TESTS)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _wait(check, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture
def serving(tmp_path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/store.db"
    names = tuple(f"new-{i}" for i in range(50))
    open_store(url).publish(
        Snapshot("default", "home", "v1", datetime.now(UTC), None, names, np.ones(50),
                 np.ones(50))
    )  # fmt: skip
    port = free_port()
    env = {**os.environ, "BANDIT_ONLINE_STORE_URL": url, "BANDIT_EXPLORATION_ENABLED": "true"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "bandit-pipeline"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, "serve")
        yield base
    finally:
        stop_process(server)


def test_prometheus_scrapes_serving_and_loads_the_rules(serving, tmp_path):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: bandit-serving\n    static_configs:\n"
        f"      - targets: ['{serving.removeprefix('http://')}']\n"
    )
    prometheus = subprocess.Popen(
        [_binary("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        with httpx.Client(base_url=serving, timeout=10) as client:
            for n in range(20):
                body = {"surface": "home", "user_id": f"u{n}", "request_id": f"r{n}",
                        "items": [f"ranked-{i}" for i in range(6)]}  # fmt: skip
                assert client.post("/v1/decide", json=body).json()["trace"]["explored"]

        def served() -> float:
            query = 'sum(bandit_explore_impressions_total{namespace="default",surface="home"})'
            response = httpx.get(f"{api}/query", params={"query": query}, timeout=5)
            result = response.raise_for_status().json()  # 503 while Prometheus starts
            values = result["data"]["result"]
            return float(values[0]["value"][1]) if values else 0.0

        assert _wait(lambda: served() >= 20, "the scraped exploration impressions")
        assert served() == 20.0  # one exploration slot per decision, each counted once
        rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} == {
            "BanditServingFallingBack", "BanditSnapshotStale", "BanditExplorationStopped",
        }  # fmt: skip
    finally:
        stop_process(prometheus)
