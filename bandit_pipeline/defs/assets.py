"""Assets of the 15-minute posterior job.

Partitioned assets receive a range of partitions in one run (single-run backfill
policy) and compute it window by window in order, so each window continues from the one
before. State lives in warehouse tables, never in an IO manager.
"""

from collections.abc import Iterator

import dagster as dg

from bandit_pipeline.defs.partitions import fifteen_minute_partitions, window_end
from bandit_pipeline.defs.resources import (
    CandidatePoolResource,
    OnlineStoreResource,
    WarehouseResource,
)
from bandit_pipeline.pool import build_candidate_pool, publish_pools
from bandit_pipeline.run_metadata import (
    aggregates_metadata,
    pool_metadata,
    posteriors_metadata,
    publish_metadata,
)
from bandit_pipeline.window_update import materialise_window

GROUP = "bandit_posteriors"

bandit_rewards = dg.AssetSpec(
    "bandit_rewards",
    description="Telemetry events, one row per event (loaded by `bandit-pipeline ingest`).",
    group_name=GROUP,
    kinds={"sql"},
)
item_catalog = dg.AssetSpec(
    "item_catalog",
    description="The item catalog (loaded by `bandit-pipeline catalog load`).",
    group_name=GROUP,
    kinds={"sql"},
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "reward_aggregates",
            deps=[bandit_rewards],
            group_name=GROUP,
            kinds={"sql"},
            description="Per window, namespace, surface and item: new impressions, outcomes "
            "and the decayed evidence the window adds (table bandit_reward_aggregates).",
        ),
        dg.AssetSpec(
            "bandit_posteriors",
            deps=["reward_aggregates"],
            group_name=GROUP,
            kinds={"sql"},
            description="Beta posteriors (alpha, beta) as of each window's end for the items "
            "whose evidence changed (table bandit_posteriors; view bandit_posteriors_latest).",
        ),
    ],
    partitions_def=fifteen_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def posterior_update(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """Both tables of each window in one transaction, window by window in time order."""
    engine, params = warehouse.engine(), warehouse.parameters
    results = []
    for key in sorted(context.partition_keys):
        result = materialise_window(
            engine, window_end(key), params, future_scan=warehouse.future_scan
        )
        context.log.info("window %s: %s", key, result.metadata())
        results.append(result)
    yield dg.MaterializeResult(asset_key="reward_aggregates", metadata=aggregates_metadata(results))
    yield dg.MaterializeResult(asset_key="bandit_posteriors", metadata=posteriors_metadata(results))


@dg.asset(
    partitions_def=fifteen_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # reward_aggregates too: its blocking checks then gate the pool and the publish.
    deps=["bandit_posteriors", "reward_aggregates", item_catalog],
    group_name=GROUP,
    kinds={"sql"},
    description="Fresh, available, sanely priced items that have not yet graduated, per "
    "surface, with their posteriors (table bandit_candidate_pool; newest windows only).",
)
def explore_candidate_pool(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
) -> dg.MaterializeResult:
    """Built for the newest window of the run only: the pool serves the present."""
    as_of = window_end(max(context.partition_keys))
    result = build_candidate_pool(
        warehouse.engine(), as_of, candidate_pool.namespace, candidate_pool.parameters,
        warehouse.parameters,
    )  # fmt: skip
    return dg.MaterializeResult(metadata=pool_metadata(result))


@dg.asset(
    partitions_def=fifteen_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[explore_candidate_pool],
    group_name=GROUP,
    kinds={"redis"},
    description="The candidate pool and its posteriors published to the online store, one "
    "atomic snapshot per surface, versioned by the window's end.",
)
def online_posteriors(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
) -> dg.MaterializeResult:
    as_of = window_end(max(context.partition_keys))
    store = online_store.open()
    try:
        published = publish_pools(
            warehouse.engine(), store, as_of, candidate_pool.namespace,
            candidate_pool.parameters.surfaces,
        )  # fmt: skip
    finally:
        store.close()
    return dg.MaterializeResult(metadata=publish_metadata(as_of, published))
