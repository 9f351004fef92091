"""Great Expectations suites as blocking asset checks: a failing suite stops the assets
downstream in the same run, so a bad table is never published to the online store."""

import dagster as dg

from bandit_pipeline.defs.partitions import fifteen_minute_partitions, window_end
from bandit_pipeline.defs.resources import CandidatePoolResource, WarehouseResource
from bandit_pipeline.monitoring import quality
from bandit_pipeline.run_metadata import suites_metadata


def _result(results: list[quality.SuiteResult]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=all(r.success for r in results),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=suites_metadata(results),
    )


@dg.asset_check(
    asset="reward_aggregates",
    name="window_reward_rows_valid",
    blocking=True,
    partitions_def=fifteen_minute_partitions,
    description="The bandit_rewards rows that became visible in each window: ids, types, "
    "timestamps, allowed event types and variants.",
)
def window_reward_rows_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    engine = warehouse.engine()
    return _result([quality.check_rewards(engine, window_end(k)) for k in context.partition_keys])


@dg.asset_check(
    asset="reward_aggregates",
    name="aggregates_within_bounds",
    blocking=True,
    partitions_def=fifteen_minute_partitions,
    description="Counts are non-negative and each window adds at most one unit of evidence "
    "per new or corrected impression.",
)
def aggregates_within_bounds(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    engine = warehouse.engine()
    return _result(
        [quality.check_aggregates(engine, window_end(k)) for k in context.partition_keys]
    )


@dg.asset_check(
    asset="bandit_posteriors",
    name="posteriors_proper",
    blocking=True,
    partitions_def=fifteen_minute_partitions,
    description="alpha >= prior alpha, beta >= prior beta, finite, never null.",
)
def posteriors_proper(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    engine, params = warehouse.engine(), warehouse.parameters
    return _result(
        [quality.check_posteriors(engine, window_end(k), params) for k in context.partition_keys]
    )


@dg.asset_check(
    asset="explore_candidate_pool",
    name="pool_items_sane",
    blocking=True,
    partitions_def=fifteen_minute_partitions,
    description="Every pooled item has a positive price, availability and freshness above "
    "the thresholds, and a proper posterior.",
)
def pool_items_sane(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
) -> dg.AssetCheckResult:
    as_of = window_end(max(context.partition_keys))  # the pool is built for the newest window
    return _result([quality.check_pool(warehouse.engine(), as_of, candidate_pool.parameters)])


ASSET_CHECKS = [
    window_reward_rows_valid,
    aggregates_within_bounds,
    posteriors_proper,
    pool_items_sane,
]
