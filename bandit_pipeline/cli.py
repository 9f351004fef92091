"""The ``bandit-pipeline`` command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from bandit_pipeline.redact import redact_url
from bandit_pipeline.settings import Settings, SettingsError, load_settings

EXIT_FAILED = 2


class Context:
    """Settings and the warehouse engine, made on first use."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from bandit_pipeline.warehouse import make_engine

            self._engine = make_engine(self.settings.warehouse_url)
        return self._engine


def fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn configuration, input and database failures into one clear line and exit 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bandit_pipeline.ingest import SourceError

        try:
            return command(*args, **kwargs)
        except SettingsError as exc:
            _fail(str(exc))
        except SourceError as exc:
            _fail(str(exc))
        except (OperationalError, DBAPIError) as exc:
            context = click.get_current_context().find_object(Context)
            where = redact_url(context.settings.warehouse_url) if context else "the warehouse"
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            _fail(f"warehouse error at {where}: {reason}")

    return wrapper


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Thompson-sampling exploration pipeline: warehouse, ingestion and jobs."""
    ctx.obj = Context()


@main.group()
def db() -> None:
    """Warehouse schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
@fails_cleanly
def db_upgrade(obj: Context, revision: str) -> None:
    """Create or upgrade the warehouse tables (safe to run again)."""
    from bandit_pipeline.warehouse.migrate import upgrade

    before, after = upgrade(obj.engine, revision)
    where = redact_url(obj.settings.warehouse_url)
    if before == after:
        click.echo(f"warehouse {where} already at revision {after}")
    else:
        click.echo(f"warehouse {where} upgraded from {before or 'empty'} to {after}")


@db.command("current")
@click.pass_obj
@fails_cleanly
def db_current(obj: Context) -> None:
    """Print the warehouse's schema revision and the newest one this code knows."""
    from bandit_pipeline.warehouse.migrate import current_revision, head_revision

    click.echo(f"current={current_revision(obj.engine) or 'empty'} head={head_revision()}")


@main.command()
@click.argument("path")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "parquet"]),
    default=None,
    help="Input format; by default from the file suffix (stdin: jsonl).",
)
@click.option(
    "--historical",
    is_flag=True,
    help="Replay logged history: ingested_at = the row's ingested_at or occurred_at.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Rows per transaction (default BANDIT_INGEST_BATCH_SIZE).",
)
@click.pass_obj
@fails_cleanly
def ingest(
    obj: Context, path: str, fmt: str | None, historical: bool, batch_size: int | None
) -> None:
    """Load telemetry events from PATH (JSON Lines, CSV or Parquet; - for stdin).

    Bad rows go to bandit_rewards_rejected with their reason; the exit status is non-zero
    only when the input or the warehouse could not be used at all.
    """
    from bandit_pipeline.ingest import ingest_events

    report = ingest_events(
        obj.engine, path, obj.settings, historical=historical, fmt=fmt, batch_size=batch_size
    )
    click.echo(report.summary())


@main.group()
def catalog() -> None:
    """Item catalog."""


@catalog.command("load")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default=None)
@click.pass_obj
@fails_cleanly
def catalog_load(obj: Context, path: str, fmt: str | None) -> None:
    """Upsert items from PATH into item_catalog by (namespace, item_id)."""
    from bandit_pipeline.ingest import load_catalog

    report = load_catalog(obj.engine, path, obj.settings, fmt=fmt)
    click.echo(report.summary().replace("inserted=", "upserted="))


@main.command()
@click.option("--events", default=20_000, show_default=True, help="Impressions to generate.")
@click.option("--items", default=500, show_default=True, help="Catalog size.")
@click.pass_obj
@fails_cleanly
def demo(obj: Context, events: int, items: int) -> None:
    """End-to-end dry run on the configured warehouse (the embedded SQLite by default)."""
    from bandit_pipeline.demo import run_demo

    run_demo(obj.engine, obj.settings, n_impressions=events, n_items=items, echo=click.echo)


if __name__ == "__main__":
    main()
