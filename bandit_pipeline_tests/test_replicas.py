"""Several serving processes against one Redis store, on loopback.

``serve --workers 2`` answers a burst of decisions with valid decisions only, from both
workers, each logging its decisions' traces. Three separate ``serve`` processes each
switch to a newly published snapshot within one refresh interval
(``BANDIT_SNAPSHOT_REFRESH_SECONDS``) of its publication,
never go back to the old one, and answer every decision on the way. Every process is
stopped by its id, and its key prefix is deleted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

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

REFRESH_SECONDS = 1.0
# Past the refresh interval: one refresh pass (a few store calls, building the new
# snapshot's bounds), the request in flight, and a busy shared machine's scheduling.
SLACK_SECONDS = 0.5
CANDIDATES = 300
RANKED = [f"ranked-{i}" for i in range(8)]
EXPLORE_SLOTS = [2, 5]  # the default BANDIT_EXPLORE_SLOT_POSITIONS, with 2 slots
COMMAND = str(Path(sys.executable).parent / "bandit-pipeline")


def _names(version: str) -> tuple[str, ...]:
    return tuple(f"{version}-cand-{i}" for i in range(CANDIDATES))


def _publish(store, version: str) -> None:
    rng = np.random.default_rng(len(version))
    alpha, beta = rng.uniform(1, 5, CANDIDATES), rng.uniform(1, 50, CANDIDATES)
    store.publish(Snapshot("default", "home", version, datetime.now(UTC), None,
                           _names(version), alpha, beta))  # fmt: skip


@pytest.fixture
def store():
    """A Redis store under a key prefix of this test alone, deleted afterwards."""
    prefix = unique_name()
    opened = open_store(REDIS_URL, prefix=prefix, timeout_seconds=2.0)
    try:
        yield opened
    finally:
        opened.close()
        delete_redis_keys(prefix)


class Server(NamedTuple):
    base: str  # the address
    log: Path  # its standard error: the JSON log lines of every process it runs
    pid: int


@pytest.fixture
def serve(store, tmp_path):
    """Starts ``bandit-pipeline serve`` processes on the store, each logging into a file
    of its own; stops each by its id (and checks that no uvicorn worker outlives its
    parent)."""
    started: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "BANDIT_ONLINE_STORE_URL": REDIS_URL,
        "BANDIT_ONLINE_STORE_PREFIX": store.prefix,
        "BANDIT_EXPLORATION_ENABLED": "true",
        "BANDIT_EXPLORE_SLOTS": "2",
        "BANDIT_SNAPSHOT_REFRESH_SECONDS": str(REFRESH_SECONDS),
    }

    def start(workers: int = 1) -> Server:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("ab") as stderr:  # appending: the workers share the file
            process = subprocess.Popen(
                [COMMAND, "serve", "--port", str(port), "--workers", str(workers)],
                env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        started.append(process)
        return Server(f"http://127.0.0.1:{port}", log, process.pid)

    yield start
    leftovers = []
    for process in started:
        workers = _workers(process.pid)
        stop_process(process)
        leftovers += [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in leftovers:
        os.kill(pid, 9)
    assert not leftovers, f"uvicorn workers left running: {leftovers}"


def _workers(pid: int) -> list[int]:
    """The uvicorn worker processes of the ``serve`` process ``pid``."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in map(int, children):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            pass
    return workers


def _wait_until_up(base: str, deadline: float) -> None:
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).json()["status"] == "ok":
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{base} did not answer"
        time.sleep(0.1)


def _decide(client: httpx.Client, number: int) -> str:
    """One decision; fails unless it is a 200 carrying a valid exploration decision.
    Returns the snapshot version it was taken from."""
    body = {"surface": "home", "user_id": f"user-{number}", "request_id": f"r-{number}",
            "items": RANKED}  # fmt: skip
    answer = client.post("/v1/decide", json=body)
    assert answer.status_code == 200, answer.text
    items, trace = answer.json()["items"], answer.json()["trace"]
    assert trace["reason"] == "explored", trace
    version = trace["snapshot_version"]
    assert set(trace["chosen"]) <= set(_names(version)), trace
    assert [item["slot"] for item in items] == list(range(len(RANKED)))
    explored = [item for item in items if item["explore"]]
    assert [item["slot"] for item in explored] == EXPLORE_SLOTS
    assert [item["item_id"] for item in explored] == trace["chosen"]
    assert [item["item_id"] for item in items if not item["explore"]] == RANKED[:6]
    return version


def _decide_alone(base: str, number: int) -> str:
    """``_decide`` on a client, and so a connection, of its own."""
    with httpx.Client(base_url=base, timeout=30) as client:
        return _decide(client, number)


def _explored_count(metrics_text: str) -> int:
    found = re.search(
        r'^bandit_decisions_total\{namespace="default",outcome="explored",'
        r'reason="explored",surface="home"\} ([0-9.e+]+)$', metrics_text, re.MULTILINE,
    )  # fmt: skip
    return int(float(found.group(1))) if found else 0


def test_two_workers_answer_a_burst_with_valid_decisions_only(store, serve):
    _publish(store, "v1")
    server = serve(workers=2)
    base = server.base
    _wait_until_up(base, time.monotonic() + 60)
    assert len(_workers(server.pid)) == 2
    # Every request on a connection of its own, so that either worker may accept it.
    # One client per request: a client shared by threads with keep-alive off can close
    # one thread's new connection while another thread reads from it (EBADF).
    burst = 300
    with ThreadPoolExecutor(12) as pool:
        versions = list(pool.map(lambda number: _decide_alone(base, number), range(burst)))
    assert versions == ["v1"] * burst
    # Each worker counts its own decisions: /metrics, asked on new connections, shows
    # the two counts, and together they are the whole burst.
    counts: set[int] = set()
    for _ in range(100):
        counts.add(_explored_count(httpx.get(f"{base}/metrics", timeout=30).text))
        if len(counts) == 2:
            break
    print(f"decisions per worker: {sorted(counts)}")
    assert len(counts) == 2, counts  # two workers answered
    assert sum(counts) == burst, counts
    assert min(counts) > 0, counts
    # Each worker logs its decisions' traces, as a single process does.
    logged = server.log.read_text().count('"message": "bandit decision"')
    assert logged == burst


def test_three_replicas_switch_to_a_new_snapshot_within_one_refresh(store, serve):
    _publish(store, "v1")
    bases = [serve().base for _ in range(3)]
    deadline = time.monotonic() + 60
    for base in bases:
        _wait_until_up(base, deadline)
    answers: list[list[tuple[float, str]]] = [[] for _ in bases]
    failures: list[BaseException] = []
    stop = threading.Event()

    def poll(replica: int) -> None:
        """Decisions back to back, 20 ms apart, until told to stop; the time each answer
        came back and its snapshot version."""
        number = replica * 1_000_000
        with httpx.Client(base_url=bases[replica], timeout=10) as client:
            while not stop.is_set():
                number += 1
                try:
                    version = _decide(client, number)
                except BaseException as exc:  # an error is a failure of the test
                    failures.append(exc)
                    return
                answers[replica].append((time.monotonic(), version))
                time.sleep(0.02)

    pollers = [threading.Thread(target=poll, args=(r,)) for r in range(len(bases))]
    for poller in pollers:
        poller.start()
    try:
        while not all(any(v == "v1" for _, v in seen) for seen in answers) and not failures:
            assert time.monotonic() < deadline, "a replica never served v1"
            time.sleep(0.05)
        time.sleep(0.3)
        published = time.monotonic()  # before the publish: the delays are not flattered
        _publish(store, "v2")
        bound = published + REFRESH_SECONDS + SLACK_SECONDS
        while time.monotonic() < bound + 1.0 and not failures:
            if all(seen and seen[-1][1] == "v2" for seen in answers):
                break
            time.sleep(0.05)
        time.sleep(0.5)  # more decisions after the switch: none goes back to v1
    finally:
        stop.set()
        for poller in pollers:
            poller.join(timeout=30)
    assert not failures, failures
    delays = []
    for replica, seen in enumerate(answers):
        versions = [version for _, version in seen]
        assert "v2" in versions, f"replica {replica} still serves v1"
        switch = versions.index("v2")
        assert set(versions[:switch]) == {"v1"}, versions
        assert set(versions[switch:]) == {"v2"}, versions  # never back to v1
        delays.append(seen[switch][0] - published)
    print(f"first v2 answer after the publish, per replica: "
          f"{', '.join(f'{d:.2f} s' for d in delays)} (refresh {REFRESH_SECONDS:g} s)")  # fmt: skip
    assert max(delays) <= REFRESH_SECONDS + SLACK_SECONDS, delays
