"""Great Expectations suites as blocking asset checks: a failing suite stops the assets
downstream in the same run, so a bad table is never published to the online store."""

import dagster as dg

from bandit_pipeline.defs.partitions import fifteen_minute_partitions, window_end
from bandit_pipeline.defs.resources import CandidatePoolResource, WarehouseResource
from bandit_pipeline.monitoring import quality
from bandit_pipeline.run_metadata import suites_metadata
from bandit_pipeline.settings import Settings


def _result(results: list[quality.SuiteResult]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=all(r.success for r in results),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=suites_metadata(results),
    )


def window_reward_rows_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    engine = warehouse.engine()
    return _result([quality.check_rewards(engine, window_end(k)) for k in context.partition_keys])


def aggregates_within_bounds(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    engine = warehouse.engine()
    return _result(
        [quality.check_aggregates(engine, window_end(k)) for k in context.partition_keys]
    )


def posteriors_proper(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    engine, params = warehouse.engine(), warehouse.parameters
    return _result(
        [quality.check_posteriors(engine, window_end(k), params) for k in context.partition_keys]
    )


def pool_items_sane(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
) -> dg.AssetCheckResult:
    as_of = window_end(max(context.partition_keys))  # the pool is built for the newest window
    return _result([quality.check_pool(warehouse.engine(), as_of, candidate_pool.parameters)])


# Each check: the asset it guards and what it expects.
CHECKS = {
    window_reward_rows_valid: (
        "reward_aggregates",
        "The bandit_rewards rows that became visible in each window: ids, types, timestamps, "
        "allowed event types and variants.",
    ),
    aggregates_within_bounds: (
        "reward_aggregates",
        "Counts are non-negative and each window adds at most one unit of evidence per new or "
        "corrected impression.",
    ),
    posteriors_proper: (
        "bandit_posteriors",
        "alpha >= prior alpha, beta >= prior beta, finite, never null.",
    ),
    pool_items_sane: (
        "explore_candidate_pool",
        "Every pooled item has a positive price, availability and freshness above the "
        "thresholds, and a proper posterior.",
    ),
}


def quality_check_definitions(settings: Settings) -> dg.Definitions:
    """The four suites, on the partitions of the assets they guard."""
    partitions = fifteen_minute_partitions(settings)
    return dg.Definitions(
        asset_checks=[
            dg.asset_check(
                asset=asset,
                name=check.__name__,
                blocking=True,
                partitions_def=partitions,
                description=description,
            )(check)
            for check, (asset, description) in CHECKS.items()
        ]
    )
