"""How large a 15-minute window one machine carries: ingest and job by window size.

For each size (default 1M, 3M and 10M events) it generates synthetic shop traffic dated
inside one 15-minute window W into a JSON Lines file, and in a scratch database of its
own (a catalog of 100,000 items, nothing else, dropped at the end) runs the real commands
in processes of their own, each measured by scripts/peak_rss.py:

* ``bandit-pipeline ingest --historical FILE``: the events land in W (a historical import
  keeps each event's time as its ingestion time, so the whole file is W's, as if it had
  arrived live during W);
* ``bandit-pipeline job run --partition W``: the whole job on that window (posteriors,
  metric rollups, pool, publish into an online store of its own, every blocking check),
  incrementally after the empty window before it (run first, not measured).

Per size it prints the ingest's and the job's seconds and peak RSS, their sum against
the 15 minutes a window lasts, and the warehouse's size per million events (the
database after the job: events, aggregates, posteriors, rollups, indexes). The last line
is ``RESULT key=value ...``.

Run it on its own (not part of ``make bench``: the three sizes take about 25 minutes on
2 cores, and the 10M file needs 2.5 GB of disk)::

    .venv/bin/python benchmarks/knee.py [--events 1000000 3000000 10000000]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from common import (
    Scratch,
    add_postgres_url,
    machine_description,
    measured_run,
    positive_int,
    progress,
)
from sqlalchemy.engine import make_url
from warehouse_load import MARGIN, impressions_for, item_ids

from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline.simulate.traffic import generate_catalog
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW

N_ITEMS = 100_000
WINDOW_SECONDS = WINDOW.total_seconds()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ingest and job seconds by window size.")
    parser.add_argument(
        "--events",
        type=positive_int,
        nargs="+",
        default=[1_000_000, 3_000_000, 10_000_000],
        help="about how many events each window holds; default 1000000 3000000 10000000",
    )
    add_postgres_url(parser)
    return parser.parse_args(argv)


def measure(size: int, window_start: datetime, scratch: Scratch, folder: Path) -> dict:
    events_path, catalog_path = folder / "events.jsonl", folder / "catalog.jsonl"
    progress(f"generating about {size:,} events dated in one window")
    generated = generate_events(
        item_ids(N_ITEMS),
        impressions_for(size),
        start=window_start,
        end=window_start + WINDOW - MARGIN,
    )
    events = write_jsonl(events_path, generated)
    write_jsonl(catalog_path, generate_catalog(N_ITEMS, now=window_start))
    before = (window_start - WINDOW).strftime(PARTITION_FORMAT)
    env = {
        "BANDIT_WAREHOUSE_URL": scratch.url,
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{folder / 'online_store.db'}",
        "BANDIT_PARTITIONS_START": before,
    }
    measured_run(["catalog", "load", str(catalog_path)], env, folder)
    # The window before, empty: W then continues incrementally, as every window but a
    # deployment's first does.
    measured_run(["job", "run", "--partition", before], env, folder)
    progress(f"ingesting {events:,} events ({events_path.stat().st_size / 1e6:,.0f} MB)")
    ingest_kib, output, ingest_s = measured_run(
        ["ingest", "--historical", str(events_path)], env, folder
    )
    inserted = re.search(r"\binserted=(\d+)", output)
    if inserted is None or int(inserted.group(1)) != events:
        raise RuntimeError(f"{events:,} events in the file, the ingest says {output}")
    events_path.unlink()
    progress(f"running the job on the window ({ingest_s:,.0f} s of ingest)")
    key = window_start.strftime(PARTITION_FORMAT)
    job_kib, _, job_s = measured_run(["job", "run", "--partition", key], env, folder)
    with psycopg.connect(scratch.dsn) as connection:
        database_bytes = connection.execute("SELECT pg_database_size(current_database())")
        database_bytes = int(database_bytes.fetchone()[0])
    return {
        "events": events,
        "ingest_s": ingest_s,
        "ingest_kib": ingest_kib,
        "job_s": job_s,
        "job_kib": job_kib,
        "bytes_per_million": database_bytes / events * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_url(args.postgres_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window_start = now.replace(minute=now.minute - now.minute % 15) - timedelta(hours=1)
    batch = default_settings().ingest_batch_size
    rows = []
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        server_version = str(admin.execute("SHOW server_version").fetchone()[0])
        for size in args.events:
            with (
                tempfile.TemporaryDirectory(prefix="bandit_bench_") as name,
                Scratch(server, admin) as scratch,
            ):
                rows.append(measure(size, window_start, scratch, Path(name)))
            progress(f"{rows[-1]}")

    print("one 15-minute window of each size: ingest, then the job on it")
    print(f"  machine      {machine_description()}")
    print(f"  postgresql   {server_version}")
    print(f"  batch size   {batch:,}; {N_ITEMS:,} items; each size in a fresh database")
    print(
        f"  {'events':>12} {'ingest s':>9} {'ingest MiB':>10} {'job s':>8} {'job MiB':>8} "
        f"{'sum s':>7} {'of 15 min':>9} {'MB / 1M events':>14}"
    )
    for row in rows:
        total = row["ingest_s"] + row["job_s"]
        print(
            f"  {row['events']:>12,} {row['ingest_s']:>9.1f} {row['ingest_kib'] / 1024:>10,.0f} "
            f"{row['job_s']:>8.1f} {row['job_kib'] / 1024:>8,.0f} {total:>7.1f} "
            f"{100 * total / WINDOW_SECONDS:>8.0f}% {row['bytes_per_million'] / 1e6:>14,.0f}"
        )
    fits = [row["events"] for row in rows if row["ingest_s"] + row["job_s"] <= WINDOW_SECONDS]
    largest = f"{max(fits):,}" if fits else "none of them"
    print(f"  largest window measured that fits in 15 minutes: {largest}")
    print(
        "RESULT "
        + " ".join(
            f"events_{r['events']}:ingest_s={r['ingest_s']:.1f},job_s={r['job_s']:.1f},"
            f"ingest_kib={r['ingest_kib']},job_kib={r['job_kib']},"
            f"mb_per_million={r['bytes_per_million'] / 1e6:.1f}"
            for r in rows
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
