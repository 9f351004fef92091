"""Ingestion of telemetry events and the item catalog into the warehouse."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from bandit_pipeline.ingest.catalog import CatalogValidator, catalog_writer
from bandit_pipeline.ingest.events import EventValidator, utc_now
from bandit_pipeline.ingest.loader import (
    IngestReport,
    PostgresEventWriter,
    load,
    write_events_sqlite,
)
from bandit_pipeline.ingest.readers import SourceError, SourceRecord, read_records
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
) -> IngestReport:
    """Load the events of ``path`` (``-`` for stdin) into ``bandit_rewards``."""
    return ingest_records(
        engine,
        read_records(path, fmt),
        settings,
        historical=historical,
        batch_size=batch_size,
        source=path,
    )


def ingest_records(
    engine: Engine,
    records: Iterable[SourceRecord],
    settings: Settings,
    *,
    historical: bool = False,
    batch_size: int | None = None,
    source: str = "<records>",
) -> IngestReport:
    """Load already-read records; the entry point for producers inside Python."""
    validator = EventValidator.from_settings(settings, utc_now(), historical=historical)
    writer = PostgresEventWriter() if engine.dialect.name == "postgresql" else write_events_sqlite
    return load(
        engine,
        records,
        validator,
        writer,
        "bandit_rewards_rejected",
        batch_size or settings.ingest_batch_size,
        source,
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
