"""Materialise one 15-minute partition: reward aggregates, posteriors and metric rollups
(in the warehouse).

All heavy work is SQL from ``sql/posteriors/`` run inside the warehouse; Python moves a
handful of summary numbers. A partition is replaced as a whole in one transaction, so a
rerun gives the same rows and a crash leaves the previous state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from bandit_pipeline.empirical_prior import fit_priors, record_priors
from bandit_pipeline.monitoring.rollups import MetricsScope, write_metric_deltas
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.policy.prior import PriorFitParameters
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.sql import sql_file, sql_statement
from bandit_pipeline.window_keys import evidence_params, stage_window_keys

__all__ = ["WindowResult", "evidence_params", "materialise_window", "posteriors_as_of"]


@dataclass(frozen=True)
class WindowResult:
    """What one partition's materialisation did (shown as Dagster metadata)."""

    as_of: datetime
    mode: str
    items_touched: int
    posterior_rows: int
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    reward_evidence: float
    late_corrections: int
    aggregate_seconds: float
    posterior_seconds: float

    @classmethod
    def from_summary(
        cls,
        as_of: datetime,
        mode: str,
        posterior_rows: int,
        summary: Any,
        aggregate_seconds: float,
        posterior_seconds: float,
    ) -> WindowResult:
        """The result of a window from its figures (a row of ``posteriors/window_summary``)."""
        return cls(
            as_of=as_of,
            mode=mode,
            items_touched=int(summary.items_touched),
            posterior_rows=posterior_rows,
            impressions=int(summary.impressions),
            clicks=int(summary.clicks),
            add_to_carts=int(summary.add_to_carts),
            purchases=int(summary.purchases),
            reward_evidence=float(summary.reward_evidence),
            late_corrections=int(summary.late_corrections),
            aggregate_seconds=aggregate_seconds,
            posterior_seconds=posterior_seconds,
        )

    def run_record(self, window_start: datetime, params: PosteriorParameters) -> dict[str, Any]:
        """The values of the window's row of bandit_posterior_runs (``posteriors/insert_run``)."""
        return {
            "as_of": self.as_of,
            "window_start": window_start,
            "mode": self.mode,
            "parameters_fingerprint": params.fingerprint(),
            "prior_alpha": params.prior_alpha,
            "prior_beta": params.prior_beta,
            "half_life_days": params.half_life_days,
            "items_touched": self.items_touched,
            "posterior_rows": self.posterior_rows,
            "impressions": self.impressions,
            "reward_evidence": self.reward_evidence,
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "mode": self.mode,
            "items_touched": self.items_touched,
            "posterior_rows": self.posterior_rows,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "add_to_carts": self.add_to_carts,
            "purchases": self.purchases,
            "reward_evidence": round(self.reward_evidence, 6),
            "late_corrections": self.late_corrections,
            "aggregate_sql_seconds": round(self.aggregate_seconds, 4),
            "posterior_sql_seconds": round(self.posterior_seconds, 4),
        }


def materialise_window(
    engine: Engine,
    as_of: datetime,
    params: PosteriorParameters,
    *,
    future_scan: timedelta,
    window: timedelta = WINDOW,
    metrics: MetricsScope | None = None,
    prior: PriorFitParameters | None = None,
) -> WindowResult:
    """Compute and store the aggregates and posteriors of the window ending at ``as_of``,
    with ``metrics`` its metric rollups, and with an empirical ``prior`` the prior of each
    surface, all in one transaction from one reduction of the window's rows to its
    impression keys.

    Impressions dated after the window's start but ingested before it (a producer clock
    ahead of the warehouse) are still growing towards their decay; they are looked for
    among the rows ingested ``future_scan`` before the window. Ingestion rejects events
    dated further ahead than the settings' ``max_clock_skew``, so that is the right reach."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    as_of = as_of.astimezone(UTC)
    window_start = as_of - window
    with engine.begin() as connection:
        for statement in sql_file("posteriors/delete_partition").clauses():
            connection.execute(statement, {"as_of": as_of})

        started = time.perf_counter()
        stage_window_keys(connection, params, window_start, as_of, future_scan)
        connection.execute(
            sql_statement("posteriors/insert_aggregates", connection.dialect.name),
            evidence_params(params, window_start, as_of, future_scan),
        )
        aggregate_seconds = time.perf_counter() - started
        if metrics is not None:
            write_metric_deltas(connection, as_of, params, metrics.experiment)

        started = time.perf_counter()
        mode = _mode(connection, window_start, params)
        posterior_rows = _insert_posteriors(connection, mode, window_start, as_of, params)
        if prior is not None and prior.empirical:
            record_priors(connection, as_of, fit_priors(connection, as_of, params, prior), prior)
        posterior_seconds = time.perf_counter() - started

        summary = connection.execute(
            sql_statement("posteriors/window_summary", connection.dialect.name), {"as_of": as_of}
        ).one()
        result = WindowResult.from_summary(
            as_of, mode, posterior_rows, summary, aggregate_seconds, posterior_seconds
        )
        connection.execute(
            sql_statement("posteriors/insert_run"), result.run_record(window_start, params)
        )
    return result


def _mode(connection: Connection, window_start: datetime, params: PosteriorParameters) -> str:
    previous = connection.execute(
        sql_statement("posteriors/previous_run"), {"previous_as_of": window_start}
    ).scalar()
    return "incremental" if previous == params.fingerprint() else "from_scratch"


def _insert_posteriors(
    connection: Connection,
    mode: str,
    window_start: datetime,
    as_of: datetime,
    params: PosteriorParameters,
) -> int:
    priors = {"prior_alpha": params.prior_alpha, "prior_beta": params.prior_beta}
    if mode == "incremental":
        result = connection.execute(
            sql_statement("posteriors/insert_posteriors_incremental"),
            {
                **priors,
                "as_of": as_of,
                "as_of_epoch": as_of.timestamp(),
                "previous_as_of": window_start,
                "half_life_seconds": params.half_life_seconds,
            },
        )
    else:
        # The whole evidence: the same keys over the look-back horizon, staged anew.
        horizon = as_of - timedelta(seconds=params.lookback_seconds)
        stage_window_keys(connection, params, horizon, as_of, timedelta(0))
        result = connection.execute(
            sql_statement("posteriors/insert_posteriors_from_scratch", connection.dialect.name),
            {**priors, **evidence_params(params, horizon, as_of, timedelta(0))},
        )
    return result.rowcount


def posteriors_as_of(
    engine: Engine, as_of: datetime, params: PosteriorParameters
) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(alpha, beta) of every item with evidence, as of ``as_of``, with the prior in effect
    (``sql/posteriors/as_of.sql``)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sql_statement("posteriors/as_of"),
            {
                "as_of": as_of,
                "as_of_epoch": as_of.timestamp(),
                "prior_alpha": params.prior_alpha,
                "prior_beta": params.prior_beta,
                "half_life_seconds": params.half_life_seconds,
            },
        ).all()
    return {(r.namespace, r.surface, r.item_id): (r.alpha, r.beta) for r in rows}
