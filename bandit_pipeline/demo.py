"""``make demo``: the staging dry run. The synthetic shop drives the real serving,
ingestion and Dagster job in simulated time (``simulate.dry_run``), then the report is
written with the hidden truth beside the figures.

The demo never touches data it did not make: by default it works in a folder of its own
(warehouse and online store recreated there at each run); told to use the configured
stores, it refuses a warehouse that already holds events or a catalog unless allowed, and
it never writes flags (its decisions take exploration from the demo's settings).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine, inspect

from bandit_pipeline.redact import redact_url
from bandit_pipeline.settings import Settings
from bandit_pipeline.simulate.dry_run import dry_run_settings, run_dry_run
from bandit_pipeline.simulate.shop import ShopOptions
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline.warehouse.sql import sql_statement

if TYPE_CHECKING:
    from bandit_pipeline.report import Report


class DemoRefused(RuntimeError):
    """The demo would write into data it did not make."""


def demo_settings(
    settings: Settings,
    folder: Path | None,
    *,
    slots: int = 2,
    traffic_percent: float = 100.0,
    holdout_percent: float = 10.0,
) -> Settings:
    """The settings the demo runs with: stores in ``folder`` (None: the configured ones),
    exploration on with ``slots`` slots for ``traffic_percent`` of the users and the
    experiment's holdout, all as the flags' fallbacks: it writes no flag anywhere."""
    update: dict[str, object] = {
        "exploration_enabled": True,
        "explore_slots": slots,
        "explore_traffic_percent": traffic_percent,
        "experiment_enabled": True,
        "experiment_holdout_percent": holdout_percent,
    }
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
    options: ShopOptions,
    folder: Path,
    *,
    checks_every: int = 4,
    echo: Callable[[str], None] = print,
) -> Report:
    """The staging dry run on ``engine``/``settings`` as they are (see :func:`demo_settings`):
    ``options.days`` of simulated traffic ending at the last whole window, then the report
    (with the hidden truth) in ``folder / "report"``."""
    from bandit_pipeline.report import write_report

    echo(f"warehouse: {redact_url(settings.warehouse_url)}")
    echo(f"online store: {redact_url(settings.online_store_url)}")
    before, after = upgrade(engine)
    echo(f"schema: {before or 'empty'} -> {after}")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15)
    windows = round(options.days * 24 * 4)
    start = end - windows * WINDOW
    settings = dry_run_settings(settings, options, start)
    echo(
        f"simulating {options.days:g} days ({windows} windows) from {start:%Y-%m-%d %H:%M} UTC: "
        f"{options.users} users, seed {options.seed}, scenario {options.scenario}, "
        f"{settings.explore_traffic_percent:g}% of traffic, {settings.explore_slots} slot(s), "
        f"holdout {settings.experiment_holdout_percent:g}%"
    )
    with click.progressbar(length=windows, label="windows", file=sys.stderr) as bar:
        result = run_dry_run(
            engine, settings, options, start, folder, checks_every=checks_every,
            on_window=bar.update,
        )  # fmt: skip
    echo(
        f"served {result.requests} requests ({result.explored} explored); ingested "
        f"{result.ingested} events, ignored {result.duplicates_ignored} re-sent duplicates, "
        f"kept {result.rejected} malformed rows aside"
    )
    report = write_report(engine, settings, start, end, folder / "report", result.truth)
    regret = result.truth.regret
    thompson = sum(r.thompson for r in regret)
    uniform = sum(r.uniform for r in regret)
    echo(f"\nreport: {report.html_path}")
    if uniform > 0:
        echo(f"cumulative regret: Thompson sampling {thompson:.1f}, uniform {uniform:.1f} "
             f"({thompson / uniform:.0%} of uniform)")  # fmt: skip
    for line in report.verdict_lines():
        echo(line)
    return report
