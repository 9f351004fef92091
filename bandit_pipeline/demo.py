"""``make demo``: schema, generated catalog and events, ingestion, and what landed."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from bandit_pipeline.ingest import ingest_events, load_catalog
from bandit_pipeline.redact import redact_url
from bandit_pipeline.settings import Settings
from bandit_pipeline.simulate import generate_catalog, generate_events, write_jsonl
from bandit_pipeline.warehouse import read_sql
from bandit_pipeline.warehouse.migrate import upgrade


def run_demo(
    engine: Engine,
    settings: Settings,
    *,
    n_impressions: int,
    n_items: int,
    echo: Callable[[str], None] = print,
) -> None:
    echo(f"warehouse: {redact_url(settings.warehouse_url)}")
    before, after = upgrade(engine)
    echo(f"schema: {before or 'empty'} -> {after}")

    now = datetime.now(UTC).replace(microsecond=0)
    catalog = generate_catalog(n_items, namespace=settings.namespace, now=now)
    with tempfile.TemporaryDirectory() as folder:
        catalog_path = Path(folder) / "catalog.jsonl"
        events_path = Path(folder) / "events.jsonl"
        write_jsonl(catalog_path, catalog)
        # Two hours of logged history, replayed so each event is visible from when it happened.
        events = generate_events(
            [item["item_id"] for item in catalog],
            n_impressions,
            start=now - timedelta(hours=2),
            end=now,
            namespace=settings.namespace,
            seed=int(now.timestamp()),
            experiment=settings.experiment_name if settings.experiment_enabled else None,
            holdout_percent=settings.experiment_holdout_percent,
        )
        written = write_jsonl(events_path, events)
        with open(events_path, "a", encoding="utf-8") as handle:
            handle.write('{"event_id": "bad-1", "event_type": "hover"}\n')
            handle.write("this line is not JSON\n")
        echo(f"generated {n_items} items and {written} events (+2 malformed rows)")
        echo("catalog:  " + load_catalog(engine, str(catalog_path), settings).summary())
        report = ingest_events(engine, str(events_path), settings, historical=True)
        echo("events:   " + report.summary())

    echo("\nwhat landed in bandit_rewards (this namespace, by surface and event type):")
    with engine.connect() as connection:
        rows = connection.execute(
            text(read_sql("reports/events_by_surface")), {"namespace": settings.namespace}
        ).all()
    echo(f"{'surface':<8} {'event_type':<12} {'events':>8} {'explore':>8}")
    for surface, event_type, count, explore in rows:
        echo(f"{surface:<8} {event_type:<12} {count:>8} {explore:>8}")
