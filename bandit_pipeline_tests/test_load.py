"""A bounded load test of ``bandit-pipeline serve`` on loopback: a fixed number of
requests at concurrency 1, 8 and 64, with a snapshot published in the middle, on SQLite
and on Redis. Every answer is a 200, and the server's memory does not grow over rounds.
(The speed figures are the benchmark's: benchmarks/http_load.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from bandit_pipeline.online_store import Snapshot, open_store
from bandit_pipeline_tests.helpers import (
    REDIS_URL,
    delete_redis_keys,
    free_port,
    stop_process,
    unique_name,
)

REQUESTS_PER_LEVEL = 400
LEVELS = (1, 8, 64)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _snapshot(version: str) -> Snapshot:
    rng = np.random.default_rng(len(version))
    names = tuple(f"{version}-cand-{i}" for i in range(1_000))
    return Snapshot("default", "home", version, datetime.now(UTC), None, names,
                    rng.uniform(1, 5, 1_000), rng.uniform(1, 50, 1_000))  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_bounded_load_at_three_concurrencies_all_200_and_flat_memory(tmp_path, kind):
    prefix = unique_name()
    url = f"sqlite:///{tmp_path}/store.db" if kind == "sqlite" else REDIS_URL
    store = open_store(url, prefix=prefix)
    store.publish(_snapshot("v1"))
    port = free_port()
    env = {**os.environ, "BANDIT_ONLINE_STORE_URL": url, "BANDIT_ONLINE_STORE_PREFIX": prefix,
           "BANDIT_EXPLORATION_ENABLED": "true", "BANDIT_EXPLORE_SLOTS": "2",
           "BANDIT_SNAPSHOT_REFRESH_SECONDS": "0.2"}  # fmt: skip
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "bandit-pipeline"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    local = threading.local()

    def decide(number: int) -> tuple[int, str | None]:
        client = getattr(local, "client", None) or httpx.Client(base_url=base, timeout=30)
        local.client = client
        body = {"surface": "home", "user_id": f"user-{number}", "request_id": f"r-{number}",
                "items": [f"ranked-{i}" for i in range(8)]}  # fmt: skip
        answer = client.post("/v1/decide", json=body)
        return answer.status_code, answer.json()["trace"].get("snapshot_version")

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert server.poll() is None, "bandit-pipeline serve exited"
                assert time.monotonic() < deadline, "bandit-pipeline serve did not answer"
                time.sleep(0.2)
        memory = []
        versions: set[str | None] = set()
        for round_number in range(2):
            for level in LEVELS:
                with ThreadPoolExecutor(level) as pool:
                    first = round_number * 10_000 + level * 1_000
                    numbers = range(first, first + REQUESTS_PER_LEVEL)
                    if round_number == 0 and level == 8:  # a publish while requests run
                        threading.Timer(0.05, store.publish, (_snapshot("v2"),)).start()
                    answers = list(pool.map(decide, numbers))
                assert [status for status, _ in answers] == [200] * REQUESTS_PER_LEVEL, level
                versions.update(version for _, version in answers)
            memory.append(_rss_kib(server.pid))
        assert {"v1", "v2"} <= versions  # the new snapshot was picked up under load
        assert memory[1] - memory[0] < 20 * 1024, memory  # no growth from a second round
    finally:
        stop_process(server)
        store.close()
        if kind == "redis":
            delete_redis_keys(prefix)
