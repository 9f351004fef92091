"""The candidate pool, built in the warehouse for the newest window of a run, and its
publication to the online store."""

import dagster as dg

from bandit_pipeline.defs.failures import explain_failures
from bandit_pipeline.defs.partitions import (
    POSTERIOR_CHAIN_POOL,
    fifteen_minute_partitions,
    window_end,
)
from bandit_pipeline.defs.posteriors import EXPLORATION_GROUP
from bandit_pipeline.defs.resources import (
    CandidatePoolResource,
    OnlineStoreResource,
    WarehouseResource,
    online_store_kind,
    warehouse_kind,
)
from bandit_pipeline.defs.restore import restore_store
from bandit_pipeline.pool import build_candidate_pool, publish_pools
from bandit_pipeline.run_metadata import pool_metadata, publish_metadata
from bandit_pipeline.settings import Settings
from bandit_pipeline.spark_pool import build_candidate_pool_spark, publish_pools_spark


@explain_failures
def explore_candidate_pool(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
) -> dg.MaterializeResult:
    """Built for the newest window of the run only: the pool serves the present."""
    as_of = window_end(max(context.partition_keys))
    build = build_candidate_pool_spark if warehouse.is_spark else build_candidate_pool
    result = build(
        warehouse.target(), as_of, candidate_pool.namespace, candidate_pool.parameters,
        warehouse.parameters,
    )  # fmt: skip
    return dg.MaterializeResult(metadata=pool_metadata(result))


@explain_failures
def online_posteriors(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
) -> dg.MaterializeResult:
    as_of = window_end(max(context.partition_keys))
    publish = publish_pools_spark if warehouse.is_spark else publish_pools
    store = online_store.open()
    try:
        published = publish(
            warehouse.target(), store, as_of, candidate_pool.namespace,
            candidate_pool.parameters.surfaces,
        )  # fmt: skip
    finally:
        store.close()
    # An emptied store gets its flags and kill switches back with this publish, without
    # waiting for the restore sensor's next tick (a few reads when nothing was lost).
    restored = restore_store(warehouse, candidate_pool, online_store)
    if restored.restored or restored.unavailable:
        context.log.warning("online store restored: %s", restored.summary())
    return dg.MaterializeResult(metadata=publish_metadata(as_of, published, restored))


def publishing_definitions(settings: Settings) -> dg.Definitions:
    """The catalog (loaded outside Dagster), the pool and the published snapshots."""
    partitions = fifteen_minute_partitions(settings)
    item_catalog = dg.AssetSpec(
        "item_catalog",
        description="The item catalog (loaded by `bandit-pipeline catalog load`).",
        group_name=EXPLORATION_GROUP,
        kinds={warehouse_kind(settings)},
    )
    pool = dg.asset(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POSTERIOR_CHAIN_POOL,
        # reward_aggregates too: its blocking checks then gate the pool and the publish.
        deps=["bandit_posteriors", "reward_aggregates", item_catalog],
        group_name=EXPLORATION_GROUP,
        kinds={warehouse_kind(settings)},
        description="Fresh, available, sanely priced items that have not yet graduated, per "
        "surface, with their posteriors (table bandit_candidate_pool; newest windows only).",
    )(explore_candidate_pool)
    published = dg.asset(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POSTERIOR_CHAIN_POOL,
        deps=[pool],
        group_name=EXPLORATION_GROUP,
        kinds={online_store_kind(settings)},
        description="The candidate pool and its posteriors published to the online store, "
        "one atomic snapshot per surface, versioned by the window's end.",
    )(online_posteriors)
    return dg.Definitions(assets=[item_catalog, pool, published])
