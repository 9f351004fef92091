"""``make demo``: schema, generated catalog and events, ingestion, the job, and served
responses, on stores of its own.

The demo never touches data it did not make: by default it works in a folder of its own
(warehouse and online store recreated there at each run); told to use the configured
stores, it refuses a warehouse that already holds events or a catalog unless allowed, and
it never writes flags (its decisions take exploration from the demo's settings).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import Engine, inspect

from bandit_pipeline.ingest import ingest_events, load_catalog
from bandit_pipeline.local_runs import partition_keys, run_partitions
from bandit_pipeline.redact import redact_url
from bandit_pipeline.settings import Settings
from bandit_pipeline.simulate import generate_catalog, generate_events, write_jsonl
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline.warehouse.sql import sql_statement


class DemoRefused(RuntimeError):
    """The demo would write into data it did not make."""


def demo_settings(settings: Settings, folder: Path | None) -> Settings:
    """The settings the demo runs with: stores in ``folder`` (None: the configured ones),
    exploration on with two slots, without writing a flag anywhere."""
    update: dict[str, object] = {"exploration_enabled": True, "explore_slots": 2}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("warehouse.db", "online_store.db"):
            (folder / name).unlink(missing_ok=True)
        update["warehouse_url"] = f"sqlite:///{folder.resolve() / 'warehouse.db'}"
        update["online_store_url"] = f"sqlite:///{folder.resolve() / 'online_store.db'}"
    return settings.model_copy(update=update)


def refuse_existing_data(engine: Engine) -> None:
    """Raise :class:`DemoRefused` when the warehouse holds events or a catalog."""
    tables = set(inspect(engine).get_table_names())
    if not {"bandit_rewards", "item_catalog"} <= tables:
        return
    with engine.connect() as connection:
        held = connection.execute(sql_statement("reports/holds_data")).scalar()
    if held:
        raise DemoRefused(
            "the warehouse already holds events or a catalog; the demo writes only into "
            "a warehouse of its own (leave out --into-configured-stores), or pass "
            "--allow-existing-data to add its synthetic data to this one"
        )


def run_demo(
    engine: Engine,
    settings: Settings,
    *,
    n_impressions: int,
    n_items: int,
    echo: Callable[[str], None] = print,
) -> None:
    """The dry run on ``engine``/``settings`` as they are (see :func:`demo_settings`)."""
    echo(f"warehouse: {redact_url(settings.warehouse_url)}")
    before, after = upgrade(engine)
    echo(f"schema: {before or 'empty'} -> {after}")

    # End the traffic at the last complete 15-minute window, which the job then covers.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
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
            sql_statement("reports/events_by_surface"), {"namespace": settings.namespace}
        ).all()
    echo(f"{'surface':<8} {'event_type':<12} {'events':>8} {'explore':>8}")
    for surface, event_type, count, explore in rows:
        echo(f"{surface:<8} {event_type:<12} {count:>8} {explore:>8}")

    first_key = (now - timedelta(hours=2)).strftime(PARTITION_FORMAT)
    last_key = (now - WINDOW).strftime(PARTITION_FORMAT)
    echo(f"\nrunning job bandit_posterior_update for partitions {first_key} .. {last_key}")
    windows = len(partition_keys(first_key, last_key))
    with click.progressbar(length=windows, label="windows", file=sys.stderr) as bar:
        run_partitions(settings, first_key, last_key, on_progress=bar.update)
    echo("\ntop posteriors per surface (bandit_posteriors_latest, by posterior mean):")
    with engine.connect() as connection:
        top = connection.execute(
            sql_statement("reports/top_posteriors"),
            {"namespace": settings.namespace, "per_surface": 5},
        ).all()
    echo(f"{'surface':<8} {'item_id':<12} {'alpha':>8} {'beta':>9} {'mean':>7}")
    for row in top:
        numbers = f"{row.alpha:>8.3f} {row.beta:>9.3f} {row.mean:>7.4f}"
        echo(f"{row.surface:<8} {row.item_id:<12} {numbers}")

    serve_examples(settings, now, echo)

    echo("\nmetric rollups of the last two hours (bandit_explore_metrics_hourly):")
    with engine.connect() as connection:
        hourly = connection.execute(
            sql_statement("reports/hourly_metrics"), {"namespace": settings.namespace}
        ).all()
    echo(f"{'hour':<20} {'surface':<8} {'explore':>8} {'explore ctr':>12} {'baseline ctr':>13}")
    for row in hourly:
        explore_ctr = "-" if row.bandit_explore_ctr is None else f"{row.bandit_explore_ctr:.4f}"
        baseline_ctr = "-" if row.baseline_ctr is None else f"{row.baseline_ctr:.4f}"
        hour = str(row.period_start)[:16]
        explore = row.bandit_explore_impressions
        echo(f"{hour:<20} {row.surface:<8} {explore:>8} {explore_ctr:>12} {baseline_ctr:>13}")


def serve_examples(settings: Settings, now: datetime, echo: Callable[[str], None]) -> None:
    """Ask the serving module for a few responses (exploration on by the demo's settings)."""
    from bandit_pipeline.online_store import open_store
    from bandit_pipeline.serving import DecisionRequest, ExplorationService

    store = open_store(settings.online_store_url, prefix=settings.online_store_prefix)
    for surface in settings.surfaces:
        snapshot = store.load(settings.namespace, surface)
        size = len(snapshot) if snapshot else 0
        echo(f"\npublished snapshot {surface}: {size} candidates, version "
             f"{snapshot.version if snapshot else '-'}")  # fmt: skip
    service = ExplorationService(settings, store, background=False)
    ranked = [f"ranked-{i}" for i in range(8)]
    echo("\nserved responses (explore=true items are marked *):")
    try:
        for n, surface in enumerate(settings.surfaces * 2):
            request = DecisionRequest(
                settings.namespace, surface, f"user-{n}", f"demo-{now:%H%M}-{n}", ranked
            )
            response = service.decide(request)
            shown = " ".join(f"{i.item_id}{'*' if i.explore else ''}" for i in response.items)
            trace = response.trace
            echo(f"  {surface:<5} {trace.user_id:<7} {shown}")
            echo(f"        trace: reason={trace.reason} slots={trace.explore_slots} "
                 f"scores={[round(x, 3) for x in trace.scores]} seed={trace.seed} "
                 f"version={trace.snapshot_version}")  # fmt: skip
    finally:
        service.close()
