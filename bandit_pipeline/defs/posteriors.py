"""The posterior assets: the reward events, and per window their aggregates, the Beta
posteriors they update and the metric rollups, all from one reduction of the window's
rows in one transaction.

Partitioned assets receive a range of partitions in one run (single-run backfill
policy) and compute it window by window in order, so each window continues from the one
before. State lives in warehouse tables, never in an IO manager.
"""

from collections.abc import Iterator

import dagster as dg

from bandit_pipeline.defs.failures import explain_failures
from bandit_pipeline.defs.partitions import (
    POSTERIOR_CHAIN_POOL,
    fifteen_minute_partitions,
    window_end,
)
from bandit_pipeline.defs.resources import (
    CandidatePoolResource,
    MonitoringResource,
    WarehouseResource,
    warehouse_kind,
)
from bandit_pipeline.monitoring.rollups import MetricsScope, window_figures
from bandit_pipeline.run_metadata import (
    aggregates_metadata,
    metrics_metadata,
    posteriors_metadata,
)
from bandit_pipeline.settings import Settings
from bandit_pipeline.spark_window import materialise_window_spark
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.window_update import materialise_window

# The assets of the exploration itself: posteriors, the pool and its publication.
EXPLORATION_GROUP = "bandit_exploration"
# The metric rollups that guard the core metrics (their sensors: defs/safeguards.py).
MONITORING_GROUP = "bandit_monitoring"


@explain_failures
def posterior_update(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    monitoring: MonitoringResource,
) -> Iterator[dg.MaterializeResult]:
    """The aggregates, posteriors and metric rollups of each window in one transaction
    (on Spark, in an order whose every state is safe), window by window in time order."""
    engine, params = warehouse.target(), warehouse.parameters
    materialise = materialise_window_spark if warehouse.is_spark else materialise_window
    scope = MetricsScope(candidate_pool.namespace, monitoring.experiment())
    results = []
    for key in sorted(context.partition_keys):
        result = materialise(
            engine,
            window_end(key),
            params,
            future_scan=warehouse.future_scan,
            metrics=scope,
            prior=warehouse.prior_fit,
        )
        context.log.info("window %s: %s", key, result.metadata())
        results.append(result)
    # The newest window's figures, per surface: the UI plots these over time.
    figures = window_figures(engine, results[-1].as_of - WINDOW, scope.namespace)
    yield dg.MaterializeResult(asset_key="reward_aggregates", metadata=aggregates_metadata(results))
    yield dg.MaterializeResult(asset_key="bandit_posteriors", metadata=posteriors_metadata(results))
    yield dg.MaterializeResult(
        asset_key="bandit_explore_metrics", metadata=metrics_metadata(len(results), figures)
    )


def posterior_definitions(settings: Settings) -> dg.Definitions:
    """The reward events (loaded outside Dagster) and the posterior multi-asset."""
    kinds = {warehouse_kind(settings)}
    bandit_rewards = dg.AssetSpec(
        "bandit_rewards",
        description="Telemetry events, one row per event (loaded by `bandit-pipeline ingest`).",
        group_name=EXPLORATION_GROUP,
        kinds=kinds,
    )
    specs = [
        dg.AssetSpec(
            "reward_aggregates",
            deps=[bandit_rewards],
            group_name=EXPLORATION_GROUP,
            kinds=kinds,
            description="Per window, namespace, surface and item: new impressions, "
            "outcomes and the decayed evidence the window adds (table "
            "bandit_reward_aggregates).",
        ),
        dg.AssetSpec(
            "bandit_posteriors",
            deps=["reward_aggregates"],
            group_name=EXPLORATION_GROUP,
            kinds=kinds,
            description="Beta posteriors (alpha, beta) as of each window's end for the "
            "items whose evidence changed (table bandit_posteriors; view "
            "bandit_posteriors_latest).",
        ),
    ]
    specs.append(
        dg.AssetSpec(
            "bandit_explore_metrics",
            deps=[bandit_rewards],
            group_name=MONITORING_GROUP,
            kinds=kinds,
            description="Exploration, baseline and core metrics per window, namespace, "
            "surface, experiment and variant (view bandit_explore_metrics over "
            "bandit_metric_deltas; hourly, daily and readout views beside it; on Spark "
            "the table alone).",
        )
    )
    update = dg.multi_asset(
        specs=specs,
        partitions_def=fifteen_minute_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POSTERIOR_CHAIN_POOL,
        can_subset=False,
    )(posterior_update)
    return dg.Definitions(assets=[bandit_rewards, update])
