"""Materialise one 15-minute partition on the Spark warehouse (docs/spark.md): the same
definition, modes and records as ``window_update.materialise_window``, run as the Spark
SQL variants of ``sql/posteriors/``.

Spark has no transaction over several tables, so a window is written in an order that
keeps every state a reader can see consistent: its run record goes first, then its
aggregates and posteriors each replace their ``as_of`` partition (INSERT OVERWRITE of
one partition, which a rerun repeats with the same rows), and the run record comes last.
A window without its run record is not materialised: the window after it starts from
scratch.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bandit_pipeline.monitoring.rollups import MetricsScope, delta_params
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.policy.prior import PriorFitParameters
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.spark import SparkWarehouse
from bandit_pipeline.window_keys import evidence_params
from bandit_pipeline.window_update import WindowResult

__all__ = ["materialise_window_spark", "posteriors_as_of_spark"]

WINDOW_KEYS = "bandit_window_keys"
WINDOW_POSTERIORS = "bandit_window_posteriors"


def materialise_window_spark(
    warehouse: SparkWarehouse,
    as_of: datetime,
    params: PosteriorParameters,
    *,
    future_scan: timedelta,
    window: timedelta = WINDOW,
    metrics: MetricsScope | None = None,
    prior: PriorFitParameters | None = None,
) -> WindowResult:
    """Compute and store the aggregates and posteriors of the window ending at ``as_of``
    (``future_scan``: as in ``materialise_window``), with ``metrics`` its metric rollups
    (``bandit_metric_deltas``; no experiment's holdout record on Spark yet). The empirical
    prior is not computed on Spark yet."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    if prior is not None and prior.empirical:
        raise NotImplementedError("the empirical prior is not computed on Spark yet")
    as_of = as_of.astimezone(UTC)
    window_start = as_of - window
    with warehouse.lock:
        try:
            return _materialise(warehouse, as_of, window_start, params, future_scan, metrics)
        finally:
            warehouse.release(WINDOW_KEYS)
            warehouse.release(WINDOW_POSTERIORS)


def _materialise(
    warehouse: SparkWarehouse,
    as_of: datetime,
    window_start: datetime,
    params: PosteriorParameters,
    future_scan: timedelta,
    metrics: MetricsScope | None,
) -> WindowResult:
    warehouse.execute("posteriors/refresh_tables")
    warehouse.execute("posteriors/delete_partition", {"as_of": as_of})

    started = time.perf_counter()
    bind = evidence_params(params, window_start, as_of, future_scan)
    warehouse.stage("posteriors/stage_window_keys", WINDOW_KEYS, bind)
    warehouse.execute("posteriors/insert_aggregates", bind)
    aggregate_seconds = time.perf_counter() - started
    if metrics is not None:
        warehouse.execute("metrics/insert_deltas", delta_params(as_of, params))

    started = time.perf_counter()
    previous = warehouse.scalar("posteriors/previous_run", {"previous_as_of": window_start})
    mode = "incremental" if previous == params.fingerprint() else "from_scratch"
    priors = {"prior_alpha": params.prior_alpha, "prior_beta": params.prior_beta}
    if mode == "incremental":
        warehouse.stage(
            "posteriors/incremental_posteriors",
            WINDOW_POSTERIORS,
            {
                **priors,
                "as_of": as_of,
                "as_of_epoch": as_of.timestamp(),
                "previous_as_of": window_start,
                "half_life_seconds": params.half_life_seconds,
            },
            detach=True,
        )
        warehouse.execute("posteriors/insert_posteriors_incremental", {"as_of": as_of})
    else:
        # The whole evidence: the same keys over the look-back horizon, staged anew.
        horizon = as_of - timedelta(seconds=params.lookback_seconds)
        scratch = evidence_params(params, horizon, as_of, timedelta(0))
        warehouse.stage("posteriors/stage_window_keys", WINDOW_KEYS, scratch)
        warehouse.execute("posteriors/insert_posteriors_from_scratch", {**priors, **scratch})
    posterior_rows = int(warehouse.scalar("posteriors/posterior_rows", {"as_of": as_of}))
    posterior_seconds = time.perf_counter() - started

    summary = warehouse.rows("posteriors/window_summary", {"as_of": as_of})[0]
    result = WindowResult.from_summary(
        as_of, mode, posterior_rows, summary, aggregate_seconds, posterior_seconds
    )
    warehouse.execute("posteriors/insert_run", result.run_record(window_start, params))
    return result


def posteriors_as_of_spark(
    warehouse: SparkWarehouse, as_of: datetime, params: PosteriorParameters
) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(alpha, beta) of every item with evidence, as of ``as_of``, with the fixed prior
    (``sql/posteriors/as_of.spark.sql``)."""
    rows = warehouse.rows(
        "posteriors/as_of",
        {
            "as_of": as_of,
            "as_of_epoch": as_of.timestamp(),
            "prior_alpha": params.prior_alpha,
            "prior_beta": params.prior_beta,
            "half_life_seconds": params.half_life_seconds,
        },
    )
    return {(r.namespace, r.surface, r.item_id): (r.alpha, r.beta) for r in rows}
