"""What a round trip to a Redis on the same machine costs the thread that makes it.

The serving decision on Redis spends most of its time around one exchange with the
store (docs/serving.md, "Speed"). This measures the parts of that on the machine at
hand, each in the same run, with the process pinned to one core:

* a bare PING over TCP loopback: the time the send takes the thread, the wait for the
  answer (polling the socket) and the whole round trip, sent back to back and with a
  pause between sends (a Redis idle for a few microseconds costs more to wake);
* the policy step of a decision (bounded draws and top 2 of 1,000 candidates) alone,
  against the same step right after a round trip.

Run it::

    .venv/bin/python benchmarks/loopback_costs.py [--redis-url URL] [--count N]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import time
from urllib.parse import urlparse

import numpy as np
from common import idle_description, machine_description, positive_int

from bandit_pipeline.policy.thompson import QuantileBounds, decision_rng

PING = b"*1\r\n$4\r\nPING\r\n"
PAUSES_US = (0, 20, 150, 1000)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=positive_int, default=10_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)))
    parser.add_argument(
        "--redis-url", default=os.environ.get("BANDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    return parser.parse_args()


def connect(url: str) -> socket.socket:
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(sock: socket.socket, pause_us: int, count: int) -> np.ndarray:
    """Per PING: (send, wait, total) in microseconds."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    clock = time.perf_counter_ns
    samples = np.empty((count, 3))
    for n in range(count):
        until = clock() + pause_us * 1000
        while clock() < until:
            pass
        started = clock()
        sock.sendall(PING)
        sent = clock()
        while not poller.poll(0):
            pass
        answered = clock()
        answer = sock.recv(64)
        if answer != b"+PONG\r\n":
            raise RuntimeError(f"PING answered {answer!r}: this needs a Redis without AUTH")
        samples[n] = (sent - started, answered - sent, clock() - started)
    return samples / 1000


def policy_steps(sock: socket.socket | None, count: int) -> np.ndarray:
    """The policy step's time in microseconds, each right after a round trip when
    ``sock`` is given."""
    rng = np.random.default_rng(5)
    bounds = QuantileBounds.build(1 + rng.uniform(0, 5, 1000), 1 + rng.uniform(0, 80, 1000))
    poller = select.poll()
    if sock is not None:
        poller.register(sock, select.POLLIN)
    clock = time.perf_counter_ns
    samples = np.empty(count)
    for n in range(count):
        if sock is not None:
            sock.sendall(PING)
            while not poller.poll(0):
                pass
            sock.recv(64)
        started = clock()
        bounds.sample(decision_rng(n)).top_k(2)
        samples[n] = clock() - started
    return samples / 1000


def main() -> None:
    args = parse_args()
    os.sched_setaffinity(0, {args.cpu})
    sock = connect(args.redis_url)
    print(f"loopback costs, {args.repeat} runs of {args.count:,}; medians of the runs' p50 (p99)")
    print(f"  machine   {machine_description()}; this thread on core {args.cpu}")
    print(f"  cores     {idle_description()}")
    print("PING over TCP loopback, pause between sends    send us      wait us     total us")
    for pause in PAUSES_US:
        runs = [round_trips(sock, pause, args.count) for _ in range(args.repeat)]
        p50 = np.median([np.percentile(r, 50, axis=0) for r in runs], axis=0)
        p99 = np.median([np.percentile(r, 99, axis=0) for r in runs], axis=0)
        cells = "".join(f"{a:>7.1f} ({b:>5.1f})" for a, b in zip(p50, p99, strict=True))
        print(f"  {pause:>6} us{'':<36}{cells}")
    alone, after = [], []
    for _ in range(args.repeat):  # alternating, so that both see the same machine
        alone.append(policy_steps(None, args.count))
        after.append(policy_steps(sock, args.count))
    print("policy step, 2 of 1,000 candidates                 p50 us       p99 us")
    for label, runs in (("alone", alone), ("right after a round trip", after)):
        p50 = np.median([np.percentile(r, 50) for r in runs])
        p99 = np.median([np.percentile(r, 99) for r in runs])
        print(f"  {label:<48}{p50:>7.1f}{p99:>13.1f}")
    sock.close()


if __name__ == "__main__":
    main()
