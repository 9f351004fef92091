"""Serving replicas on one Redis store: decisions/s and latency by number of processes.

The same bounded load (``--requests`` decisions over ``--clients`` keep-alive
connections, after a warm-up on each connection) goes to each layout in turn:

* 1 process: ``bandit-pipeline serve`` with one worker, the baseline, measured first
  and last in each round (a virtual machine's speed drifts from one minute to the
  next), the ratios taken against the mean of the two;
* 2 and 3 processes: separate ``serve`` processes on separate ports, no proxy in front:
  the connections are split evenly across the ports;
* ``serve --workers 2`` and ``--workers 3``: uvicorn's workers behind one port, each
  measured right after the same number of separate processes.

The decisions are those of benchmarks/http_load.py (a snapshot of 1,000 candidates, 2
exploration slots, a new user each time). The load generator runs in a process of its
own, on the same cores as the servers, with one thread per connection. It speaks HTTP/1.1
over plain sockets, at 60-90 us of CPU a decision: httpx (http_load.py's client) takes
500-600 us, about what the server spends on the whole request, and on a machine this
size that would be taken from the servers.
Every answer is checked: anything but a 200 carrying a whole response is an error, and
a response with the ranker's items only (the store timed out, say) is counted with its
reason. Per layout it prints decisions/s and the ratio to the 1-process figure, p50 and
p99 latency, the errors and the fallbacks, the CPU the servers, the generator and Redis
used per decision, and how busy the cores were with other work meanwhile. The last lines
are ``RESULT key=value ...``, one a layout and round.

Run it::

    .venv/bin/python benchmarks/replica_scaling.py [--requests 8000] [--clients 12]
        [--rounds 1] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import orjson
import redis
from common import COMMAND, idle_description, machine_description, positive_int, progress

from bandit_pipeline.online_store import Snapshot
from bandit_pipeline.online_store.redis import RedisStore

WARMUP_PER_CONNECTION = 25
RANKED = [f"ranked-{i}" for i in range(10)]
# (name, separate processes, uvicorn workers in each)
LAYOUTS = (
    ("1 process", 1, 1),
    ("2 processes", 2, 1),
    ("--workers 2", 1, 2),
    ("3 processes", 3, 1),
    ("--workers 3", 1, 3),
    ("1 process", 1, 1),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=positive_int, default=8_000, help="per layout")
    parser.add_argument("--clients", type=positive_int, default=12, help="connections")
    parser.add_argument("--rounds", type=positive_int, default=1, help="of all layouts")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BANDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    # The load generator's own process (started by this script).
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ports", type=int, nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--server-pids", type=int, nargs="*", default=[], help=argparse.SUPPRESS)
    return parser.parse_args()


# --- The load generator, in its own process.


class Connection:
    """One keep-alive HTTP/1.1 connection posting decisions."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.head = (
            f"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        ).encode()

    def decide(self, number: int) -> str:
        """One decision: its reason (``explored``, or why the ranker's items came back),
        or ``error`` for anything but a 200 carrying a whole response."""
        body = orjson.dumps({"surface": "home", "user_id": f"user-{number}",
                             "request_id": f"req-{number}", "items": RANKED})  # fmt: skip
        self.sock.sendall(self.head % len(body) + body)
        status = int(self.reader.readline().split()[1])
        length = 0
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = orjson.loads(self.reader.read(length))
        if status != 200 or len(answer["items"]) != len(RANKED):
            return "error"
        return answer["trace"]["reason"]

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_counters(server_pids: list[int], store: redis.Redis) -> np.ndarray:
    """CPU seconds so far: the servers, this process, Redis, and every core busy."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    used = store.info("cpu")
    # /proc/stat's cpu line: user nice system idle iowait irq softirq steal ...
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return np.array([
        sum(map(cpu_seconds, server_pids)),
        own.ru_utime + own.ru_stime,
        used["used_cpu_user"] + used["used_cpu_sys"],
        busy,
    ])  # fmt: skip


def generate(args: argparse.Namespace) -> dict:
    """``--requests`` decisions over ``--clients`` connections spread over ``--ports``
    (after a warm-up on each); latencies, errors and the CPU used, as a dict."""
    ports, clients, requests = args.ports, args.clients, args.requests
    numbers = itertools.count()  # next() on it is atomic: each decision is taken once
    latencies: list[list[float]] = [[] for _ in range(clients)]
    reasons: list[Counter[str]] = [Counter() for _ in range(clients)]
    ready = threading.Barrier(clients + 1, timeout=120)

    def client(index: int) -> None:
        port = ports[index % len(ports)]
        connection = Connection(port)
        for n in range(WARMUP_PER_CONNECTION):
            connection.decide(10_000_000 * (index + 1) + n)
        ready.wait()
        mine = latencies[index]
        while (number := next(numbers)) < requests:
            started = time.perf_counter()
            try:
                reason = connection.decide(number)
            except (OSError, ValueError, KeyError, IndexError):
                reason = "error"
                connection.close()
                connection = Connection(port)
            mine.append(time.perf_counter() - started)
            reasons[index][reason] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    store = redis.Redis.from_url(args.redis_url)
    ready.wait()
    before = cpu_counters(args.server_pids, store)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    servers, generator, redis_server, busy = cpu_counters(args.server_pids, store) - before
    store.close()
    samples = np.array([x for mine in latencies for x in mine]) * 1000
    return {
        "requests": len(samples),
        "reasons": dict(sum(reasons, Counter())),
        "seconds": elapsed,
        "p50_ms": float(np.percentile(samples, 50)),
        "p99_ms": float(np.percentile(samples, 99)),
        "server_cpu_s": servers,
        "generator_cpu_s": generator,
        "redis_cpu_s": redis_server,
        # What else ran on the machine meanwhile, in cores: other work skews the figures.
        "other_cores": max(0.0, busy - servers - generator - redis_server) / elapsed,
    }


# --- The servers, the store and the runs.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workers_of(pid: int) -> list[int]:
    """The processes that serve for ``serve`` process ``pid``: its uvicorn workers, or
    itself when it runs one worker."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    spawned = [c for c in map(int, children)
               if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]  # fmt: skip
    return spawned or [pid]


def run_layout(processes: int, workers: int, args: argparse.Namespace, env: dict) -> dict:
    """Start the layout's servers, load them, stop them (by process id)."""
    ports = [free_port() for _ in range(processes)]
    servers = [
        subprocess.Popen(
            [str(COMMAND), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        for port in ports:
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"serve on port {port} did not answer") from None
                    time.sleep(0.1)
        while workers > 1 and any(len(workers_of(s.pid)) < workers for s in servers):
            time.sleep(0.1)  # the workers are up (one answering is not all of them)
        pids = [pid for server in servers for pid in workers_of(server.pid)]
        generator = subprocess.run(
            [sys.executable, __file__, "--generate", "--requests", str(args.requests),
             "--clients", str(args.clients), "--redis-url", args.redis_url,
             "--ports", *map(str, ports), "--server-pids", *map(str, pids)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(generator.stdout)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def publish_snapshot(args: argparse.Namespace, prefix: str) -> None:
    store = RedisStore.from_url(args.redis_url, prefix=prefix, timeout_seconds=1.0)
    names = tuple(f"cand-{i}" for i in range(1000))
    rng = np.random.default_rng(1)
    store.publish(Snapshot("default", "home", "v1", datetime.now(UTC), None, names,
                           rng.uniform(1, 5, 1000), rng.uniform(1, 50, 1000)))  # fmt: skip
    store.set_flag("default", "bandit_exploration_enabled", "true")
    store.set_flag("default", "bandit_explore_slots", "2")
    store.close()


def delete_keys(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def main() -> None:
    args = parse_args()
    if args.generate:
        print(json.dumps(generate(args)))
        return
    prefix = f"bandit_bench_replicas_{os.getpid()}"
    env = {**os.environ, "BANDIT_ONLINE_STORE_URL": args.redis_url,
           "BANDIT_ONLINE_STORE_PREFIX": prefix}  # fmt: skip
    results: list[tuple[int, str, int, dict]] = []
    try:
        publish_snapshot(args, prefix)
        for round_number, (name, processes, workers) in itertools.product(
            range(1, args.rounds + 1), LAYOUTS
        ):
            progress(f"round {round_number}: {name}")
            result = run_layout(processes, workers, args, env)
            results.append((round_number, name, processes * workers, result))
    finally:
        delete_keys(args.redis_url, prefix)

    report(args, results)


def report(args: argparse.Namespace, results: list[tuple[int, str, int, dict]]) -> None:
    print(f"Serving replicas on one Redis, {args.requests:,} decisions a layout over "
          f"{args.clients} keep-alive connections")  # fmt: skip
    print(f"  machine  {machine_description()}; {idle_description()}")
    print(f"  os.cpu_count() = {os.cpu_count()}: the servers, Redis and the load generator "
          "share these cores")  # fmt: skip
    print(f"  {'round':>5}  {'layout':<12} {'decisions/s':>11} {'vs 1':>6} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'errors':>6} {'ranker':>6}   CPU us/decision: servers generator "
          "Redis   other load")  # fmt: skip
    lines, notes = [], []
    rates: dict[str, list[float]] = {}
    baselines: dict[int, list[float]] = {}
    for round_number, _, serving, result in results:
        if serving == 1:
            baselines.setdefault(round_number, []).append(result["requests"] / result["seconds"])
    for round_number, name, serving, result in results:
        rate = result["requests"] / result["seconds"]
        rates.setdefault(name, []).append(rate)
        baseline = statistics.fmean(baselines[round_number])
        reasons = Counter(result["reasons"])
        errors = reasons.pop("error", 0)
        reasons.pop("explored", None)
        fallbacks = sum(reasons.values())
        if fallbacks:
            notes.append(f"round {round_number}, {name}: the ranker's items for {dict(reasons)}")
        servers, generator, redis_server = (
            1e6 * result[f"{part}_cpu_s"] / result["requests"]
            for part in ("server", "generator", "redis")
        )
        print(f"  {round_number:>5}  {name:<12} {rate:>11,.0f} {rate / baseline:>5.2f}x "
              f"{result['p50_ms']:>7.2f} {result['p99_ms']:>7.2f} {errors:>6} {fallbacks:>6} "
              f"{servers:>25.0f} {generator:>9.0f} {redis_server:>5.0f} "
              f"{result['other_cores']:>6.2f} cores")  # fmt: skip
        lines.append(
            f"RESULT round={round_number} layout={name.replace(' ', '_').lstrip('-')} "
            f"serving_processes={serving} requests={result['requests']} rps={rate:.0f} "
            f"ratio={rate / baseline:.2f} p50_ms={result['p50_ms']:.2f} "
            f"p99_ms={result['p99_ms']:.2f} errors={errors} not_explored={fallbacks} "
            f"other_cores={result['other_cores']:.2f}"
        )
    if args.rounds > 1:
        first = statistics.median(rates[LAYOUTS[0][0]])
        print("  median over the rounds: " + ", ".join(
            f"{name} {statistics.median(r):,.0f}/s ({statistics.median(r) / first:.2f}x)"
            for name, r in rates.items()
        ))  # fmt: skip
    print("  errors: anything but a 200 with a whole response; ranker: a 200 with the ranker's "
          "items, by reason below")  # fmt: skip
    print("  other load: the cores busy meanwhile with anything but these processes")
    for note in notes:
        print(f"  {note}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
