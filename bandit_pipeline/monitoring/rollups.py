"""Metric rollups (``bandit_explore_metrics`` and its hourly, daily and readout views).

Each run stores what the events of its window changed per impression window and group
(``bandit_metric_deltas``), computed in the warehouse; the views add those up. A rerun
replaces the run's contribution, so rollups stay exact under reruns and backfills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.timing import WINDOW, WINDOW_SECONDS
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import query_rows, sql_statement
from bandit_pipeline.window_keys import stage_window_keys

if TYPE_CHECKING:
    from bandit_pipeline.warehouse.spark import SparkWarehouse


@dataclass(frozen=True)
class SurfaceFigures:
    """One window's figures for one surface (names as in the table and in Prometheus)."""

    surface: str
    bandit_explore_impressions: int
    bandit_explore_reward_sum: float
    bandit_explore_ctr: float | None
    baseline_impressions: int
    baseline_ctr: float | None
    impressions: int
    ctr: float | None


@dataclass(frozen=True)
class MetricsScope:
    """What a window's rollups need besides the posterior parameters: the namespace whose
    figures are read back, and the experiment (name, holdout percent) to record, if any."""

    namespace: str
    experiment: tuple[str, float] | None = None


def delta_params(as_of: datetime, params: PosteriorParameters) -> dict[str, object]:
    """The parameters of ``metrics/insert_deltas`` for the window ending at ``as_of``."""
    return {
        "as_of": as_of,
        "window_start": as_of - WINDOW,
        "window_seconds": WINDOW_SECONDS,
        "attribution_seconds": params.attribution_seconds,
        "w_click": params.weight_click,
        "w_add_to_cart": params.weight_add_to_cart,
        "w_purchase": params.weight_purchase,
    }


def write_metric_deltas(
    connection: Connection,
    as_of: datetime,
    params: PosteriorParameters,
    experiment: tuple[str, float] | None = None,
) -> None:
    """Replace the run's deltas, from the window's impression keys staged in this
    transaction (``window_keys.stage_window_keys``)."""
    bind = delta_params(as_of, params)
    connection.execute(sql_statement("metrics/delete_deltas"), bind)
    connection.execute(sql_statement("metrics/insert_deltas"), bind)
    if experiment is not None:
        name, holdout = experiment
        connection.execute(
            sql_statement("metrics/upsert_experiment"),
            {"experiment": name, "holdout_percent": holdout, "as_of": as_of},
        )


def materialise_metrics(
    engine: Engine,
    as_of: datetime,
    params: PosteriorParameters,
    namespace: str,
    experiment: tuple[str, float] | None = None,
) -> list[SurfaceFigures]:
    """Store the run's deltas on their own (the job writes them with the posteriors, in
    ``window_update.materialise_window``); returns the figures of the window that just
    closed (they still grow while late outcomes arrive)."""
    with engine.begin() as connection:
        stage_window_keys(connection, params, as_of - WINDOW, as_of, timedelta(0))
        write_metric_deltas(connection, as_of, params, experiment)
    return window_figures(engine, as_of - WINDOW, namespace)


def window_figures(
    engine: Engine | SparkWarehouse, window_start: datetime, namespace: str | None = None
) -> list[SurfaceFigures]:
    rows = query_rows(
        engine, "metrics/window_figures", {"window_start": window_start, "namespace": namespace}
    )
    figures = []
    for row in rows:
        explore, baseline = int(row.bandit_explore_impressions), int(row.baseline_impressions)
        figures.append(
            SurfaceFigures(
                surface=row.surface,
                bandit_explore_impressions=explore,
                bandit_explore_reward_sum=float(row.bandit_explore_reward_sum),
                bandit_explore_ctr=float(row.explore_clicks) / explore if explore else None,
                baseline_impressions=baseline,
                baseline_ctr=float(row.baseline_clicks) / baseline if baseline else None,
                impressions=int(row.impressions),
                ctr=float(row.clicks) / int(row.impressions) if row.impressions else None,
            )
        )
    return figures


def newest_rollup_run(warehouse: Engine | SparkWarehouse) -> datetime | None:
    """The as-of time of the newest rollup run, which the alert and the kill switch
    evaluate at; None before the first run."""
    newest = query_rows(warehouse, "alerts/newest_run", {})[0][0]
    return None if newest is None else aware_timestamp(newest)
