"""The window job on a busy window, on the same events: Spark in local mode, Spark on a
standalone cluster on this machine, and PostgreSQL (docs/spark.md).

With the same generator and seeds as ``posterior_update.py`` (each event ingested 5 s
after it occurred) it makes ``--history-days`` of events and one busy 15-minute window
[W, W+15m), once as a Parquet file (for Spark) and once by COPY into a scratch
PostgreSQL database (``warehouse_load.copy_events``, as ``posterior_update.py`` loads
it; dropped at the end). Each engine loads the events, materialises the window before W
(from scratch: the whole history in one window), then ``materialise_window_spark`` /
``materialise_window`` on W is timed ``--repeat`` times (each run incremental: a rerun
replaces the window), the engines taking turns within each repeat (in an order that
rotates) so that the machine's other load falls on all of them alike:

* ``local``: Spark inside one process, ``--master`` (``local[2]``, 1 GB driver);
* ``cluster``: a standalone master and ``--workers`` workers of ``--worker-cores`` cores
  on loopback (``bandit_pipeline_tests/spark_cluster.py``), one ``--executor-memory``
  executor per worker, the driver (1 GB) in its own process;
* ``postgres``: ``materialise_window`` without the metric rollups (Spark has none yet).

A process holds one SparkContext, so each Spark engine's driver is this script in a
process of its own (``--serve``), which takes one command a line on its standard input
and answers a ``BENCH {json}`` line. The engines must agree on the window's figures
(items touched, impressions, posterior rows). The last line is ``RESULT key=value ...``:
per engine the median seconds of W, and the ratios to PostgreSQL and to local Spark of
the same run.

Run it (not part of ``make bench``: it takes minutes)::

    .venv/bin/python benchmarks/spark_window.py [--engines local,cluster,postgres]
        [--items N] [--window-events N] [--history-days D] [--history-events-per-day N]
        [--repeat R] [--master local[2]] [--workers 2] [--worker-cores 1]
        [--executor-memory 1g] [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from common import Scratch, add_postgres_url, machine_description, positive_int, progress
from sqlalchemy.engine import make_url
from warehouse_load import MARGIN, copy_events, day_chunks, impressions_for, item_ids, rows_of

from bandit_pipeline.ingest.events import EVENT_COLUMNS
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_events
from bandit_pipeline.timing import WINDOW

DEFAULTS = default_settings()  # the documented parameters, whatever BANDIT_* holds
ENGINES = ("local", "cluster", "postgres")
# What the engines must agree on, window by window.
FIGURES = ("mode", "items_touched", "impressions", "posterior_rows")
_TYPES = {"occurred_at": pa.timestamp("us", "UTC"), "slot": pa.int32(), "explore": pa.bool_()}
# The Parquet file of the batch: BATCH_SCHEMA's columns in Spark's types.
PARQUET_SCHEMA = pa.schema(
    [(c, _TYPES.get(c, pa.string())) for c in EVENT_COLUMNS if c != "ingested_at"]
    + [("ingested_at_given", pa.timestamp("us", "UTC")), ("ordinal", pa.int64())]
)


def engine_list(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(set(names) - set(ENGINES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"engines are {', '.join(ENGINES)}; got {value!r}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the window job on Spark and PostgreSQL.")
    parser.add_argument("--engines", type=engine_list, default=ENGINES)
    parser.add_argument("--items", type=positive_int, default=100_000)
    parser.add_argument("--window-events", type=positive_int, default=1_000_000)
    parser.add_argument("--history-days", type=positive_int, default=1)
    parser.add_argument("--history-events-per-day", type=positive_int, default=100_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--master", default="local[2]", help="the local engine's master")
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--worker-cores", type=positive_int, default=1)
    parser.add_argument("--executor-memory", default="1g", help="per worker and executor")
    add_postgres_url(parser)
    # A Spark engine's driver process (started by this script).
    parser.add_argument("--serve", metavar="MASTER", help=argparse.SUPPRESS)
    parser.add_argument("--conf", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--events-file", help=argparse.SUPPRESS)
    parser.add_argument("--window-start", help=argparse.SUPPRESS)
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


def figures(result: Any, seconds: float) -> dict[str, Any]:
    """What a timed window reports (the same for every engine)."""
    return {
        "seconds": seconds,
        "aggregate_seconds": result.aggregate_seconds,
        "posterior_seconds": result.posterior_seconds,
        **{name: getattr(result, name) for name in FIGURES},
    }


# --- A Spark engine's driver process (--serve)


def serve(args: argparse.Namespace) -> None:
    """Load the events into a lake, materialise the window before W, then time W once
    per ``window`` line on standard input; every answer is one ``BENCH {json}`` line."""
    from bandit_pipeline.spark_window import materialise_window_spark
    from bandit_pipeline.warehouse.spark import BATCH_SCHEMA, SparkWarehouse, start_session

    params = DEFAULTS.posterior_parameters()
    window_start = datetime.fromisoformat(args.window_start)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    spark = start_session(args.serve, args.lake, json.loads(args.conf))
    warehouse = SparkWarehouse(spark, args.lake, "bench")
    out["session_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    frame = warehouse.spark.read.schema(BATCH_SCHEMA).parquet(args.events_file)
    warehouse.append_event_frame(frame)
    out["append_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    before = materialise_window_spark(
        warehouse, window_start, params, future_scan=DEFAULTS.max_clock_skew
    )
    out["from_scratch_seconds"] = time.perf_counter() - started
    out["from_scratch_items"] = before.posterior_rows
    context = spark.sparkContext
    out["master"] = context.master
    # The block managers the driver knows: the executors and itself (local mode: one).
    out["executors"] = context._jsc.sc().getExecutorMemoryStatus().size() - 1
    answer(out)
    for line in sys.stdin:
        if line.strip() != "window":
            break
        started = time.perf_counter()
        result = materialise_window_spark(
            warehouse, window_start + WINDOW, params, future_scan=DEFAULTS.max_clock_skew
        )
        answer(figures(result, time.perf_counter() - started))
    spark.stop()


def answer(message: dict[str, Any]) -> None:
    print("BENCH " + json.dumps(message), flush=True)


# --- The engines, as the measuring process sees them


class SparkEngine:
    """A Spark engine's driver process (this script with ``--serve``), in a process
    group of its own, its standard error in ``log``."""

    def __init__(
        self, name: str, master: str, conf: dict[str, str], env: dict[str, str], folder: Path,
        events_file: Path, window_start: datetime,
    ) -> None:  # fmt: skip
        self.name, self.log = name, folder / f"{name}-driver.log"
        command = [
            sys.executable, __file__, "--serve", master, "--conf", json.dumps(conf),
            "--lake", str(folder / f"{name}-lake"), "--events-file", str(events_file),
            "--window-start", window_start.isoformat(),
        ]  # fmt: skip
        self._stderr: IO[bytes] = self.log.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, start_new_session=True,
        )  # fmt: skip

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("BENCH "):
                return json.loads(line[len("BENCH ") :])
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"the {self.name} Spark driver ended early; {self.log}:\n{tail}")

    def setup(self) -> dict[str, Any]:
        return self._receive()

    def window(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("window\n")
        self.process.stdin.flush()
        return self._receive()

    def close(self) -> None:
        """Ask the driver to stop its Spark; SIGTERM, then SIGKILL to its process group
        (the driver's JVM with it) if it has not ended within 30 s."""
        with contextlib.suppress(BrokenPipeError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its own group (start_new_session)
        self.process.wait()
        self._stderr.close()


class PostgresEngine:
    """``materialise_window`` in a scratch database loaded as ``posterior_update.py``
    loads it (``copy_events``)."""

    name = "postgres"

    def __init__(self, scratch: Scratch, chunks, items: int, window_start: datetime) -> None:
        self.scratch, self.chunks, self.items = scratch, chunks, items
        self.window_start = window_start
        self.params = DEFAULTS.posterior_parameters()

    def setup(self) -> dict[str, Any]:
        from bandit_pipeline.window_update import materialise_window

        out: dict[str, Any] = {}
        started = time.perf_counter()
        out["events"] = copy_events(self.scratch.dsn, self.chunks, self.items)
        out["load_seconds"] = time.perf_counter() - started  # generating included
        started = time.perf_counter()
        before = materialise_window(
            self.scratch.engine, self.window_start, self.params,
            future_scan=DEFAULTS.max_clock_skew,
        )  # fmt: skip
        out["from_scratch_seconds"] = time.perf_counter() - started
        out["from_scratch_items"] = before.posterior_rows
        return out

    def window(self) -> dict[str, Any]:
        from bandit_pipeline.window_update import materialise_window

        started = time.perf_counter()
        result = materialise_window(
            self.scratch.engine, self.window_start + WINDOW, self.params,
            future_scan=DEFAULTS.max_clock_skew,
        )  # fmt: skip
        return figures(result, time.perf_counter() - started)

    def close(self) -> None:
        pass


def measure(args: argparse.Namespace, stack: contextlib.ExitStack, folder: Path) -> dict:
    window_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    history_start = window_start - timedelta(days=args.history_days)
    chunks = day_chunks("h", history_start, args.history_days, args.history_events_per_day)
    chunks.append(("w", window_start, window_start + WINDOW - MARGIN, args.window_events))
    run: dict[str, Any] = {"window_start": window_start, "setup": {}, "windows": {}}
    engines: list[Any] = []
    spark_engines = [name for name in args.engines if name != "postgres"]
    if spark_engines:
        progress("generating events into a Parquet file")
        events_file = folder / "events.parquet"
        run["events"] = write_events(events_file, chunks, args.items)
    for name in spark_engines:
        if name == "local":
            engine = SparkEngine(
                "local", args.master, {}, dict(os.environ), folder, events_file, window_start
            )
        else:
            from bandit_pipeline_tests.spark_cluster import standalone_cluster

            progress(f"starting a standalone cluster of {args.workers} workers")
            cluster = stack.enter_context(
                standalone_cluster(
                    folder / "cluster", args.workers, args.worker_cores, args.executor_memory
                )
            )
            engine = SparkEngine(
                "cluster", cluster.master_url, cluster.driver_conf(), cluster.driver_env(),
                folder, events_file, window_start,
            )  # fmt: skip
        stack.callback(engine.close)
        engines.append(engine)
        progress(f"{name}: loading the events and the window before W (from scratch)")
        run["setup"][name] = engine.setup()
    if "postgres" in args.engines:
        server = make_url(args.postgres_url)
        admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
        admin = stack.enter_context(psycopg.connect(admin_dsn, autocommit=True))
        run["postgres_version"] = str(admin.execute("SHOW server_version").fetchone()[0])
        scratch = stack.enter_context(Scratch(server, admin))
        engine = PostgresEngine(scratch, chunks, args.items, window_start)
        engines.append(engine)
        progress("postgres: loading the events (COPY) and the window before W (from scratch)")
        run["setup"]["postgres"] = engine.setup()
        run.setdefault("events", run["setup"]["postgres"]["events"])

    run["load_before"] = os.getloadavg()
    for number in range(args.repeat):
        turn = engines[number % len(engines) :] + engines[: number % len(engines)]
        for engine in turn:
            found = engine.window()
            if found["mode"] != "incremental":
                raise RuntimeError(f"{engine.name}: window W ran {found['mode']}")
            run["windows"].setdefault(engine.name, []).append(found)
            progress(
                f"repeat {number + 1} {engine.name}: {found['seconds']:.2f} s (aggregates"
                f" {found['aggregate_seconds']:.2f} s, posteriors"
                f" {found['posterior_seconds']:.2f} s)"
            )
    run["load_after"] = os.getloadavg()
    return run


def report(args: argparse.Namespace, run: dict) -> None:
    medians = {
        name: statistics.median(w["seconds"] for w in windows)
        for name, windows in run["windows"].items()
    }
    first = {name: windows[0] for name, windows in run["windows"].items()}
    agree = len({tuple(w[f] for f in FIGURES) for w in first.values()}) == 1
    some = next(iter(first.values()))
    print(f"machine: {machine_description()}")
    print(
        "load average (1, 5, 15 min) before the timed windows "
        + ", ".join(f"{x:.1f}" for x in run["load_before"])
        + "; after "
        + ", ".join(f"{x:.1f}" for x in run["load_after"])
    )
    print(
        f"{run['events']:,} events: {args.history_days} day(s) of history at "
        f"{args.history_events_per_day:,}/day and ~{args.window_events:,} in "
        f"[{run['window_start']:%Y-%m-%d %H:%M}, +15m) over {args.items:,} items; window W: "
        f"{some['items_touched']:,} items touched, {some['impressions']:,} trained "
        f"impressions, {some['posterior_rows']:,} posterior rows"
        + ("" if agree else "  ** THE ENGINES DISAGREE: " + repr(first) + " **")
    )
    labels = {
        "local": f"Spark local ({args.master}, 1 GB driver)",
        "cluster": (
            f"Spark standalone ({args.workers} workers x {args.worker_cores} core, "
            f"{args.executor_memory} executors, 1 GB driver)"
        ),
        "postgres": f"PostgreSQL {run.get('postgres_version', '')} (no metric rollups)",
    }
    print(f"window W, incremental, median of {args.repeat} (the engines taking turns):")
    for name, windows in run["windows"].items():
        each = ", ".join(f"{w['seconds']:.2f}" for w in windows)
        setup = run["setup"][name]
        loaded = setup.get("append_seconds", setup.get("load_seconds"))
        versus = [
            f"{medians[name] / medians[base]:.2f}x {base}"
            for base in ("postgres", "local")
            if base in medians and base != name and name != "postgres"
        ]
        print(
            f"  {labels[name]:<68}{medians[name]:8.2f} s  ({each})"
            + (f"  = {', '.join(versus)}" if versus else "")
        )
        how = "COPY, generating included" if name == "postgres" else "from the Parquet file"
        print(
            f"      load ({how}) {loaded:.1f} s, the window before W from scratch "
            f"{setup['from_scratch_seconds']:.1f} s"
            + (f", {setup['executors']} executors" if setup.get("executors") else "")
        )
    out: dict[str, Any] = {
        "events": run["events"],
        "window_events": args.window_events,
        "items": args.items,
        "history_days": args.history_days,
        "repeat": args.repeat,
        "items_touched": some["items_touched"],
        "impressions": some["impressions"],
        "figures_agree": agree,
    }
    for name in run["windows"]:
        setup = run["setup"][name]
        out[f"{name}_window_s"] = round(medians[name], 2)
        out[f"{name}_window_min_s"] = round(min(w["seconds"] for w in run["windows"][name]), 2)
        out[f"{name}_from_scratch_s"] = round(setup["from_scratch_seconds"], 2)
        out[f"{name}_load_s"] = round(setup.get("append_seconds", setup.get("load_seconds")), 2)
    for name, base in (("local", "postgres"), ("cluster", "postgres"), ("cluster", "local")):
        if name in medians and base in medians:
            out[f"{name}_vs_{base}"] = round(medians[name] / medians[base], 2)
    out["load_avg_1m"] = round(run["load_before"][0], 1)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve(args)
        return
    with (
        tempfile.TemporaryDirectory(prefix="bandit_spark_bench_") as folder,
        contextlib.ExitStack() as stack,
    ):
        run = measure(args, stack, Path(folder))
    report(args, run)


if __name__ == "__main__":
    main()
