"""Ingestion into the Spark lake (docs/spark.md): each event once by ``event_id``, whole
batches only, rejected rows kept aside with their reason, without a unique index.

A batch is committed the way table formats such as Delta Lake commit: its rows are
written first, under a fresh ``batch_id``, and count only once a commit file for it
exists in ``bandit_ingest_batches``, named by the next sequence number and created only
if no file of that name exists yet. Every statement of the warehouse reads the committed
rows alone (``sql/schema/committed_views.spark.sql``), so an ingest that dies anywhere
before its commit file leaves rows nobody reads, and one that dies after it leaves a
whole batch.

Each event once: a batch keeps the first row of each ``event_id`` and skips those that
committed batches hold among the rows ingested within the dedup horizon
(``BANDIT_LAKE_DEDUP_HORIZON_HOURS``) before its own. Two ingests racing with the same
events both find them new, but only one gets the next sequence number: the loser checks
what the batches committed since it started hold, and when they hold any of its rows it
abandons what it wrote and stages the batch again against the new state.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from bandit_pipeline.ingest.catalog import CatalogValidator
from bandit_pipeline.ingest.events import EventValidator, utc_now
from bandit_pipeline.ingest.loader import Batch, IngestReport, split_batches
from bandit_pipeline.ingest.readers import read_records
from bandit_pipeline.ingest.vectorised import event_records
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.spark import BATCH_SCHEMA, SparkWarehouse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from bandit_pipeline.settings import Settings

__all__ = ["BatchCommit", "commit_batch", "ingest_events_spark"]

# The columns of a batch's rejected rows (the temporary view bandit_rejects_batch).
REJECTS_SCHEMA = "raw_hash STRING, raw STRING, reason STRING, source STRING, line_number BIGINT"
BATCH_VIEW, REJECTS_VIEW = "bandit_rewards_batch", "bandit_rejects_batch"
NEW_EVENTS, NEW_REJECTS = "bandit_new_events", "bandit_new_rejects"
COMMIT_LOG = "bandit_ingest_batches"
MAX_ATTEMPTS = 1_000
# The commit file's columns, those of the table bandit_ingest_batches.
COMMIT_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("sequence", pa.int64()),
        ("kind", pa.string()),
        ("events", pa.int64()),
        ("rejects", pa.int64()),
        ("source", pa.string()),
        ("committed_at", pa.timestamp("us", "UTC")),
    ]
)


class SequenceTaken(Exception):
    """Another batch committed under the sequence number first."""


@dataclass(frozen=True)
class BatchCommit:
    """What one batch added: ``batch_id`` and ``sequence`` are None when it held nothing
    new; ``attempts`` counts the stagings (more than one after a lost race)."""

    batch_id: str | None
    sequence: int | None
    events: int
    rejects: int
    attempts: int


def commit_batch(
    warehouse: SparkWarehouse,
    events: DataFrame,
    rejects: DataFrame | None = None,
    *,
    source: str,
    accepted_at: datetime | None = None,
) -> BatchCommit:
    """Write one batch of validated events (:data:`BATCH_SCHEMA`) and rejected rows
    (:data:`REJECTS_SCHEMA`) into the lake, all of it or nothing, each event_id and each
    raw rejected row once."""
    spark = warehouse.spark
    accepted_at = (accepted_at or datetime.now(UTC)).astimezone(UTC)
    if rejects is None:
        rejects = spark.createDataFrame([], schema=REJECTS_SCHEMA)
    earliest = events.selectExpr("MIN(ingested_at_given)").first()[0]
    since = accepted_at if earliest is None else min(accepted_at, aware_timestamp(earliest))
    horizon_start = since - warehouse.dedup_horizon
    params = {"accepted_at": accepted_at, "horizon_start": horizon_start}
    rejected = {**params, "rejected_table": "bandit_rewards_rejected"}

    def stage() -> tuple[int, int]:
        return (
            warehouse.stage("ingest/stage_new_events", NEW_EVENTS, params, detach=True),
            warehouse.stage("ingest/stage_new_rejects", NEW_REJECTS, rejected, detach=True),
        )

    def write(batch_id: str, rows: int, rejects: int) -> str:
        if rows:
            _write_rows(warehouse, "ingest/event_rows", "bandit_rewards", batch_id)
        if rejects:
            _write_rows(warehouse, "ingest/reject_rows", "bandit_rewards_rejected", batch_id)
        return "events"

    def conflicts(started_at: int) -> int:
        return warehouse.scalar(
            "ingest/batch_conflicts", {"sequence": started_at, "horizon_start": horizon_start}
        )

    with _batch_views(warehouse, {BATCH_VIEW: events, REJECTS_VIEW: rejects}, NEW_EVENTS):
        return _commit(warehouse, source, stage, write, conflicts)


@contextmanager
def _batch_views(
    warehouse: SparkWarehouse, frames: dict[str, DataFrame], staged: str
) -> Iterator[None]:
    """Under the warehouse's lock, the batch's frames as temporary views; afterwards those
    and what was staged from them (``staged`` and the new rejected rows) dropped."""
    with warehouse.lock:
        for view, frame in frames.items():
            frame.createOrReplaceTempView(view)
        try:
            yield
        finally:
            warehouse.release(staged)
            warehouse.release(NEW_REJECTS)
            for view in frames:
                warehouse.spark.catalog.dropTempView(view)


def _commit(
    warehouse: SparkWarehouse,
    source: str,
    stage: Callable[[], tuple[int, int]],
    write: Callable[[str, int, int], str],
    conflicts: Callable[[int], int],
) -> BatchCommit:
    """Stage, write and commit one batch, again after a lost race whose winner holds some
    of it (module docstring). ``stage`` counts the rows and rejected rows to write,
    ``write`` writes them under a batch id and names the batch's kind, ``conflicts``
    counts what the batches committed after a sequence number already hold."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        warehouse.execute("posteriors/refresh_tables")
        started_at = warehouse.scalar("ingest/newest_batch") or 0
        rows, rejects = stage()
        if not rows and not rejects:
            return BatchCommit(None, None, 0, 0, attempt)
        batch_id = uuid.uuid4().hex
        kind = write(batch_id, rows, rejects)
        sequence = started_at + 1
        while True:
            try:
                _write_commit_file(warehouse, sequence, batch_id, kind, rows, rejects, source)
                warehouse.execute("posteriors/refresh_tables")  # it reads its own
                return BatchCommit(batch_id, sequence, rows, rejects, attempt)
            except SequenceTaken:
                warehouse.execute("posteriors/refresh_tables")
            if conflicts(started_at):
                break  # abandon this write; stage again against the new state
            sequence = warehouse.scalar("ingest/newest_batch") + 1
    raise RuntimeError(f"an ingest batch lost the race to commit {MAX_ATTEMPTS} times")


def _write_rows(warehouse: SparkWarehouse, query: str, table: str, batch_id: str) -> None:
    """Write the rows of ``query`` into ``table``'s folders, as files of their own.

    Spark's INSERT stages every writer's files in the same ``_temporary`` folder of the
    table and deletes it when a write completes, so two ingests writing at once would
    destroy each other's files. Each batch is written into a folder of its own under
    ``_staging`` (which Spark does not read), and its files are then moved into the
    table's partition folders: invisible until the batch's commit file exists, whatever
    happens in between.
    """
    staging = f"{warehouse.location}/_staging/{batch_id}/{table}"
    frame = warehouse.query(query, {"batch_id": batch_id})
    writer = frame.write.format("parquet").mode("errorifexists")
    if table == "bandit_rewards":
        writer = writer.partitionBy("ingested_hour")
    writer.save(staging)
    jvm = warehouse.spark.sparkContext._jvm
    hadoop = warehouse.spark.sparkContext._jsc.hadoopConfiguration()
    source_root = jvm.org.apache.hadoop.fs.Path(staging)
    fs = source_root.getFileSystem(hadoop)
    prefix = fs.makeQualified(source_root).toString()
    files = fs.listFiles(source_root, True)
    while files.hasNext():
        path = files.next().getPath()
        if path.getName().startswith(("_", ".")):
            continue  # the write's _SUCCESS marker and checksums
        relative = path.toString().removeprefix(prefix).lstrip("/")
        target = jvm.org.apache.hadoop.fs.Path(f"{warehouse.location}/{table}/{relative}")
        fs.mkdirs(target.getParent())
        if not fs.rename(path, target):
            raise OSError(f"could not move {path.toString()} into {table}")
    fs.delete(jvm.org.apache.hadoop.fs.Path(f"{warehouse.location}/_staging/{batch_id}"), True)


def _write_commit_file(
    warehouse: SparkWarehouse,
    sequence: int,
    batch_id: str,
    kind: str,
    events: int,
    rejects: int,
    source: str,
) -> None:
    """Create ``bandit_ingest_batches/<sequence>.parquet`` unless it exists: on a local
    lake with a hard link (atomic, never replaces a file), elsewhere with the Hadoop file
    system's rename, which is atomic and refuses an existing target on HDFS (docs/spark.md
    says which stores cannot do this)."""
    record = pa.table(
        {
            "batch_id": [batch_id],
            "sequence": [sequence],
            "kind": [kind],
            "events": [events],
            "rejects": [rejects],
            "source": [source],
            "committed_at": [datetime.now(UTC)],
        },
        schema=COMMIT_SCHEMA,
    )
    buffer = io.BytesIO()
    pq.write_table(record, buffer)
    folder = f"{warehouse.location}/{COMMIT_LOG}"
    name = f"{sequence:020d}.parquet"
    local = _local_path(folder)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
        temporary = local / f".{batch_id}.parquet"  # hidden: Spark reads no dot files
        temporary.write_bytes(buffer.getvalue())
        try:
            os.link(temporary, local / name)
        except FileExistsError:
            raise SequenceTaken(sequence) from None
        finally:
            temporary.unlink()
        return
    jvm = warehouse.spark.sparkContext._jvm
    hadoop = warehouse.spark.sparkContext._jsc.hadoopConfiguration()
    target = jvm.org.apache.hadoop.fs.Path(f"{folder}/{name}")
    temporary = jvm.org.apache.hadoop.fs.Path(f"{folder}/_{batch_id}.parquet")
    fs = target.getFileSystem(hadoop)
    stream = fs.create(temporary, False)
    try:
        stream.write(bytearray(buffer.getvalue()))
    finally:
        stream.close()
    if not fs.rename(temporary, target):
        fs.delete(temporary, False)
        raise SequenceTaken(sequence)


def _local_path(location: str) -> Path | None:
    if location.startswith("file:"):
        return Path(location.removeprefix("file:").removeprefix("//"))
    return Path(location) if "://" not in location else None


def ingest_events_spark(
    warehouse: SparkWarehouse,
    path: str,
    settings: Settings,
    *,
    historical: bool = False,
    fmt: str | None = None,
    batch_size: int | None = None,
    on_progress: Callable[[int], object] | None = None,
) -> IngestReport:
    """Load the events of ``path`` (``-`` for stdin) into the lake, batch by batch, with
    the same validation, rejections and report as ``ingest.ingest_events``."""
    validator = EventValidator.from_settings(settings, utc_now(), historical=historical)
    report = IngestReport()
    records = event_records(path, fmt, validator)
    batches = split_batches(
        records, validator, batch_size or settings.ingest_batch_size, path, report
    )
    return write_batches(warehouse, batches, report, path, on_progress)


def write_batches(
    warehouse: SparkWarehouse,
    batches: Iterable[Batch],
    report: IngestReport,
    source: str,
    on_progress: Callable[[int], object] | None = None,
) -> IngestReport:
    """Commit validated batches one by one (each as in :func:`commit_batch`)."""
    started = time.perf_counter()
    told = 0
    for batch in batches:
        events = warehouse.spark.createDataFrame(
            [_spark_row(row, ordinal) for ordinal, row in enumerate(batch.rows)],
            schema=BATCH_SCHEMA,
        )
        rejects = _rejects_frame(warehouse, batch)
        done = commit_batch(warehouse, events, rejects, source=source)
        report.inserted += done.events
        report.duplicate += len(batch.rows) - done.events
        report.rejected += len(batch.rejects)
        report.batches += 1
        if on_progress is not None:
            on_progress(report.read - told)
            told = report.read
    report.seconds = time.perf_counter() - started
    return report


def _spark_row(row: tuple[Any, ...], ordinal: int) -> tuple[Any, ...]:
    """A validated row (``ingest.events.EVENT_COLUMNS``, instants as UTC text) as a row of
    :data:`BATCH_SCHEMA`."""
    occurred_at, ingested_at = row[2], row[3]
    return (
        *row[:2],
        aware_timestamp(occurred_at),
        None if ingested_at is None else aware_timestamp(ingested_at),
        *row[4:],
        ordinal,
    )


# The columns of a catalog batch (the temporary view bandit_catalog_batch), in order.
CATALOG_SCHEMA = (
    "namespace STRING, item_id STRING, title STRING, category STRING, price DOUBLE,"
    " availability DOUBLE, freshness_index DOUBLE, first_seen_at TIMESTAMP, ordinal BIGINT"
)
CATALOG_VIEW, NEW_CATALOG = "bandit_catalog_batch", "bandit_new_catalog"


def load_catalog_spark(
    warehouse: SparkWarehouse, path: str, settings: Settings, *, fmt: str | None = None
) -> IngestReport:
    """Upsert the items of ``path`` into the lake's ``item_catalog`` by (namespace,
    item_id), as ``ingest.load_catalog`` does: each batch commits the whole catalog it
    leaves behind, and bad rows land in ``item_catalog_rejected``."""
    loaded_at = utc_now()
    validator = CatalogValidator.from_settings(settings, loaded_at)
    report = IngestReport()
    started = time.perf_counter()
    for batch in split_batches(
        read_records(path, fmt), validator, settings.ingest_batch_size, path, report
    ):
        done = commit_catalog_batch(warehouse, batch, source=path, loaded_at=loaded_at)
        report.inserted += len(batch.rows)
        report.rejected += len(batch.rejects)
        report.batches += 1 if done.batch_id else 0
    report.seconds = time.perf_counter() - started
    return report


def commit_catalog_batch(
    warehouse: SparkWarehouse, batch: Batch, *, source: str, loaded_at: datetime
) -> BatchCommit:
    """Commit one batch of validated catalog rows (``ingest.catalog.CATALOG_COLUMNS``) and
    rejected rows: the whole catalog after it, or nothing."""
    spark = warehouse.spark
    items = spark.createDataFrame(
        [
            (*row[:7], None if row[7] is None else aware_timestamp(row[7]), n)
            for n, row in enumerate(batch.rows)
        ],
        schema=CATALOG_SCHEMA,
    )
    rejects = _rejects_frame(warehouse, batch)
    params = {"loaded_at": loaded_at, "accepted_at": loaded_at}
    rejected = {**params, "rejected_table": "item_catalog_rejected"}

    def stage() -> tuple[int, int]:
        if batch.rows:
            warehouse.stage("ingest/stage_catalog", NEW_CATALOG, params, detach=True)
        new_rejects = warehouse.stage(
            "ingest/stage_new_rejects", NEW_REJECTS, rejected, detach=True
        )
        return len(batch.rows), new_rejects

    def write(batch_id: str, rows: int, rejects: int) -> str:
        if rows:
            _write_rows(warehouse, "ingest/catalog_rows", "item_catalog", batch_id)
        if rejects:
            _write_rows(warehouse, "ingest/reject_rows", "item_catalog_rejected", batch_id)
        return "catalog" if rows else "catalog_rejects"

    def conflicts(started_at: int) -> int:
        return warehouse.scalar("ingest/catalog_conflicts", {"sequence": started_at})

    with _batch_views(warehouse, {CATALOG_VIEW: items, REJECTS_VIEW: rejects}, NEW_CATALOG):
        return _commit(warehouse, source, stage, write, conflicts)


def _rejects_frame(warehouse: SparkWarehouse, batch: Batch) -> DataFrame:
    return warehouse.spark.createDataFrame(
        [
            (r["raw_hash"], r["raw"], r["reason"], r["source"], r["line_number"])
            for r in batch.rejects
        ],
        schema=REJECTS_SCHEMA,
    )
