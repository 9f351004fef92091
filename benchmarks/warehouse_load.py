"""Synthetic events loaded straight into a scratch warehouse, for the benchmarks that
measure the job rather than the ingest: COPY into ``bandit_rewards`` with a fixed
``ingested_at`` (a few seconds after ``occurred_at``), so each event lands in the window
it is meant for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bandit_pipeline.ingest.events import EVENT_COLUMNS
from bandit_pipeline.simulate import generate_events, write_jsonl

# generate_events yields about 0.07 outcome events per impression.
EVENTS_PER_IMPRESSION = 1.07
INGEST_DELAY = timedelta(seconds=5)
# Events are generated up to this long before a boundary, so that occurred_at plus
# INGEST_DELAY stays inside the window they are meant for.
MARGIN = timedelta(seconds=10)

# (id prefix, first occurred_at, last occurred_at, about how many events)
Chunk = tuple[str, datetime, datetime, int]


def item_ids(items: int) -> list[str]:
    """The ids of the catalog of ``items`` items (as ``generate_catalog`` names them)."""
    return [f"item-{i:06d}" for i in range(items)]


def impressions_for(events: int) -> int:
    return max(1, int(events / EVENTS_PER_IMPRESSION))


def generate_file(path: Path, events: int, items: int, span: timedelta) -> int:
    """About ``events`` events over the last ``span`` as JSON Lines in ``path``, for the
    ingest benchmarks; returns the exact count."""
    end = datetime.now(UTC)
    generated = generate_events(item_ids(items), impressions_for(events), start=end - span, end=end)
    return write_jsonl(path, generated)


def rows_of(events: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for event in events:
        occurred = datetime.fromisoformat(event["occurred_at"])
        yield tuple(
            occurred if c == "occurred_at" else
            occurred + INGEST_DELAY if c == "ingested_at" else
            event.get(c)
            for c in EVENT_COLUMNS
        )  # fmt: skip


def copy_events(dsn: str, chunks: list[Chunk], items: int) -> int:
    """COPY each chunk's generated events into bandit_rewards, then ANALYZE; returns the
    number of events."""
    ids = item_ids(items)
    total = 0
    copy = sql.SQL("COPY bandit_rewards ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in EVENT_COLUMNS)
    )
    with psycopg.connect(dsn, options="-c timezone=UTC") as connection:
        with connection.cursor() as cursor:
            for seed, (prefix, start, end, events) in enumerate(chunks, start=1):
                generated = generate_events(
                    ids, impressions_for(events), start=start, end=end, seed=seed,
                    id_prefix=prefix,
                )  # fmt: skip
                with cursor.copy(copy) as writer:
                    for row in rows_of(generated):
                        writer.write_row(row)
                        total += 1
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE bandit_rewards")
    return total


def day_chunks(prefix: str, start: datetime, days: int, per_day: int) -> list[Chunk]:
    """One chunk a day from ``start``, ``per_day`` events each."""
    return [
        (f"{prefix}{d}", start + timedelta(days=d), start + timedelta(days=d + 1) - MARGIN, per_day)
        for d in range(days)
    ]


def table_size(dsn: str, table: str = "bandit_rewards") -> tuple[int, int]:
    """Rows of ``table`` and its bytes with indexes and TOAST."""
    with psycopg.connect(dsn) as connection:
        rows, size = connection.execute(
            sql.SQL("SELECT count(*), pg_total_relation_size({}) FROM {}").format(
                sql.Literal(table), sql.Identifier(table)
            )
        ).fetchone()
    return int(rows), int(size)
