"""Serving speed: the in-process decision against MABWiser, and publishing against a bare
pipelined write of the same data to Redis, each measured in the same run.

* Decision: 2 exploration slots out of 1,000 candidates with a cached snapshot, through
  ``ExplorationService.decide`` on one core (the process is pinned to ``--cpu`` while
  deciding) with its background threads running: flags, kill switch, the exposure
  guard's read and write on the real online store, sampling, injection, the trace log
  record (through a handler that drops it). Reported: p50 and p99 in microseconds and
  decisions/s on one thread, with Redis reached over TCP loopback (``--redis-url``) and
  over a unix socket (a private redis-server the benchmark starts, as a Redis beside the
  serving process would be reached), with the embedded SQLite store (a file in a
  temporary directory), for the TCP decision with its exchange packed but never sent
  (what the round trip costs it), and for the policy step alone (as the service runs
  it: bounded inverse-transform draws), next to MABWiser's ThompsonSampling choosing 2
  of the same 1,000 arms fitted on the same data (``predict_expectations`` + top 2,
  since ``predict`` gives one arm).
* The floor under the Redis decision: the exposure read alone over TCP, back to back
  (blocking at once, or polling first as decisions do) and paced like the decisions
  (each right after a never-sent decision's work, so Redis has gone idle as often).
  The header says how the machine's idle cores wait, which sets what waking Redis
  costs (docs/serving.md, "Speed").
* Publish: 100,000 items x 3 surfaces with ``RedisStore.publish_many`` (encode, blob writes,
  pointer flips), next to a bare pipelined SET of the same three blobs already encoded,
  and a pipelined HSET of the same 300,000 (item -> alpha,beta) fields.

Run it::

    .venv/bin/python benchmarks/serving_latency.py [--decisions N] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import redis
from common import idle_description, machine_description, positive_int, progress
from mabwiser.mab import MAB, LearningPolicy

from bandit_pipeline.online_store import ExposureRead, Snapshot, open_store
from bandit_pipeline.online_store.redis import RedisStore
from bandit_pipeline.policy.thompson import QuantileBounds, decision_rng, top_k
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.settings import load_settings

CANDIDATES = 1_000
RANKED = [f"ranked-{i}" for i in range(10)]
PUBLISH_ITEMS = 100_000
SURFACES = ("home", "pdp", "cart")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=positive_int, default=20_000)
    parser.add_argument("--mabwiser-decisions", type=positive_int, default=500)
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--publish-repeat", type=positive_int, default=15)
    parser.add_argument(
        "--returning-users",
        type=int,
        default=0,
        help="decide for this many users in turn (default 0: a new user every decision)",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=max(os.sched_getaffinity(0)),
        help="the core the decisions run on (default: the highest-numbered one)",
    )
    parser.add_argument(
        "--no-unix-socket",
        dest="unix_socket",
        action="store_false",
        help="skip the run against a private redis-server on a unix socket",
    )
    parser.add_argument(
        "--no-background",
        dest="background",
        action="store_false",
        help="without the refresh and exposure-writer threads (to see what they cost)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BANDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    return parser.parse_args()


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    values = np.array(samples_ns) / 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def fitted_data(rng: np.random.Generator) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """Binary rewards per arm; alpha/beta = 1 + successes / failures (MABWiser's model)."""
    trials = rng.integers(0, 40, CANDIDATES)
    rates = rng.beta(1, 20, CANDIDATES)
    successes = rng.binomial(trials, rates)
    decisions, rewards = [], []
    for arm in range(CANDIDATES):
        decisions += [arm] * int(trials[arm])
        rewards += [1] * int(successes[arm]) + [0] * int(trials[arm] - successes[arm])
    return decisions, rewards, 1.0 + successes, 1.0 + (trials - successes)


def time_calls(call, count: int, before=None) -> list[int]:
    """Nanoseconds of each of ``count`` calls; ``before``, if given, runs untimed ahead
    of each one."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        if before is not None:
            before()
        started = clock()
        call()
        samples.append(clock() - started)
    return samples


@dataclass(frozen=True)
class Paced:
    """``call`` timed alone, each time right after ``work`` (not timed)."""

    work: Callable[[], object]
    call: Callable[[], object]


def measure(call, count: int) -> tuple[float, float, float]:
    """(p50 us, p99 us, calls/s) after a warm-up; for a ``Paced`` call no rate (NaN)."""
    if isinstance(call, Paced):
        time_calls(call.call, min(count, 200), call.work)
        return (*percentiles(time_calls(call.call, count, call.work)), float("nan"))
    time_calls(call, min(count, 200))
    started = time.perf_counter()
    samples = time_calls(call, count)
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(samples)
    return p50, p99, count / elapsed


def decision_service(url: str, prefix: str, alpha, beta, background: bool, returning_users: int):
    store = open_store(url, prefix=prefix, timeout_seconds=1.0)
    names = tuple(f"cand-{i}" for i in range(CANDIDATES))
    store.publish(Snapshot("default", "home", "v1", datetime.now(UTC), None, names, alpha, beta))
    store.set_flag("default", "bandit_exploration_enabled", "true")
    store.set_flag("default", "bandit_explore_slots", "2")
    settings = load_settings(online_store_url=url, online_store_prefix=prefix)
    service = ExplorationService(settings, store, background=background)
    # By default a new user each time: the guard's read finds nothing. With
    # --returning-users N each of N users comes back every N decisions, and the read
    # finds their earlier exposures (1,000 candidates last a user 500 decisions).
    users = itertools.cycle(range(returning_users)) if returning_users else itertools.count()

    def decide() -> None:
        n = next(users)
        response = service.decide(DecisionRequest("default", "home", f"u{n}", f"r{n}", RANKED))
        assert response.trace.explored, response.trace

    return service, decide


def answer_at_once(store: RedisStore) -> None:
    """Make ``store``'s exposure exchanges pack their commands as usual and answer at
    once, without sending them: the Redis decision's cost without its round trip."""

    def exchange(writes, namespace, user_id, now) -> ExposureRead:
        store.exchange_payload(writes, namespace, user_id, now)
        return ExposureRead.ready(set())

    store.exchange_exposures = exchange


def read_exposures(store: RedisStore, spin_ns: int, now: datetime) -> None:
    default, store.spin_ns = store.spin_ns, spin_ns
    try:
        store.exchange_exposures((), "default", "reader", now).result()
    finally:
        store.spin_ns = default


def bench_bounds_build(repeat: int) -> dict[str, float]:
    """Seconds to build a snapshot's quantile bounds (median of ``repeat``)."""
    rng = np.random.default_rng(9)
    times = {}
    for n in (CANDIDATES, PUBLISH_ITEMS):
        alpha, beta = 1 + rng.uniform(0, 20, n), 1 + rng.uniform(0, 400, n)
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            QuantileBounds.build(alpha, beta)
            samples.append(time.perf_counter() - started)
        times[f"bounds_{n}"] = statistics.median(samples)
    return times


def bench_decisions(
    args: argparse.Namespace, prefix: str, urls: dict[str, str]
) -> dict[str, tuple[float, float, float]]:
    rng = np.random.default_rng(5)
    decisions, rewards, alpha, beta = fitted_data(rng)
    decision_log = logging.getLogger("bandit_pipeline.decisions")
    decision_log.setLevel(logging.INFO)
    decision_log.addHandler(logging.NullHandler())
    decision_log.propagate = False

    # Decisions per second on one core: this thread, and the service threads it starts,
    # run on --cpu alone; Redis and the rest of the machine keep the other cores.
    all_cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {args.cpu})
    calls = {}
    services = []
    for name, url in urls.items():
        service, calls[name] = decision_service(
            url, prefix, alpha, beta, args.background, args.returning_users
        )
        services.append(service)
    # The TCP decision again, with the exchange packed but never sent: what the round
    # trip costs, including its toll on the Python around it.
    service, calls["no_io"] = decision_service(
        args.redis_url, prefix, alpha, beta, args.background, args.returning_users
    )
    answer_at_once(service.store)
    services.append(service)
    policy_rng = np.random.default_rng(6)
    bounds = QuantileBounds.build(alpha, beta)
    calls["policy"] = lambda: bounds.sample(decision_rng(int(policy_rng.integers(2**62)))).top_k(2)
    # The sampler the bounded draws replace: numpy's Beta draws for every candidate.
    calls["numpy"] = lambda: top_k(
        decision_rng(int(policy_rng.integers(2**62))).beta(alpha, beta), 2
    )
    # The guard's read alone, over TCP, answered by blocking at once or by polling first.
    reader = services[0].store
    now = datetime.now(UTC)
    for name, spin_ns in (("read_block", 0), ("read_poll", reader.spin_ns)):
        calls[name] = lambda spin_ns=spin_ns: read_exposures(reader, spin_ns, now)
    # The same polled read at the decisions' pace: each right after a never-sent
    # decision's work, as in a decision, Redis has had that long to go idle. What any
    # design with one round trip per decision pays on this machine.
    calls["read_paced"] = Paced(calls["no_io"], lambda: read_exposures(reader, reader.spin_ns, now))
    mab = MAB(
        arms=list(range(CANDIDATES)), learning_policy=LearningPolicy.ThompsonSampling(), seed=7
    )
    mab.fit(decisions=decisions, rewards=rewards)

    def mabwiser() -> None:
        expectations = mab.predict_expectations()
        sorted(expectations, key=expectations.get, reverse=True)[:2]

    calls["mabwiser"] = mabwiser
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in calls}
    try:
        for number in range(args.repeat):
            for name, call in calls.items():
                count = args.mabwiser_decisions if name == "mabwiser" else args.decisions
                results[name].append(measure(call, count))
            progress(
                f"repeat {number + 1}: "
                + ", ".join(f"{k} p50={v[-1][0]:.0f}us" for k, v in results.items())
            )
    finally:
        for service in services:
            service.close()
        os.sched_setaffinity(0, all_cores)
    return {
        k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in results.items()
    }


@contextmanager
def private_unix_redis() -> Iterator[str | None]:
    """A throwaway redis-server listening only on a unix socket; None without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        progress("redis-server not found: skipping the unix socket run")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bandit-bench-redis-") as directory:
        socket_path = os.path.join(directory, "redis.sock")
        process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", socket_path, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"unix://{socket_path}"
            for _ in range(100):
                try:
                    redis.Redis.from_url(url).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("the private redis-server did not start")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def bench_publish(args: argparse.Namespace, prefix: str) -> dict[str, float]:
    rng = np.random.default_rng(8)
    client = redis.Redis.from_url(args.redis_url)
    store = RedisStore(client, prefix)
    snapshots = [
        Snapshot("default", surface, f"v{n}", datetime.now(UTC), None,
                 tuple(f"item-{i}" for i in range(PUBLISH_ITEMS)),
                 rng.uniform(1, 5, PUBLISH_ITEMS), rng.uniform(1, 50, PUBLISH_ITEMS))
        for n, surface in enumerate(SURFACES)
    ]  # fmt: skip
    blobs = [s.encode() for s in snapshots]
    times: dict[str, list[float]] = {"publish": [], "bare_set": [], "bare_hset": []}
    for number in range(args.publish_repeat):
        started = time.perf_counter()
        store.publish_many(snapshots)
        times["publish"].append(time.perf_counter() - started)

        started = time.perf_counter()
        with client.pipeline(transaction=False) as pipe:
            for surface, blob in zip(SURFACES, blobs, strict=True):
                pipe.set(f"{prefix}:bare:{surface}", blob)
            pipe.execute()
        times["bare_set"].append(time.perf_counter() - started)

        if number >= args.repeat:
            continue  # the field-by-field write takes half a second; a few suffice
        started = time.perf_counter()
        with client.pipeline(transaction=False) as pipe:
            for snapshot in snapshots:
                mapping = {
                    item: f"{a:.6g},{b:.6g}"
                    for item, a, b in zip(
                        snapshot.item_ids, snapshot.alpha, snapshot.beta, strict=True
                    )
                }
                pipe.hset(f"{prefix}:bare-hash:{snapshot.surface}", mapping=mapping)
            pipe.execute()
        times["bare_hset"].append(time.perf_counter() - started)
    progress(
        "publish: " + ", ".join(f"{k} median {statistics.median(v):.4f}s" for k, v in times.items())
    )
    return {k: statistics.median(v) for k, v in times.items()}


def cleanup(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def main() -> None:
    args = parse_args()
    prefix = f"bandit_bench_{os.getpid()}"
    try:
        with (
            private_unix_redis() if args.unix_socket else nullcontext() as unix_url,
            tempfile.TemporaryDirectory(prefix="bandit-bench-sqlite-") as sqlite_directory,
        ):
            urls = {
                "tcp": args.redis_url,
                **({"unix": unix_url} if unix_url else {}),
                "sqlite": f"sqlite:///{sqlite_directory}/online_store.db",
            }
            decisions = bench_decisions(args, prefix, urls)
        publish = bench_publish(args, prefix)
        builds = bench_bounds_build(3)
    finally:
        cleanup(args.redis_url, prefix)
    redis_version = redis.Redis.from_url(args.redis_url).info("server")["redis_version"]
    print(f"serving speed, medians of {args.repeat} repeats ({args.decisions:,} decisions each)")
    print(f"  machine   {machine_description()}; redis {redis_version} on this machine")
    print(f"  cores     {idle_description()}")
    print(f"  decisions on core {args.cpu} alone (one core); Redis free to use the others")
    who = f"{args.returning_users:,} users in turn" if args.returning_users else "a new user each"
    print(f"  users     {who}")
    print(
        f"decision, 2 slots of {CANDIDATES:,} candidates            p50 us    p99 us   per second"
    )
    labels = {
        "tcp": "ExplorationService.decide, Redis over TCP",
        "unix": "ExplorationService.decide, Redis over unix socket",
        "sqlite": "ExplorationService.decide, embedded SQLite store",
        "no_io": "  the TCP one with the exchange never sent",
        "policy": "Thompson top-2 alone (bounded inverse draws)",
        "numpy": "  the same with numpy's Beta draws of all",
        "read_block": "exposure read alone over TCP, blocking",
        "read_poll": "exposure read alone over TCP, polling first",
        "read_paced": "  the same, each after a decision's work",
        "mabwiser": "MABWiser ThompsonSampling top-2",
    }
    for key, label in labels.items():
        if key in decisions:
            p50, p99, rate = decisions[key]
            rate_cell = "" if math.isnan(rate) else f"{rate:>12,.0f}"
            print(f"  {label:<48}{p50:>9.0f}{p99:>10.0f}{rate_cell}")
    mabwiser_rate = decisions["mabwiser"][2]
    speedups = {
        k: decisions[k][2] / mabwiser_rate
        for k in ("tcp", "unix", "sqlite", "policy")
        if k in decisions
    }
    print("  throughput / MABWiser: " + ", ".join(f"{k} {v:.1f}x" for k, v in speedups.items()))
    print(
        f"publish, {PUBLISH_ITEMS:,} items x {len(SURFACES)} surfaces, "
        f"medians of {args.publish_repeat}             seconds"
    )
    print(f"  RedisStore.publish_many (encode, blobs, flips)   {publish['publish']:>10.4f}")
    print(f"  bare pipelined SET of the same 3 encoded blobs    {publish['bare_set']:>10.4f}")
    print(f"  bare pipelined HSET of the same 300,000 fields    {publish['bare_hset']:>10.4f}")
    print(
        f"  publish / bare SET: {publish['publish'] / publish['bare_set']:.2f}x; "
        f"publish / bare HSET: {publish['publish'] / publish['bare_hset']:.3f}x"
    )
    result = [
        f"{k}_p50_us={v[0]:.0f} {k}_p99_us={v[1]:.0f} {k}_per_s={v[2]:.0f}"
        for k, v in decisions.items()
    ]
    result += [f"{k}_speedup={v:.1f}" for k, v in speedups.items()]
    print(
        f"quantile bounds of a snapshot: {builds[f'bounds_{CANDIDATES}']:.4f}s for {CANDIDATES:,}"
        f" candidates, {builds[f'bounds_{PUBLISH_ITEMS}']:.3f}s for {PUBLISH_ITEMS:,}"
    )
    result += [f"{k}_s={v:.4f}" for k, v in {**publish, **builds}.items()]
    print("RESULT " + " ".join(result))  # fmt: skip


if __name__ == "__main__":
    main()
