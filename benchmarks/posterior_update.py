"""Cost of materialising one 15-minute posterior partition, against the bare aggregation.

In a scratch database (dropped at the end) it loads, straight with COPY into
``bandit_rewards``, some days of history plus one busy 15-minute window [W, W+15m),
materialises every history partition up to W, then measures per repeat:

* (a) the bare ``window_evidence`` SELECT for [W, W+15m), all rows fetched (baseline);
* (b) ``materialise_window(engine, W+15m, params)``: aggregates and posteriors, in
  incremental mode (a rerun replaces the partition).

It reports the medians and b/a. Then, in a second scratch database, it loads
``--backfill-days`` days and times materialising all their partitions in order (what
a single-run backfill does). The last line is ``RESULT key=value ...``.

Run it::

    .venv/bin/python benchmarks/posterior_update.py [--items N] [--window-events N]
        [--history-days D] [--history-events-per-day N] [--backfill-days D]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from common import Scratch, add_postgres_url, machine_description, positive_int, progress
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bandit_pipeline.ingest.events import EVENT_COLUMNS
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_events
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.sql import sql_statement
from bandit_pipeline.window_update import (
    evidence_params,
    materialise_window,
)

# generate_events yields about 0.07 outcome events per impression.
EVENTS_PER_IMPRESSION = 1.07
INGEST_DELAY = timedelta(seconds=5)
# Events are generated up to this long before a boundary, so that occurred_at plus
# INGEST_DELAY stays inside the window they are meant for.
MARGIN = timedelta(seconds=10)
REPEAT = 3
DEFAULTS = default_settings()  # the documented parameters, whatever BANDIT_* holds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure 15-minute posterior partitions.")
    parser.add_argument("--items", type=positive_int, default=100_000)
    parser.add_argument("--window-events", type=positive_int, default=1_000_000)
    parser.add_argument("--history-days", type=positive_int, default=2)
    parser.add_argument("--history-events-per-day", type=positive_int, default=100_000)
    parser.add_argument("--backfill-days", type=positive_int, default=7)
    add_postgres_url(parser)
    return parser.parse_args(argv)


def impressions_for(events: int) -> int:
    return max(1, int(events / EVENTS_PER_IMPRESSION))


def rows_of(events: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for event in events:
        occurred = datetime.fromisoformat(event["occurred_at"])
        yield tuple(
            occurred if c == "occurred_at" else
            occurred + INGEST_DELAY if c == "ingested_at" else
            event.get(c)
            for c in EVENT_COLUMNS
        )  # fmt: skip


def copy_events(dsn: str, chunks: list[tuple[str, datetime, datetime, int]], items: int) -> int:
    """COPY each (id_prefix, start, end, events) chunk into bandit_rewards; ANALYZE."""
    item_ids = [f"item-{i}" for i in range(items)]
    total = 0
    copy = sql.SQL("COPY bandit_rewards ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in EVENT_COLUMNS)
    )
    with psycopg.connect(dsn, options="-c timezone=UTC") as connection:
        with connection.cursor() as cursor:
            for seed, (prefix, start, end, events) in enumerate(chunks, start=1):
                generated = generate_events(
                    item_ids, impressions_for(events), start=start, end=end, seed=seed,
                    id_prefix=prefix,
                )  # fmt: skip
                with cursor.copy(copy) as writer:
                    for row in rows_of(generated):
                        writer.write_row(row)
                        total += 1
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE bandit_rewards")
    return total


def day_chunks(prefix: str, start: datetime, days: int, per_day: int) -> list[tuple]:
    return [
        (f"{prefix}{d}", start + timedelta(days=d), start + timedelta(days=d + 1) - MARGIN, per_day)
        for d in range(days)
    ]


def database_size(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as connection:
        rows, size = connection.execute(
            "SELECT count(*), pg_total_relation_size('bandit_rewards') FROM bandit_rewards"
        ).fetchone()
    return int(rows), int(size)


def materialise_all(engine: Engine, first_as_of: datetime, count: int) -> list[float]:
    params = DEFAULTS.posterior_parameters()
    seconds = []
    for i in range(count):
        as_of = first_as_of + i * WINDOW
        started = time.perf_counter()
        result = materialise_window(engine, as_of, params, future_scan=DEFAULTS.max_clock_skew)
        seconds.append(time.perf_counter() - started)
        if i > 0 and result.mode != "incremental":
            raise RuntimeError(f"partition {as_of} ran {result.mode}, expected incremental")
    return seconds


def bare_evidence(engine: Engine, window_start: datetime) -> tuple[float, int]:
    statement = sql_statement("posteriors/window_evidence")
    bind = evidence_params(
        DEFAULTS.posterior_parameters(),
        window_start,
        window_start + WINDOW,
        DEFAULTS.max_clock_skew,
    )
    with engine.connect() as connection:
        started = time.perf_counter()
        rows = connection.execute(statement, bind).fetchall()
        elapsed = time.perf_counter() - started
    return elapsed, len(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_url(args.postgres_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window_start = now.replace(minute=now.minute - now.minute % 15) - timedelta(hours=1)
    params = DEFAULTS.posterior_parameters()
    out: dict[str, Any] = {}

    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        server_version = str(admin.execute("SHOW server_version").fetchone()[0])

        # Part 1: one busy window after some history.
        with Scratch(server, admin) as scratch:
            history_start = window_start - timedelta(days=args.history_days)
            chunks = day_chunks("h", history_start, args.history_days, args.history_events_per_day)
            chunks.append(("w", window_start, window_start + WINDOW - MARGIN, args.window_events))
            progress(f"loading history and window into {scratch.name}")
            started = time.perf_counter()
            copy_events(scratch.dsn, chunks, args.items)
            out["load_seconds"] = time.perf_counter() - started
            out["rows"], out["table_bytes"] = database_size(scratch.dsn)
            engine = scratch.engine

            history_windows = 96 * args.history_days
            progress(f"materialising {history_windows} history partitions")
            started = time.perf_counter()
            materialise_all(engine, history_start + WINDOW, history_windows)
            out["history_seconds"] = time.perf_counter() - started

            bare, full = [], []
            for _ in range(REPEAT):
                seconds, evidence_rows = bare_evidence(engine, window_start)
                bare.append(seconds)
                started = time.perf_counter()
                result = materialise_window(
                    engine, window_start + WINDOW, params, future_scan=DEFAULTS.max_clock_skew
                )
                full.append(time.perf_counter() - started)
                if result.mode != "incremental":
                    raise RuntimeError(f"benchmark window ran {result.mode}")
                progress(f"bare {seconds:.3f}s, materialise {full[-1]:.3f}s ({result.mode})")
            out["evidence_rows"] = evidence_rows
            out["result"] = result
            out["bare"] = statistics.median(bare)
            out["full"] = statistics.median(full)

        # Part 2: backfill of several days in a fresh database.
        with Scratch(server, admin) as scratch:
            backfill_start = window_start - timedelta(days=args.backfill_days)
            chunks = day_chunks(
                "b", backfill_start, args.backfill_days, args.history_events_per_day
            )
            progress(f"loading {args.backfill_days} days into {scratch.name}")
            backfill_rows = copy_events(scratch.dsn, chunks, args.items)
            _, backfill_bytes = database_size(scratch.dsn)
            windows = 96 * args.backfill_days
            progress(f"backfilling {windows} partitions")
            started = time.perf_counter()
            per_partition = materialise_all(scratch.engine, backfill_start + WINDOW, windows)
            backfill_total = time.perf_counter() - started

    result = out["result"]
    ratio = out["full"] / out["bare"] if out["bare"] > 0 else float("inf")
    print(f"machine: {machine_description()}")
    print(f"PostgreSQL {server_version}")
    print(
        f"window benchmark: {args.items:,} items, {out['rows']:,} rows in bandit_rewards "
        f"({out['table_bytes'] / 1024**2:.1f} MiB incl. indexes), "
        f"{args.history_days} history days at {args.history_events_per_day:,}/day, "
        f"~{args.window_events:,} events in [{window_start:%Y-%m-%d %H:%M}, +15m)"
    )
    print(
        f"  load {out['load_seconds']:.1f}s; {96 * args.history_days} history partitions "
        f"{out['history_seconds']:.1f}s"
    )
    print(
        f"  partition: mode={result.mode}, items_touched={result.items_touched:,}, "
        f"impressions={result.impressions:,}, posterior_rows={result.posterior_rows:,}, "
        f"evidence rows={out['evidence_rows']:,}"
    )
    print(f"  (a) bare window_evidence SELECT, median of {REPEAT}: {out['bare']:.3f}s")
    print(
        f"  (b) materialise_window, median of {REPEAT}: {out['full']:.3f}s "
        f"(last: aggregate {result.aggregate_seconds:.3f}s, "
        f"posterior {result.posterior_seconds:.3f}s)"
    )
    print(f"  b/a = {ratio:.2f}x (target at most 2x)")
    print(
        f"backfill: {args.backfill_days} days at {args.history_events_per_day:,}/day, "
        f"{backfill_rows:,} rows ({backfill_bytes / 1024**2:.1f} MiB), {windows} partitions"
    )
    print(
        f"  total {backfill_total:.1f}s, per partition median "
        f"{statistics.median(per_partition):.3f}s, max {max(per_partition):.3f}s"
    )
    print(
        "RESULT "
        f"items={args.items} window_events={args.window_events} rows={out['rows']} "
        f"items_touched={result.items_touched} bare_s={out['bare']:.4f} "
        f"materialise_s={out['full']:.4f} ratio={ratio:.3f} "
        f"backfill_days={args.backfill_days} backfill_partitions={windows} "
        f"backfill_total_s={backfill_total:.2f} "
        f"backfill_partition_median_s={statistics.median(per_partition):.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
