"""The window job on the Spark warehouse (docs/spark.md) on a busy window.

In a scratch lake (a temporary directory, removed at the end) on a local Spark it loads
``--history-days`` of events and one busy 15-minute window [W, W+15m) with the same
generator as ``posterior_update.py`` (each event ingested 5 s after it occurred), through
``SparkWarehouse.append_event_frame`` from a Parquet file. It materialises the window
before W (from scratch: the whole history in one window), then times
``materialise_window_spark`` on W ``--repeat`` times (each run incremental: a rerun
replaces the window). The last line is ``RESULT key=value ...``.

Run it (not part of ``make bench``: Spark takes minutes here)::

    .venv/bin/python benchmarks/spark_window.py [--items N] [--window-events N]
        [--history-days D] [--history-events-per-day N] [--repeat R] [--master local[2]]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from common import machine_description, positive_int, progress
from warehouse_load import MARGIN, day_chunks, impressions_for, item_ids, rows_of

from bandit_pipeline.ingest.events import EVENT_COLUMNS
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_events
from bandit_pipeline.spark_window import materialise_window_spark
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.spark import BATCH_SCHEMA, SparkWarehouse, start_session

DEFAULTS = default_settings()  # the documented parameters, whatever BANDIT_* holds
_TYPES = {"occurred_at": pa.timestamp("us", "UTC"), "slot": pa.int32(), "explore": pa.bool_()}
# The Parquet file of the batch: BATCH_SCHEMA's columns in Spark's types.
PARQUET_SCHEMA = pa.schema(
    [(c, _TYPES.get(c, pa.string())) for c in EVENT_COLUMNS if c != "ingested_at"]
    + [("ingested_at_given", pa.timestamp("us", "UTC")), ("ordinal", pa.int64())]
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the window job on Spark.")
    parser.add_argument("--items", type=positive_int, default=100_000)
    parser.add_argument("--window-events", type=positive_int, default=1_000_000)
    parser.add_argument("--history-days", type=positive_int, default=1)
    parser.add_argument("--history-events-per-day", type=positive_int, default=100_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--master", default="local[2]")
    return parser.parse_args(argv)


def write_events(path: Path, chunks, items: int) -> int:
    """The chunks' generated events as one Parquet file of the batch's columns."""
    ids = item_ids(items)
    columns: dict[str, list] = {c: [] for c in EVENT_COLUMNS}
    for seed, (prefix, start, end, events) in enumerate(chunks, start=1):
        generated = generate_events(
            ids, impressions_for(events), start=start, end=end, seed=seed, id_prefix=prefix
        )
        for row in rows_of(generated):
            for column, value in zip(EVENT_COLUMNS, row, strict=True):
                columns[column].append(value)
    count = len(columns["event_id"])
    table = pa.table(
        {
            **{c: columns[c] for c in EVENT_COLUMNS if c != "ingested_at"},
            "ingested_at_given": columns["ingested_at"],
            "ordinal": list(range(count)),
        }
    )
    pq.write_table(table.cast(PARQUET_SCHEMA), path)
    return count


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = DEFAULTS.posterior_parameters()
    window_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    history_start = window_start - timedelta(days=args.history_days)
    chunks = day_chunks("h", history_start, args.history_days, args.history_events_per_day)
    chunks.append(("w", window_start, window_start + WINDOW - MARGIN, args.window_events))
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bandit_spark_bench_") as folder:
        root = Path(folder)
        progress("generating events")
        events = write_events(root / "events.parquet", chunks, args.items)
        started = time.perf_counter()
        spark = start_session(args.master, str(root / "lake"))
        warehouse = SparkWarehouse(spark, str(root / "lake"), "bench")
        out["session_seconds"] = round(time.perf_counter() - started, 2)
        progress(f"appending {events} events")
        started = time.perf_counter()
        frame = warehouse.spark.read.schema(BATCH_SCHEMA).parquet(str(root / "events.parquet"))
        warehouse.append_event_frame(frame)
        out["append_seconds"] = round(time.perf_counter() - started, 2)
        out["events"] = events

        progress("the window before W, from scratch over the history")
        started = time.perf_counter()
        before = materialise_window_spark(
            warehouse, window_start, params, future_scan=DEFAULTS.max_clock_skew
        )
        out["from_scratch_seconds"] = round(time.perf_counter() - started, 2)
        out["from_scratch_items"] = before.posterior_rows
        seconds = []
        for number in range(1, args.repeat + 1):
            started = time.perf_counter()
            result = materialise_window_spark(
                warehouse, window_start + WINDOW, params, future_scan=DEFAULTS.max_clock_skew
            )
            seconds.append(time.perf_counter() - started)
            if result.mode != "incremental":
                raise RuntimeError(f"window W ran {result.mode}, expected incremental")
            progress(
                f"repeat {number}: {seconds[-1]:.2f} s (aggregates {result.aggregate_seconds:.2f}"
                f" s, posteriors {result.posterior_seconds:.2f} s)"
            )
        out["window_items"] = result.items_touched
        out["window_impressions"] = result.impressions
        out["window_seconds_median"] = round(statistics.median(seconds), 2)
        out["window_seconds_min"] = round(min(seconds), 2)
        spark.stop()
    print(machine_description())
    print(f"{args.window_events:,} events in the window, {args.history_days} day(s) of history")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
