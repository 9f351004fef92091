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
    result = build_candidate_pool(
        warehouse.engine(), as_of, candidate_pool.namespace, candidate_pool.parameters,
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
    store = online_store.open()
    try:
        published = publish_pools(
            warehouse.engine(), store, as_of, candidate_pool.namespace,
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


@explain_failures
def spark_candidate_pool(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
) -> dg.MaterializeResult:
    """The same on the Spark warehouse (docs/spark.md)."""
    as_of = window_end(max(context.partition_keys))
    result = build_candidate_pool_spark(
        warehouse.lake(), as_of, candidate_pool.namespace, candidate_pool.parameters,
        warehouse.parameters,
    )  # fmt: skip
    return dg.MaterializeResult(metadata=pool_metadata(result))


@explain_failures
def spark_online_posteriors(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
) -> dg.MaterializeResult:
    """The same on the Spark warehouse (docs/spark.md)."""
    as_of = window_end(max(context.partition_keys))
    store = online_store.open()
    try:
        published = publish_pools_spark(
            warehouse.lake(), store, as_of, candidate_pool.namespace,
            candidate_pool.parameters.surfaces,
        )  # fmt: skip
    finally:
        store.close()
    restored = restore_store(warehouse, candidate_pool, online_store)
    if restored.restored or restored.unavailable:
        context.log.warning("online store restored: %s", restored.summary())
    return dg.MaterializeResult(metadata=publish_metadata(as_of, published, restored))


def publishing_definitions(settings: Settings) -> dg.Definitions:
    """The catalog (loaded outside Dagster), the pool and the published snapshots."""
    partitions = fifteen_minute_partitions(settings)
    spark = settings.warehouse_engine == "spark"
    item_catalog = dg.AssetSpec(
        "item_catalog",
        description="The item catalog (loaded by `bandit-pipeline catalog load`).",
        group_name=EXPLORATION_GROUP,
        kinds={warehouse_kind(settings)},
    )
    pool = dg.asset(
        name="explore_candidate_pool",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POSTERIOR_CHAIN_POOL,
        # reward_aggregates too: its blocking checks then gate the pool and the publish.
        deps=["bandit_posteriors", "reward_aggregates", item_catalog],
        group_name=EXPLORATION_GROUP,
        kinds={warehouse_kind(settings)},
        description="Fresh, available, sanely priced items that have not yet graduated, per "
        "surface, with their posteriors (table bandit_candidate_pool; newest windows only).",
    )(spark_candidate_pool if spark else explore_candidate_pool)
    published = dg.asset(
        name="online_posteriors",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POSTERIOR_CHAIN_POOL,
        deps=[pool],
        group_name=EXPLORATION_GROUP,
        kinds={online_store_kind(settings)},
        description="The candidate pool and its posteriors published to the online store, "
        "one atomic snapshot per surface, versioned by the window's end.",
    )(spark_online_posteriors if spark else online_posteriors)
    return dg.Definitions(assets=[item_catalog, pool, published])
