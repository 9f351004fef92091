"""Cost of the Great Expectations checks next to the window they guard.

In a scratch PostgreSQL database: a catalog of ``--items`` items and one 15-minute window
of ``--window-events`` events. Then, per repeat, the window's materialisation
(``materialise_window``: aggregates and posteriors), its candidate pool, and the four
suites over that window (rows, aggregates, posteriors, pool). The one-time import of
Great Expectations is reported apart.

Run it::

    .venv/bin/python benchmarks/quality_checks.py [--window-events N] [--items N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
from common import Scratch, add_postgres_url, machine_description, positive_int, progress
from posterior_update import MARGIN, copy_events
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bandit_pipeline.monitoring import quality
from bandit_pipeline.pool import build_candidate_pool
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_catalog
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.window_update import materialise_window


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-events", type=positive_int, default=100_000)
    parser.add_argument("--items", type=positive_int, default=100_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    add_postgres_url(parser)
    args = parser.parse_args()
    server = make_url(args.postgres_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now.replace(minute=now.minute - now.minute % 15) - timedelta(hours=1)
    as_of = start + WINDOW
    defaults = default_settings()
    params, pool = defaults.posterior_parameters(), defaults.pool_parameters()

    started = time.perf_counter()
    import great_expectations  # noqa: F401  (the one-time cost, measured apart)

    import_seconds = time.perf_counter() - started
    timings: dict[str, list[float]] = {"window": [], "pool": [], "checks": []}
    with psycopg.connect(admin_dsn, autocommit=True) as admin, Scratch(server, admin) as scratch:
        engine = scratch.engine
        progress("loading catalog and window")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO item_catalog (namespace, item_id, title, category, price,"
                    " availability, freshness_index) VALUES (:namespace, :item_id, :title,"
                    " :category, :price, :availability, :freshness_index)"
                ),
                [
                    {k: v for k, v in item.items() if k != "first_seen_at"}
                    for item in generate_catalog(args.items, now=now)
                ],
            )
        events = copy_events(
            scratch.dsn, [("w", start, as_of - MARGIN, args.window_events)], args.items
        )
        for number in range(args.repeat):
            begun = time.perf_counter()
            materialise_window(engine, as_of, params, future_scan=defaults.max_clock_skew)
            timings["window"].append(time.perf_counter() - begun)
            begun = time.perf_counter()
            build_candidate_pool(engine, as_of, defaults.namespace, pool, params)
            timings["pool"].append(time.perf_counter() - begun)
            begun = time.perf_counter()
            results = [
                quality.check_rewards(engine, as_of),
                quality.check_aggregates(engine, as_of),
                quality.check_posteriors(engine, as_of, params),
                quality.check_pool(engine, as_of, pool),
            ]
            timings["checks"].append(time.perf_counter() - begun)
            if not all(r.success for r in results):
                print(f"error: a suite failed: {[r.failures for r in results]}", file=sys.stderr)
                return 1
            rows = {r.suite: r.rows for r in results}
            progress(
                f"repeat {number + 1}: "
                + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in timings.items())
            )
    window, pool_s, checks = (statistics.median(timings[k]) for k in ("window", "pool", "checks"))
    print(f"quality checks, medians of {args.repeat} repeats")
    print(f"  machine   {machine_description()}")
    print(f"  data      {events:,} events in one window, {args.items:,} catalog items")
    print(f"  rows checked: {rows}")
    print(f"  great_expectations import (once per process)   {import_seconds:8.2f} s")
    print(f"  window materialisation (aggregates+posteriors) {window:8.3f} s")
    print(f"  candidate pool                                 {pool_s:8.3f} s")
    print(f"  four suites over the window                    {checks:8.3f} s")
    print(f"  checks / (window + pool): {checks / (window + pool_s):.2f}x")
    print(
        f"RESULT events={events} import_s={import_seconds:.2f} window_s={window:.3f} "
        f"pool_s={pool_s:.3f} checks_s={checks:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
