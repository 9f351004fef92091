"""Great Expectations suites as blocking asset checks: a failing suite stops the assets
downstream in the same run, so a bad table is never published to the online store.

Each check reports one evaluation per partition of its run, on that partition's newest
materialization. Dagster records a check result under the partition of the run only when
the run has a single partition; a run over a range (a backfill) would leave every window's
check "skipped", and the asset graph would show "0 / N passed" although every suite
passed. One evaluation per window is also what tells which window of a backfill failed.
"""

from collections.abc import Callable, Iterator

import dagster as dg

# Dagster's public AssetCheckResult carries no partition, so the per-partition evaluation
# names its materialization with this record (the one AssetCheckResult fills in itself).
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from bandit_pipeline.defs.partitions import (
    POSTERIOR_CHAIN_POOL,
    fifteen_minute_partitions,
    window_end,
)
from bandit_pipeline.defs.resources import CandidatePoolResource, WarehouseResource
from bandit_pipeline.monitoring import quality
from bandit_pipeline.settings import Settings

CheckEvents = Iterator[dg.AssetCheckEvaluation | dg.Output]


def _materialization(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The partition's newest materialization: the UI counts an evaluation of it as current."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def _per_partition(
    context: dg.AssetCheckExecutionContext, suite: Callable[[str], quality.SuiteResult]
) -> CheckEvents:
    """``suite`` of each partition of the run as that partition's evaluation; a failed one
    fails the step (blocking, severity error) after all were recorded."""
    spec = context.check_specs[0]
    for key in sorted(context.partition_keys):
        result = suite(key)
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=result.success,
            partition=key,
            blocking=True,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=result.metadata(),
            target_materialization_data=_materialization(context, spec.asset_key, key),
        )
    yield dg.Output(None)  # the check's output, which the blocked assets wait for


def window_reward_rows_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> CheckEvents:
    engine = warehouse.target()
    yield from _per_partition(context, lambda k: quality.check_rewards(engine, window_end(k)))


def aggregates_within_bounds(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> CheckEvents:
    engine = warehouse.target()
    yield from _per_partition(context, lambda k: quality.check_aggregates(engine, window_end(k)))


def posteriors_proper(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> CheckEvents:
    engine, params = warehouse.target(), warehouse.parameters
    yield from _per_partition(
        context, lambda k: quality.check_posteriors(engine, window_end(k), params)
    )


def pool_items_sane(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
) -> CheckEvents:
    """The pool is built for the newest window of the run, and that one pool is what the
    run materialised for each of its partitions: its result is theirs."""
    as_of = window_end(max(context.partition_keys))
    result = quality.check_pool(warehouse.target(), as_of, candidate_pool.parameters)
    yield from _per_partition(context, lambda _key: result)


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
    """The four suites, on the partitions of the assets they guard, in the chain's pool (a
    run that re-executes only checks still waits for the chain)."""
    partitions = fifteen_minute_partitions(settings)
    return dg.Definitions(
        asset_checks=[
            dg.asset_check(
                asset=asset,
                name=check.__name__,
                blocking=True,
                partitions_def=partitions,
                pool=POSTERIOR_CHAIN_POOL,
                description=description,
            )(check)
            for check, (asset, description) in CHECKS.items()
        ]
    )
