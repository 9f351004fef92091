"""The 15-minute job on a busy window, against one pass over that window's rows.

In a scratch database (dropped at the end) it loads, straight with COPY into
``bandit_rewards``, some days of history, a catalog, and one busy 15-minute window
[W, W+15m) followed by an empty one, materialises every history partition up to W, then
measures per repeat, alternating:

* floor: ``benchmarks/sql/one_pass_window.sql``, one pass over the window's rows grouped
  by impression key and then by item with the decay, all rows fetched, in a session of
  the product's own engine (the same session options as the job);
* (a) the window's impression keys staged and its evidence per item selected
  (``stage_window_keys.sql``, ``window_evidence.sql``), all rows fetched;
* (b) ``materialise_window`` on W: aggregates, posteriors and metric rollups, incremental;
* job on W and job on W+15m: the whole Dagster job (posteriors, metric rollups, pool,
  publish, every blocking check) run in this process on one partition, each run
  publishing into a fresh online store so both do the same publishing work.

The marginal cost of the window is job(W) - job(W+15m), reported against the floor.
After the repeats, as a floor of its own, it times storing the window's aggregate and
posterior rows: the same rows inserted once more into their tables (rolled back).
Then, in a second scratch database, it loads ``--backfill-days`` days and times
materialising all their partitions in order (what a single-run backfill does). The last
line is ``RESULT key=value ...``.

Run it (``make bench`` does, with the defaults)::

    .venv/bin/python benchmarks/posterior_update.py [--items N] [--window-events N]
        [--history-days D] [--history-events-per-day N] [--backfill-days D] [--repeat R]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import Scratch, add_postgres_url, machine_description, positive_int, progress
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from warehouse_load import MARGIN, copy_events, day_chunks, table_size

from bandit_pipeline.ingest import load_catalog
from bandit_pipeline.monitoring.rollups import MetricsScope
from bandit_pipeline.settings import Settings, default_settings
from bandit_pipeline.simulate.traffic import generate_catalog, write_jsonl
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW
from bandit_pipeline.warehouse.sql import sql_statement
from bandit_pipeline.window_keys import evidence_params, stage_window_keys
from bandit_pipeline.window_update import materialise_window

DEFAULTS = default_settings()  # the documented parameters, whatever BANDIT_* holds
FLOOR_SQL = Path(__file__).with_name("sql") / "one_pass_window.sql"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the 15-minute job on a busy window.")
    parser.add_argument("--items", type=positive_int, default=100_000)
    parser.add_argument("--window-events", type=positive_int, default=1_000_000)
    parser.add_argument("--history-days", type=positive_int, default=2)
    parser.add_argument("--history-events-per-day", type=positive_int, default=100_000)
    parser.add_argument("--backfill-days", type=positive_int, default=7)
    parser.add_argument("--repeat", type=positive_int, default=3)
    add_postgres_url(parser)
    return parser.parse_args(argv)


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


def timed_fetch(engine: Engine, statement: Any, bind: dict[str, Any]) -> tuple[float, int]:
    """Seconds to run ``statement`` and fetch every row, and how many rows."""
    with engine.connect() as connection:
        started = time.perf_counter()
        rows = connection.execute(statement, bind).fetchall()
        return time.perf_counter() - started, len(rows)


def staged_evidence(
    engine: Engine, window_start: datetime, bind: dict[str, Any]
) -> tuple[float, int]:
    """Seconds to stage the window's impression keys and select its evidence per item,
    every row fetched, and how many rows (nothing is stored)."""
    with engine.begin() as connection:
        started = time.perf_counter()
        stage_window_keys(
            connection, DEFAULTS.posterior_parameters(), window_start,
            window_start + WINDOW, DEFAULTS.max_clock_skew,
        )  # fmt: skip
        rows = connection.execute(
            sql_statement("posteriors/window_evidence", connection.dialect.name), bind
        ).fetchall()
        return time.perf_counter() - started, len(rows)


STORE_AGAIN = {
    "bandit_reward_aggregates": "as_of, namespace, surface, item_id, impressions, clicks, "
    "add_to_carts, purchases, reward_evidence, non_reward_evidence, late_corrections",
    "bandit_posteriors": "as_of, namespace, surface, item_id, alpha, beta",
}


def store_again(engine: Engine, as_of: datetime) -> float:
    """Seconds to insert the window's aggregate and posterior rows once more into their
    own tables (under an as_of a year later, rolled back): what storing the window's
    results costs, whatever computed them."""
    later = {"as_of": as_of, "later": as_of + timedelta(days=365)}
    with engine.begin() as connection:
        started = time.perf_counter()
        for table, columns in STORE_AGAIN.items():
            values = columns.replace("as_of,", ":later,", 1)
            connection.execute(
                text(
                    f"INSERT INTO {table} ({columns}) SELECT {values} FROM {table} "
                    "WHERE as_of = :as_of"
                ),
                later,
            )
        seconds = time.perf_counter() - started
        connection.rollback()
    return seconds


def window_bind(window_start: datetime) -> dict[str, Any]:
    return evidence_params(
        DEFAULTS.posterior_parameters(),
        window_start,
        window_start + WINDOW,
        DEFAULTS.max_clock_skew,
    )


def load_catalog_of(engine: Engine, settings: Settings, items: int, now: datetime) -> None:
    with tempfile.TemporaryDirectory(prefix="bandit_bench_") as folder:
        path = Path(folder) / "catalog.jsonl"
        write_jsonl(path, generate_catalog(items, now=now))
        report = load_catalog(engine, str(path), settings)
    if report.inserted != items:
        raise RuntimeError(f"catalog: {items} items, {report.summary()}")


class JobTimer:
    """Runs the job on one partition in this process as the newest window: the pools of
    later windows are removed first and each run publishes into a fresh online store, so
    every run builds, checks and publishes a pool. One Dagster instance for them all."""

    def __init__(self, settings: Settings, engine: Engine, folder: Path) -> None:
        import dagster as dg

        self.settings, self.engine, self.folder, self.runs = settings, engine, folder, 0
        self.instance = dg.DagsterInstance.ephemeral()

    def seconds(self, window_start: datetime) -> float:
        from bandit_pipeline.local_runs import WindowRunner

        with self.engine.begin() as connection:
            connection.execute(
                text("DELETE FROM bandit_candidate_pool WHERE as_of > :as_of"),
                {"as_of": window_start + WINDOW},
            )
        self.runs += 1
        store = self.folder / f"online_store_{self.runs}.db"
        settings = self.settings.model_copy(update={"online_store_url": f"sqlite:///{store}"})
        runner = WindowRunner(settings, self.instance)
        started = time.perf_counter()
        runner.run(window_start.strftime(PARTITION_FORMAT))
        return time.perf_counter() - started


def measure_window(args: argparse.Namespace, scratch: Scratch, window_start: datetime) -> dict:
    out: dict[str, Any] = {}
    history_start = window_start - timedelta(days=args.history_days)
    chunks = day_chunks("h", history_start, args.history_days, args.history_events_per_day)
    chunks.append(("w", window_start, window_start + WINDOW - MARGIN, args.window_events))
    progress(f"loading history and window into {scratch.name}")
    started = time.perf_counter()
    copy_events(scratch.dsn, chunks, args.items)
    out["load_seconds"] = time.perf_counter() - started
    out["rows"], out["table_bytes"] = table_size(scratch.dsn)
    engine = scratch.engine
    settings = DEFAULTS.model_copy(
        update={
            "warehouse_url": scratch.url,
            "partitions_start": history_start.strftime(PARTITION_FORMAT),
        }
    )
    load_catalog_of(engine, settings, args.items, window_start)

    history_windows = 96 * args.history_days
    progress(f"materialising {history_windows} history partitions")
    started = time.perf_counter()
    materialise_all(engine, history_start + WINDOW, history_windows)
    out["history_seconds"] = time.perf_counter() - started

    floor_statement = text(FLOOR_SQL.read_text())
    bind = window_bind(window_start)
    empty_start = window_start + WINDOW
    timings: dict[str, list[float]] = {
        "floor": [], "bare": [], "materialise": [], "store": [], "job": [], "job_empty": []
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bandit_bench_") as folder:
        jobs = JobTimer(settings, engine, Path(folder))
        progress("warming up: the job on both windows once")
        jobs.seconds(window_start)
        jobs.seconds(empty_start)
        for number in range(1, args.repeat + 1):
            seconds, out["floor_rows"] = timed_fetch(engine, floor_statement, bind)
            timings["floor"].append(seconds)
            seconds, out["evidence_rows"] = staged_evidence(engine, window_start, bind)
            timings["bare"].append(seconds)
            started = time.perf_counter()
            result = materialise_window(
                engine, window_start + WINDOW, DEFAULTS.posterior_parameters(),
                future_scan=DEFAULTS.max_clock_skew, metrics=MetricsScope(DEFAULTS.namespace),
            )  # fmt: skip
            timings["materialise"].append(time.perf_counter() - started)
            if result.mode != "incremental":
                raise RuntimeError(f"benchmark window ran {result.mode}")
            out["result"] = result
            # The empty window first, then the busy one, then the other way round.
            order = [(empty_start, "job_empty"), (window_start, "job")]
            for start, key in order if number % 2 else reversed(order):
                timings[key].append(jobs.seconds(start))
            progress(
                f"repeat {number}/{args.repeat}: floor {timings['floor'][-1]:.2f}s, "
                f"window_evidence {timings['bare'][-1]:.2f}s, "
                f"materialise {timings['materialise'][-1]:.2f}s, "
                f"job {timings['job'][-1]:.2f}s, job on the empty window "
                f"{timings['job_empty'][-1]:.2f}s"
            )
    # Apart, after the job timings: each leaves its rolled-back rows behind until vacuumed.
    for _ in range(args.repeat):
        timings["store"].append(store_again(engine, window_start + WINDOW))
    out["timings"] = timings
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_url(args.postgres_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window_start = now.replace(minute=now.minute - now.minute % 15) - timedelta(hours=1)

    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        server_version = str(admin.execute("SHOW server_version").fetchone()[0])
        with Scratch(server, admin) as scratch:
            out = measure_window(args, scratch, window_start)

        # Part 2: backfill of several days in a fresh database.
        with Scratch(server, admin) as scratch:
            backfill_start = window_start - timedelta(days=args.backfill_days)
            chunks = day_chunks(
                "b", backfill_start, args.backfill_days, args.history_events_per_day
            )
            progress(f"loading {args.backfill_days} days into {scratch.name}")
            backfill_rows = copy_events(scratch.dsn, chunks, args.items)
            _, backfill_bytes = table_size(scratch.dsn)
            windows = 96 * args.backfill_days
            progress(f"backfilling {windows} partitions")
            started = time.perf_counter()
            per_partition = materialise_all(scratch.engine, backfill_start + WINDOW, windows)
            backfill_total = time.perf_counter() - started

    report(args, out, server_version, window_start)
    print(
        f"backfill: {args.backfill_days} days at {args.history_events_per_day:,}/day, "
        f"{backfill_rows:,} rows ({backfill_bytes / 1024**2:.1f} MiB), {windows} partitions"
    )
    print(
        f"  total {backfill_total:.1f}s, per partition median "
        f"{statistics.median(per_partition):.3f}s, max {max(per_partition):.3f}s"
    )
    t = {key: statistics.median(values) for key, values in out["timings"].items()}
    marginal = t["job"] - t["job_empty"]
    print(
        "RESULT "
        f"items={args.items} window_events={args.window_events} rows={out['rows']} "
        f"items_touched={out['result'].items_touched} floor_s={t['floor']:.4f} "
        f"bare_s={t['bare']:.4f} materialise_s={t['materialise']:.4f} "
        f"job_s={t['job']:.4f} job_empty_s={t['job_empty']:.4f} "
        f"marginal_s={marginal:.4f} marginal_vs_floor={marginal / t['floor']:.3f} "
        f"backfill_days={args.backfill_days} backfill_partitions={windows} "
        f"backfill_total_s={backfill_total:.2f} "
        f"backfill_partition_median_s={statistics.median(per_partition):.4f}"
    )
    return 0


def report(args: argparse.Namespace, out: dict, server_version: str, window_start: datetime):
    timings, result = out["timings"], out["result"]
    t = {key: statistics.median(values) for key, values in timings.items()}

    def line(label: str, key: str) -> str:
        each = ", ".join(f"{value:.2f}" for value in timings[key])
        return f"  {label:<58}{t[key]:>8.3f}s   ({each})"

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
    print(f"medians of {args.repeat} (each repeat)")
    print(line("floor: one pass over the window, by key then item", "floor"))
    print(line("(a) keys staged + window_evidence, all rows fetched", "bare"))
    print(line("(b) materialise_window (aggregates, posteriors, rollups)", "materialise"))
    print(line("storing its aggregates and posteriors again (apart)", "store"))
    print(line("job on the busy window", "job"))
    print(line("job on the empty window after it", "job_empty"))
    marginal = t["job"] - t["job_empty"]
    print(
        f"  marginal cost of the window: {marginal:.3f}s = {marginal / t['floor']:.2f}x the "
        f"floor (target at most 3x); (b) = {t['materialise'] / t['floor']:.2f}x the floor"
    )


if __name__ == "__main__":
    sys.exit(main())
