"""Validation and upsert of the item catalog (``item_catalog``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bandit_pipeline.ingest.loader import BatchWriter
from bandit_pipeline.ingest.validation import (
    Rejected,
    name_value,
    number,
    optional_text,
    required_id,
    timestamp,
)
from bandit_pipeline.warehouse.sql import sql_statement

CATALOG_COLUMNS = (
    "namespace",
    "item_id",
    "title",
    "category",
    "price",
    "availability",
    "freshness_index",
    "first_seen_at",
)
if TYPE_CHECKING:
    from bandit_pipeline.settings import Settings

MAX_PRICE = 1e9
MAX_TITLE_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class CatalogValidator:
    """A raw mapping to a catalog row in :data:`CATALOG_COLUMNS` order, or Rejected.

    ``availability`` and ``freshness_index`` are fractions in [0, 1]: the share of the
    item's variants in stock, and 1 for a brand-new item falling towards 0 as it ages.
    """

    now: datetime
    default_namespace: str
    max_clock_skew: timedelta

    @classmethod
    def from_settings(cls, settings: Settings, now: datetime) -> CatalogValidator:
        return cls(
            now=now, default_namespace=settings.namespace, max_clock_skew=settings.max_clock_skew
        )

    def __call__(self, fields: dict[str, Any]) -> tuple[Any, ...]:
        title = fields.get("title")
        if title == "":
            title = None
        if title is not None and not isinstance(title, str):
            raise Rejected(f"title: expected a string, got {type(title).__name__}")
        if title is not None and len(title) > MAX_TITLE_LENGTH:
            raise Rejected(f"title: longer than {MAX_TITLE_LENGTH} characters")
        first_seen = fields.get("first_seen_at")
        return (
            name_value(fields, "namespace", self.default_namespace),
            required_id(fields, "item_id"),
            title,
            optional_text(fields, "category"),
            number(fields, "price", 0.0, MAX_PRICE),
            number(fields, "availability", 0.0, 1.0),
            number(fields, "freshness_index", 0.0, 1.0),
            None
            if first_seen in (None, "")
            else timestamp(first_seen, "first_seen_at", self.now + self.max_clock_skew),
        )


def catalog_writer(loaded_at: datetime) -> BatchWriter:
    """A batch writer that upserts catalog rows stamped with ``loaded_at``."""
    statement = sql_statement("ingest/upsert_catalog")

    def write(connection: Connection, rows: list[tuple[Any, ...]]) -> int:
        params = [dict(zip(CATALOG_COLUMNS, row, strict=True), loaded_at=loaded_at) for row in rows]
        connection.execute(statement, params)
        return len(rows)

    return write
