"""Peak memory of `bandit-pipeline ingest` against the size of the file.

For each size (default 1,000,000 and 2,000,000 events) it generates synthetic shop
traffic into a JSON Lines file (as benchmarks/ingest_throughput.py does: 100,000 items,
the last two days), then runs the real command in a process of its own, into a scratch
database of its own (all inserts, dropped at the end), with the configured batch size
(BANDIT_INGEST_BATCH_SIZE, default 50,000). The peak resident set size of that process
comes from scripts/peak_rss.py, the launcher that keeps this script's own memory out of
the figure. It prints each size's peak, the growth from the first size to the last, and a
final ``RESULT key=value ...`` line.

The test suite checks the same at a small size on every run
(bandit_pipeline_tests/test_ingest_memory.py); this is the full size. Each ingest of 2M
events takes about a minute on 2 cores.

Run it (``make bench`` does, with the defaults)::

    .venv/bin/python benchmarks/ingest_memory.py [--events 1000000 2000000]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from datetime import timedelta
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
from warehouse_load import generate_file

from bandit_pipeline.settings import load_settings

N_ITEMS = 100_000
SPAN = timedelta(days=2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Peak RSS of bandit-pipeline ingest by size.")
    parser.add_argument(
        "--events",
        type=positive_int,
        nargs="+",
        default=[1_000_000, 2_000_000],
        help="about how many events each file holds; default 1000000 2000000",
    )
    add_postgres_url(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_url(args.postgres_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    # The batch size the ingest will read from the same environment.
    batch = load_settings(warehouse_url=args.postgres_url).ingest_batch_size
    peaks: dict[int, int] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bandit_bench_") as name,
        psycopg.connect(admin_dsn, autocommit=True) as admin,
    ):
        folder = Path(name)
        for size in args.events:
            path = folder / "events.jsonl"
            progress(f"generating about {size:,} events into {path}")
            events = generate_file(path, size, N_ITEMS, SPAN)
            with Scratch(server, admin) as scratch:
                progress(f"ingesting {events:,} events ({path.stat().st_size / 1e6:,.0f} MB)")
                peak, output, seconds = measured_run(
                    ["ingest", str(path)], {"BANDIT_WAREHOUSE_URL": scratch.url}, folder
                )
                summary = output.splitlines()[0]
            inserted = re.search(r"\binserted=(\d+)", summary)
            if inserted is None or int(inserted.group(1)) != events:
                print(f"error: {events:,} events in the file, the ingest says {summary}")
                return 1
            progress(f"{events:,} events: peak RSS {peak / 1024:,.0f} MiB, {seconds:,.0f} s")
            peaks[events] = peak
            path.unlink()

    print("peak RSS of `bandit-pipeline ingest`, one process per file")
    print(f"  machine      {machine_description()}")
    print(f"  batch size   {batch:,}")
    for events, peak in peaks.items():
        print(f"  {events:>12,} events   {peak / 1024:8,.0f} MiB")
    first, last = peaks[min(peaks)], peaks[max(peaks)]
    print(f"  growth from the smallest file to the largest: {(last - first) / 1024:+,.1f} MiB")
    sizes = " ".join(f"peak_rss_kib_{events}={peak}" for events, peak in peaks.items())
    print(f"RESULT batch_size={batch} {sizes} growth_kib={last - first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
