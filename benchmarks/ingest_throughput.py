"""Ingest throughput on PostgreSQL, against bare COPY baselines of the same rows.

Generates synthetic shop traffic (impressions plus their clicks, add-to-carts and
purchases over 100,000 items and the last two days) into a JSON Lines file once, then,
in a scratch database that is dropped at the end, measures per repeat:

* ingest: ``ingest_events`` of the file into an empty ``bandit_rewards`` (read, parse,
  validate, COPY into staging, merge), in events per second of wall time;
* re-ingest: the same file again right after, every event a duplicate;
* (a) bare COPY of the same rows, already validated in memory, into a table made
  ``LIKE bandit_rewards`` (no indexes, no constraints but NOT NULL);
* (b) the same COPY into a table made ``LIKE bandit_rewards INCLUDING ALL`` (the real
  table's primary key, indexes and checks);
* (c) the same COPY into a table with only the ``event_id`` primary key: what storing
  each event once costs by itself, the ceiling of any idempotent ingest.

It prints the medians over the repeats, ingest as a share of (a) and (b), the peak RSS
of the process around the ingest, and a final ``RESULT key=value ...`` line.

Run it (``make bench`` does, with the defaults)::

    .venv/bin/python benchmarks/ingest_throughput.py [--events N] [--repeat R]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

The server is BANDIT_TEST_POSTGRES_URL unless --postgres-url is given; the user needs
the right to create databases. A CHECKPOINT runs before each timed step when the user
may issue one, so that no step pays for the WAL of an earlier one.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from common import Scratch, add_postgres_url, machine_description, positive_int, progress
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from warehouse_load import generate_file

from bandit_pipeline.ingest import IngestReport, ingest_events
from bandit_pipeline.ingest.events import EVENT_COLUMNS, EventRow, EventValidator
from bandit_pipeline.ingest.readers import read_records
from bandit_pipeline.ingest.validation import Rejected, warehouse_time
from bandit_pipeline.settings import Settings, default_settings, load_settings

N_ITEMS = 100_000
SPAN = timedelta(days=2)
BARE_TABLE = "bench_copy_bare"
INDEXED_TABLE = "bench_copy_indexed"
# Only the uniqueness that an idempotent ingest cannot do without: the ceiling for any
# design that stores each event_id once.
KEYED_TABLE = "bench_copy_keyed"


class BenchmarkError(RuntimeError):
    """The benchmark cannot go on (lost rows, rejected rows, unreadable input)."""


@dataclass
class Timings:
    """Events per second of each measured step, one value per repeat."""

    ingest: list[float] = field(default_factory=list)
    reingest: list[float] = field(default_factory=list)
    copy_bare: list[float] = field(default_factory=list)
    copy_indexed: list[float] = field(default_factory=list)
    copy_keyed: list[float] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure event ingestion into PostgreSQL against bare COPY baselines."
    )
    parser.add_argument(
        "--events",
        type=positive_int,
        default=1_000_000,
        help="about how many events to generate (impressions + outcomes); default 1000000",
    )
    add_postgres_url(parser)
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="timed repeats; medians are reported"
    )
    return parser.parse_args(argv)


def peak_rss_kb() -> int:
    """Peak resident set size of this process so far (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def validated_rows(path: Path, ingested_at: str) -> list[EventRow]:
    """The file's rows as the ingest stages them, with a fixed ``ingested_at``."""
    validate = EventValidator.from_settings(default_settings(), datetime.now(UTC))
    rows: list[EventRow] = []
    for record in read_records(str(path)):
        if record.fields is None:
            raise BenchmarkError(f"line {record.line_number}: {record.parse_error}")
        try:
            row = validate(record.fields)
        except Rejected as exc:
            raise BenchmarkError(f"line {record.line_number} rejected: {exc}") from None
        rows.append((*row[:3], ingested_at, *row[4:]))
    return rows


def rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else float("inf")


def count_rewards(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM bandit_rewards")).scalar_one()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


def time_ingest(engine: Engine, path: Path, settings: Settings) -> tuple[IngestReport, float]:
    started = time.perf_counter()
    report = ingest_events(engine, str(path), settings)
    return report, time.perf_counter() - started


def time_copy(connection: psycopg.Connection, table: str, rows: list[EventRow]) -> float:
    """Seconds to COPY ``rows`` into ``table`` and commit; the table is emptied first."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
    connection.commit()
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))
    )
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
    connection.commit()
    return time.perf_counter() - started


def checkpointer(admin: psycopg.Connection) -> Callable[[], None]:
    """A function that runs CHECKPOINT, or does nothing when the user may not."""
    try:
        admin.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        progress("no privilege for CHECKPOINT; timings may include earlier steps' WAL")
        return lambda: None

    def checkpoint() -> None:
        admin.execute("CHECKPOINT")

    return checkpoint


def run(
    scratch: Scratch,
    path: Path,
    events: int,
    repeat: int,
    checkpoint: Callable[[], None],
) -> tuple[Timings, dict[str, int]]:
    """All timed steps in the scratch database."""
    settings = load_settings(warehouse_url=scratch.url)
    engine, dsn = scratch.engine, scratch.dsn
    timings = Timings()
    rss = {"before_ingest": peak_rss_kb()}
    rows: list[EventRow] | None = None
    with psycopg.connect(dsn, options="-c timezone=UTC") as connection:
        connection.execute(
            sql.SQL("CREATE TABLE {} (LIKE bandit_rewards)").format(sql.Identifier(BARE_TABLE))
        )
        connection.execute(
            sql.SQL("CREATE TABLE {} (LIKE bandit_rewards INCLUDING ALL)").format(
                sql.Identifier(INDEXED_TABLE)
            )
        )
        connection.execute(
            sql.SQL("CREATE TABLE {} (LIKE bandit_rewards, PRIMARY KEY (event_id))").format(
                sql.Identifier(KEYED_TABLE)
            )
        )
        connection.commit()
        for number in range(1, repeat + 1):
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE bandit_rewards, bandit_rewards_rejected"))
            checkpoint()
            report, seconds = time_ingest(engine, path, settings)
            check(
                report.read == events and report.inserted == events and not report.rejected,
                f"ingest lost rows: {events} in the file, report says {report.summary()}",
            )
            stored = count_rewards(engine)
            check(stored == events, f"ingest: {events} events in the file, {stored} stored")
            timings.ingest.append(rate(report.read, seconds))

            checkpoint()
            again, seconds = time_ingest(engine, path, settings)
            check(
                again.inserted == 0 and again.duplicate == events,
                f"re-ingest: expected {events} duplicates, report says {again.summary()}",
            )
            stored = count_rewards(engine)
            check(stored == events, f"re-ingest: {events} events expected, {stored} stored")
            timings.reingest.append(rate(again.read, seconds))

            if rows is None:
                # Before the baselines hold every row in memory, which would hide the
                # ingest's own footprint.
                rss["after_ingest"] = peak_rss_kb()
                rows = validated_rows(path, warehouse_time(datetime.now(UTC)))
                check(len(rows) == events, f"{len(rows)} baseline rows, {events} events")
                rss["with_baseline_rows"] = peak_rss_kb()
            checkpoint()
            timings.copy_bare.append(rate(events, time_copy(connection, BARE_TABLE, rows)))
            checkpoint()
            timings.copy_indexed.append(rate(events, time_copy(connection, INDEXED_TABLE, rows)))
            checkpoint()
            timings.copy_keyed.append(rate(events, time_copy(connection, KEYED_TABLE, rows)))
            progress(
                f"repeat {number}/{repeat}: ingest {timings.ingest[-1]:,.0f}/s, "
                f"re-ingest {timings.reingest[-1]:,.0f}/s, "
                f"COPY bare {timings.copy_bare[-1]:,.0f}/s, "
                f"COPY indexed {timings.copy_indexed[-1]:,.0f}/s, "
                f"COPY keyed {timings.copy_keyed[-1]:,.0f}/s"
            )
    return timings, rss


def report_results(
    timings: Timings,
    rss: dict[str, int],
    *,
    events: int,
    file_bytes: int,
    repeat: int,
    server_version: str,
    batch_size: int,
) -> None:
    ingest = statistics.median(timings.ingest)
    reingest = statistics.median(timings.reingest)
    bare = statistics.median(timings.copy_bare)
    indexed = statistics.median(timings.copy_indexed)
    keyed = statistics.median(timings.copy_keyed)

    def line(label: str, values: list[float]) -> str:
        each = ", ".join(f"{value:,.0f}" for value in values)
        return f"  {label:<32}{statistics.median(values):>12,.0f}   ({each})"

    print(f"ingest throughput, median of {repeat} repeat(s)")
    print(f"  machine      {machine_description()}")
    print(f"  postgresql   {server_version}")
    print(
        f"  events       {events:,} ({file_bytes / 1e6:,.1f} MB JSONL, "
        f"{N_ITEMS:,} items, batch size {batch_size:,})"
    )
    print("events/s                            median   (each repeat)")
    print(line("ingest", timings.ingest))
    print(line("re-ingest (all duplicates)", timings.reingest))
    print(line("(a) COPY, bare table", timings.copy_bare))
    print(line("(b) COPY, indexed copy", timings.copy_indexed))
    print(line("(c) COPY, event_id key only", timings.copy_keyed))
    print(f"  ingest / (a)  {100 * ingest / bare:5.1f} %")
    print(f"  ingest / (b)  {100 * ingest / indexed:5.1f} %")
    print(f"  (c) / (a)     {100 * keyed / bare:5.1f} %   (the ceiling of any idempotent ingest)")
    print(
        f"peak RSS       {rss['before_ingest'] / 1024:,.0f} MB before the first ingest, "
        f"{rss['after_ingest'] / 1024:,.0f} MB after it and the re-ingest "
        f"({rss['with_baseline_rows'] / 1024:,.0f} MB once the baselines hold all rows)"
    )
    print(
        "RESULT "
        f"events={events} repeats={repeat} cores={os.cpu_count()} "
        f"postgres={server_version.split()[0]} "
        f"ingest_eps={ingest:.0f} reingest_eps={reingest:.0f} "
        f"copy_bare_eps={bare:.0f} copy_indexed_eps={indexed:.0f} copy_keyed_eps={keyed:.0f} "
        f"ingest_vs_bare_pct={100 * ingest / bare:.1f} "
        f"ingest_vs_indexed_pct={100 * ingest / indexed:.1f} "
        f"peak_rss_kb={rss['after_ingest']}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_url(args.postgres_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)

    with tempfile.TemporaryDirectory(prefix="bandit_bench_") as folder:
        path = Path(folder) / "events.jsonl"
        progress(f"generating about {args.events:,} events into {path}")
        events = generate_file(path, args.events, N_ITEMS, SPAN)
        file_bytes = path.stat().st_size
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            server_version = str(admin.execute("SHOW server_version").fetchone()[0])
            with Scratch(server, admin) as scratch:
                try:
                    timings, rss = run(scratch, path, events, args.repeat, checkpointer(admin))
                except BenchmarkError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
                batch_size = load_settings(warehouse_url=scratch.url).ingest_batch_size

    report_results(
        timings,
        rss,
        events=events,
        file_bytes=file_bytes,
        repeat=args.repeat,
        server_version=server_version,
        batch_size=batch_size,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
