"""Batched, idempotent loading of validated rows into the warehouse.

Every batch is one transaction: its valid rows and its rejected rows land together or not
at all, so a crash part-way through a file leaves whole batches, and running the file
again inserts only what is missing (known event_ids are skipped). On PostgreSQL a batch
of new events is COPied straight into ``bandit_rewards``, and a batch that holds known
event_ids is COPied into a session-local staging table and merged by an anti-join, both
under an advisory lock (:class:`PostgresEventWriter`); the database work of one batch
overlaps with the parsing of the next.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine

from bandit_pipeline.identifiers import storable_text
from bandit_pipeline.ingest.copy_text import CopyRows, first_per_key
from bandit_pipeline.ingest.events import EVENT_COLUMNS
from bandit_pipeline.ingest.readers import SourceRecord
from bandit_pipeline.ingest.validation import Rejected
from bandit_pipeline.ingest.vectorised import ValidRows
from bandit_pipeline.warehouse.sql import sql_file, sql_statement

_INGESTED_AT = EVENT_COLUMNS.index("ingested_at")
# Where each kind of rejected row is kept, and the statement that keeps it.
REJECT_STATEMENTS = {
    "bandit_rewards_rejected": "ingest/insert_rejected_event",
    "item_catalog_rejected": "ingest/insert_rejected_catalog_row",
}


@dataclass
class IngestReport:
    """What one ingest did. ``read == inserted + duplicate + rejected`` always holds;
    ``vectorised`` of the rows read were validated by the vectorised checks, the others
    by the Python validator."""

    read: int = 0
    inserted: int = 0
    duplicate: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    vectorised: int = 0

    def summary(self) -> str:
        rate = self.read / self.seconds if self.seconds else 0.0
        line = (
            f"read={self.read} inserted={self.inserted} duplicate={self.duplicate} "
            f"rejected={self.rejected} batches={self.batches} "
            f"seconds={self.seconds:.2f} rows_per_s={rate:,.0f}"
        )
        if self.reasons:
            top = sorted(self.reasons.items(), key=lambda item: -item[1])[:10]
            line += "\nrejected by reason:\n" + "\n".join(f"  {n:>8}  {r}" for r, n in top)
        return line


@dataclass(slots=True)
class Batch:
    """Valid rows (tuples, or COPY text made by a parser process) and rejected rows."""

    rows: list[tuple[Any, ...]] | CopyRows
    rejects: list[dict[str, Any]]


Validator = Callable[[dict[str, Any]], tuple[Any, ...]]
BatchWriter = Callable[[Connection, list[tuple[Any, ...]]], int]


def split_batches(
    records: Iterable[SourceRecord | ValidRows],
    validate: Validator,
    batch_size: int,
    source: str,
    report: IngestReport,
) -> Iterator[Batch]:
    """Validate records into batches of at most ``batch_size`` rows (valid + rejected).

    Runs of rows the vectorised checks already validated (:class:`.vectorised.ValidRows`)
    join the batches as they are, so the batches are the same either way.
    """
    rows: list[tuple[Any, ...]] = []
    rejects: list[dict[str, Any]] = []
    for record in records:
        if type(record) is ValidRows:
            valid, start = record.rows, 0
            while start < len(valid):
                taken = valid[start : start + batch_size - len(rows) - len(rejects)]
                start += len(taken)
                rows.extend(taken)
                report.read += len(taken)
                report.vectorised += len(taken)
                if len(rows) + len(rejects) >= batch_size:
                    yield Batch(rows, rejects)
                    rows, rejects = [], []
            continue
        report.read += 1
        reason = record.parse_error
        if reason is None:
            try:
                rows.append(validate(record.fields))
            except Rejected as exc:
                reason = str(exc)
        if reason is not None:
            raw = record.raw.rstrip("\r\n")
            rejects.append(
                {
                    "raw_hash": hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest(),
                    # NUL and lone surrogates as escapes: whatever the input, the row lands.
                    "raw": storable_text(raw),
                    "reason": storable_text(reason),
                    "source": source,
                    "line_number": record.line_number,
                }
            )
            kind = reason.split(":", 1)[0] if ":" in reason else reason
            report.reasons[kind] = report.reasons.get(kind, 0) + 1
        if len(rows) + len(rejects) >= batch_size:
            yield Batch(rows, rejects)
            rows, rejects = [], []
    if rows or rejects:
        yield Batch(rows, rejects)


def load(
    engine: Engine,
    records: Iterable[SourceRecord | ValidRows],
    validate: Validator,
    write_rows: BatchWriter,
    rejected_table: str,
    batch_size: int,
    source: str,
    *,
    on_progress: Callable[[int], object] | None = None,
) -> IngestReport:
    """Validate ``records`` and write them batch by batch, one transaction per batch."""
    report = IngestReport()
    batches = split_batches(records, validate, batch_size, source, report)
    return load_batches(engine, batches, write_rows, rejected_table, report, on_progress)


def load_batches(
    engine: Engine,
    batches: Iterable[Batch],
    write_rows: BatchWriter,
    rejected_table: str,
    report: IngestReport,
    on_progress: Callable[[int], object] | None = None,
) -> IngestReport:
    """Write validated ``batches``, one transaction each; ``report`` already counts the
    rows read, and ``on_progress`` hears how many more were read after each batch."""
    if rejected_table not in REJECT_STATEMENTS:
        raise ValueError(f"unknown rejected-rows table {rejected_table!r}")
    insert_rejected = sql_statement(REJECT_STATEMENTS[rejected_table])
    started = time.perf_counter()

    def write(batch: Batch) -> None:
        with engine.begin() as connection:
            inserted = write_rows(connection, batch.rows) if batch.rows else 0
            if batch.rejects:
                connection.execute(insert_rejected, batch.rejects)
        report.inserted += inserted
        report.duplicate += len(batch.rows) - inserted
        report.rejected += len(batch.rejects)
        report.batches += 1

    if on_progress is not None:
        batches = _telling(batches, report, on_progress)
    if engine.dialect.name == "postgresql":
        _write_overlapped(batches, write)
    else:
        for batch in batches:
            write(batch)
    report.seconds = time.perf_counter() - started
    return report


def _telling(
    batches: Iterable[Batch], report: IngestReport, on_progress: Callable[[int], object]
) -> Iterator[Batch]:
    told = 0
    for batch in batches:
        on_progress(report.read - told)
        told = report.read
        yield batch


def _write_overlapped(batches: Iterable[Batch], write: Callable[[Batch], None]) -> None:
    """Write batches on a worker thread while the caller's thread parses the next one.

    The queue holds one batch, so memory stays at about two batches whatever the file
    size. A failed write stops the parsing and re-raises in the caller.
    """
    pending: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def worker() -> None:
        while (batch := pending.get()) is not None:
            if failure:
                continue  # drain so the producer never blocks forever
            try:
                write(batch)
            except BaseException as exc:
                failure.append(exc)

    thread = threading.Thread(target=worker, name="ingest-writer", daemon=True)
    thread.start()
    try:
        for batch in batches:
            if failure:
                break
            pending.put(batch)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


class PostgresEventWriter:
    """Writes the batches of one ingest into PostgreSQL, each event once.

    The fast path COPies a batch straight into ``bandit_rewards`` inside a savepoint; a
    known event_id fails that COPY on the primary key, and the batch is then rolled back
    to the savepoint, staged and merged by an anti-join. Both run under the merge lock
    (``sql/ingest/lock_events.postgresql.sql``), so racing ingests stay exactly-once.
    After a batch that held known ids (a re-sent file) the next batch goes straight to the
    merge, and once a merged batch holds only new ids the fast path is tried again, so a
    re-sent file pays one failed COPY, not one per batch.
    """

    def __init__(self) -> None:
        self.fast_path = True
        self.copied_batches = 0
        self.merged_batches = 0

    def __call__(self, connection: Connection, rows: list[tuple[Any, ...]] | CopyRows) -> int:
        if type(rows) is CopyRows:
            count, historical = rows.distinct, rows.historical
        else:
            rows = first_per_event_id(rows)
            count, historical = len(rows), rows[0][_INGESTED_AT] is not None
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(sql_file("ingest/lock_events", "postgresql").statements[0])
            if self.fast_path and self._copy(cursor, rows, historical):
                self.copied_batches += 1
                return count
            inserted = self._merge(cursor, rows, historical)
        self.merged_batches += 1
        self.fast_path = inserted == count
        return inserted

    def _copy(
        self, cursor: psycopg.Cursor, rows: list[tuple[Any, ...]] | CopyRows, historical: bool
    ) -> bool:
        """COPY ``rows`` into bandit_rewards; False (and nothing written) when one of
        their event_ids is known."""
        cursor.execute("SAVEPOINT bandit_ingest_copy")
        try:
            _copy_rows(cursor, "ingest/copy_events", rows, historical)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT bandit_ingest_copy")
            self.fast_path = False
            return False
        cursor.execute("RELEASE SAVEPOINT bandit_ingest_copy")
        return True

    @staticmethod
    def _merge(
        cursor: psycopg.Cursor, rows: list[tuple[Any, ...]] | CopyRows, historical: bool
    ) -> int:
        """Stage ``rows`` and insert those whose event_id is new; returns how many."""
        for statement in sql_file("ingest/stage_events", "postgresql").statements:
            cursor.execute(statement)
        _copy_rows(cursor, "ingest/copy_stage", rows, historical)
        cursor.execute(sql_file("ingest/merge_events", "postgresql").statements[0])
        return cursor.rowcount


def _copy_rows(
    cursor: psycopg.Cursor, name: str, rows: list[tuple[Any, ...]] | CopyRows, historical: bool
) -> None:
    """COPY ``rows`` (each event_id once) by the statement of ``sql/name`` for their kind:
    the first leaves ingested_at to the warehouse's clock (a live ingest), the second
    takes the rows' own. COPY text is passed on as it is; tuples are written by psycopg."""
    live, with_ingested_at = sql_file(name, "postgresql").statements
    with cursor.copy(with_ingested_at if historical else live) as copy:
        if type(rows) is CopyRows:
            # The text is UTF-8; psycopg re-encodes a str for another client encoding.
            utf8 = cursor.connection.info.encoding == "utf-8"
            copy.write(rows.data if utf8 else rows.data.decode("utf-8"))
            return
        write_row = copy.write_row
        if historical:
            for row in rows:
                write_row(row)
        else:
            for row in rows:
                write_row(row[:_INGESTED_AT] + row[_INGESTED_AT + 1 :])


def first_per_event_id(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Drop repeats of an event_id within one batch, keeping the first."""
    return first_per_key(rows, [row[0] for row in rows])


def write_events_sqlite(connection: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert a batch, skipping known event_ids; returns the rows inserted."""
    (statement,) = sql_file("ingest/insert_events", "sqlite").statements
    result = connection.exec_driver_sql(statement, rows)
    return result.rowcount
