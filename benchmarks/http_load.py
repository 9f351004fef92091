"""HTTP decision service under load on loopback: p50/p99 latency and requests/s.

Starts ``bandit-pipeline serve`` (one uvicorn worker) against the test Redis with a
published snapshot of 1,000 candidates, then runs ``--clients`` threads, each with its
own keep-alive connection, posting decisions for ``--seconds`` (bounded in time and in
count), and stops the server.

Run it::

    .venv/bin/python benchmarks/http_load.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import redis
from common import machine_description, positive_int, progress

from bandit_pipeline.online_store import Snapshot
from bandit_pipeline.online_store.redis import RedisStore

MAX_REQUESTS_PER_CLIENT = 200_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=positive_int, default=10)
    parser.add_argument("--clients", type=positive_int, default=8)
    parser.add_argument("--workers", type=positive_int, default=1, help="uvicorn workers")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BANDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    prefix = f"bandit_bench_http_{os.getpid()}"
    store = RedisStore.from_url(args.redis_url, prefix=prefix, timeout_seconds=1.0)
    names = tuple(f"cand-{i}" for i in range(1000))
    rng = np.random.default_rng(1)
    store.publish(
        Snapshot("default", "home", "v1", datetime.now(UTC), None, names,
                 rng.uniform(1, 5, 1000), rng.uniform(1, 50, 1000))
    )  # fmt: skip
    store.set_flag("default", "bandit_exploration_enabled", "true")
    store.set_flag("default", "bandit_explore_slots", "2")
    port = free_port()
    env = {
        **os.environ,
        "BANDIT_ONLINE_STORE_URL": args.redis_url,
        "BANDIT_ONLINE_STORE_PREFIX": prefix,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bandit_pipeline.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # the decision log lines; not part of the measurement
    )
    base = f"http://127.0.0.1:{port}"
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    statuses: dict[int, int] = {}
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        progress(f"server up on {base}; {args.clients} clients for {args.seconds}s")
        deadline = time.perf_counter() + args.seconds

        def client(number: int) -> None:
            with httpx.Client(base_url=base, timeout=5) as http:
                for n in range(MAX_REQUESTS_PER_CLIENT):
                    if time.perf_counter() > deadline:
                        return
                    body = {
                        "surface": "home",
                        "user_id": f"user-{number}-{n}",
                        "request_id": f"req-{number}-{n}",
                        "items": [f"ranked-{i}" for i in range(10)],
                    }
                    started = time.perf_counter()
                    response = http.post("/v1/decide", json=body)
                    latencies[number].append(time.perf_counter() - started)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=20)
        client_redis = redis.Redis.from_url(args.redis_url)
        keys = list(client_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client_redis.delete(*keys)
    samples = np.array([x for per_client in latencies for x in per_client]) * 1000
    count = len(samples)
    p50, p99, p999 = (np.percentile(samples, q) for q in (50, 99, 99.9))
    workers = f"{args.workers} uvicorn worker{'s' if args.workers > 1 else ''}"
    print(f"HTTP load, {args.clients} clients on loopback for {elapsed:.1f}s ({workers})")
    print(f"  machine   {machine_description()}; load generator on the same machine")
    print(f"  requests  {count:,} ({count / elapsed:,.0f}/s), statuses {statuses}")
    print(
        f"  latency   p50 {p50:.2f} ms, p99 {p99:.2f} ms, p99.9 {p999:.2f} ms,"
        f" mean {statistics.fmean(samples):.2f} ms"
    )
    print(
        f"RESULT clients={args.clients} workers={args.workers} requests={count}"
        f" rps={count / elapsed:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} p999_ms={p999:.2f}"
    )


if __name__ == "__main__":
    main()
