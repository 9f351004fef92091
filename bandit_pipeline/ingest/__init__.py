"""Ingestion of telemetry events and the item catalog into the warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from bandit_pipeline.ingest.catalog import CatalogValidator, catalog_writer
from bandit_pipeline.ingest.events import EventValidator, utc_now
from bandit_pipeline.ingest.loader import (
    IngestReport,
    PostgresEventWriter,
    load,
    load_batches,
    write_events_sqlite,
)
from bandit_pipeline.ingest.parse_process import batches_from_process, worth_a_process
from bandit_pipeline.ingest.readers import SourceError, SourceRecord, read_records
from bandit_pipeline.ingest.vectorised import ValidRows, event_records
from bandit_pipeline.settings import Settings

__all__ = [
    "IngestReport",
    "SourceError",
    "SourceRecord",
    "ingest_events",
    "ingest_records",
    "load_catalog",
]


def ingest_events(
    engine: Engine,
    path: str,
    settings: Settings,
    *,
    historical: bool = False,
    fmt: str | None = None,
    batch_size: int | None = None,
    on_progress: Callable[[int], object] | None = None,
    parse_process: bool | None = None,
    vectorised: bool = True,
) -> IngestReport:
    """Load the events of ``path`` (``-`` for stdin) into ``bandit_rewards``.

    ``on_progress`` hears how many rows were read after each batch. On PostgreSQL a large
    file is parsed and validated in a second process (:mod:`.parse_process`) while this
    one writes; ``parse_process`` forces that choice either way. JSON Lines and Parquet
    are checked block by block with pyarrow (:mod:`.vectorised`), and the rows those
    checks cannot vouch for by the Python validator; ``vectorised=False`` validates every
    row in Python (the same rows and rejections, more slowly).
    """
    postgres = engine.dialect.name == "postgresql"
    validator = EventValidator.from_settings(settings, utc_now(), historical=historical)
    size = batch_size or settings.ingest_batch_size
    if parse_process is None:
        parse_process = postgres and worth_a_process(path)
    if not parse_process:
        records = event_records(path, fmt, validator) if vectorised else read_records(path, fmt)
        return _load_events(engine, records, validator, size, path, on_progress)
    report = IngestReport()
    batches = batches_from_process(
        path, fmt, validator, size, report, vectorised=vectorised, copy_text=postgres
    )
    writer = PostgresEventWriter() if postgres else write_events_sqlite
    return load_batches(
        engine, batches, writer, "bandit_rewards_rejected", report, on_progress=on_progress
    )


def ingest_records(
    engine: Engine,
    records: Iterable[SourceRecord],
    settings: Settings,
    *,
    historical: bool = False,
    batch_size: int | None = None,
    source: str = "<records>",
    on_progress: Callable[[int], object] | None = None,
) -> IngestReport:
    """Load already-read records; the entry point for producers inside Python."""
    validator = EventValidator.from_settings(settings, utc_now(), historical=historical)
    size = batch_size or settings.ingest_batch_size
    return _load_events(engine, records, validator, size, source, on_progress)


def _load_events(
    engine: Engine,
    records: Iterable[SourceRecord | ValidRows],
    validator: EventValidator,
    batch_size: int,
    source: str,
    on_progress: Callable[[int], object] | None,
) -> IngestReport:
    writer = PostgresEventWriter() if engine.dialect.name == "postgresql" else write_events_sqlite
    return load(
        engine,
        records,
        validator,
        writer,
        "bandit_rewards_rejected",
        batch_size,
        source,
        on_progress=on_progress,
    )


def load_catalog(
    engine: Engine, path: str, settings: Settings, *, fmt: str | None = None
) -> IngestReport:
    """Upsert the items of ``path`` into ``item_catalog`` by (namespace, item_id)."""
    now = utc_now()
    validator = CatalogValidator.from_settings(settings, now)
    return load(
        engine,
        read_records(path, fmt),
        validator,
        catalog_writer(now),
        "item_catalog_rejected",
        settings.ingest_batch_size,
        path,
    )
