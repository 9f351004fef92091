"""The candidate pool and its publication on the Spark warehouse (docs/spark.md): the same
pool as ``pool.build_candidate_pool`` from the lake's catalog and posteriors, stored in
``bandit_candidate_pool`` (one partition per window and surface), published to the online
store and recorded in ``bandit_publications``.

The prior in effect is the fixed prior of the settings (no empirical prior on Spark).
Without a transaction over the store and the lake, a snapshot is recorded after the
store took it: a crash in between leaves a published snapshot unrecorded, never a record
of one the store did not get.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bandit_pipeline.online_store import OnlineStore, Snapshot
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.pool import (
    KEEP_POOLS,
    PoolParameters,
    PoolResult,
    is_newer,
    snapshot_of,
    snapshot_version,
)
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.spark import SparkWarehouse

__all__ = ["build_candidate_pool_spark", "publish_pools_spark", "publish_snapshots_spark"]

CANDIDATES = "bandit_pool_candidates"
POOL_TABLE = "bandit_candidate_pool"


def build_candidate_pool_spark(
    warehouse: SparkWarehouse,
    as_of: datetime,
    namespace: str,
    pool: PoolParameters,
    posterior: PosteriorParameters,
) -> PoolResult:
    """Store the eligible candidates of each surface as of ``as_of``; count exclusions. A
    window older than the newest stored pool is skipped, as on the other engines."""
    result = PoolResult(as_of)
    with warehouse.lock:
        warehouse.execute("posteriors/refresh_tables")
        if _newer_pool_than(warehouse, as_of):
            result.skipped = True
            return result
        try:
            for surface in pool.surfaces:
                params = {
                    "as_of": as_of,
                    "as_of_epoch": as_of.timestamp(),
                    "namespace": namespace,
                    "surface": surface,
                    "base_alpha": posterior.prior_alpha,
                    "base_beta": posterior.prior_beta,
                    "prior_alpha": posterior.prior_alpha,
                    "prior_beta": posterior.prior_beta,
                    "half_life_seconds": posterior.half_life_seconds,
                    "min_freshness": pool.min_freshness,
                    "min_availability": pool.min_availability,
                    "max_price_ratio": pool.max_price_ratio,
                    "graduation_impressions": pool.graduation_impressions,
                }
                warehouse.stage("pool/stage_candidates", CANDIDATES, params)
                warehouse.execute("pool/insert_pool", params)
                counts = {r[0]: int(r[1]) for r in warehouse.rows("pool/exclusions")}
                result.eligible[surface] = counts.pop(None, 0)
                result.excluded[surface] = counts
        finally:
            warehouse.release(CANDIDATES)
        _prune_pools(warehouse, KEEP_POOLS)
    return result


def publish_pools_spark(
    warehouse: SparkWarehouse,
    store: OnlineStore,
    as_of: datetime,
    namespace: str,
    surfaces: Sequence[str],
    published_at: datetime | None = None,
) -> dict[str, int | None]:
    """Publish each surface's stored pool as of ``as_of``; per surface the items
    published, or None when a newer pool or snapshot exists (nothing is published then)."""
    version = snapshot_version(as_of)
    with warehouse.lock:
        warehouse.execute("posteriors/refresh_tables")
        if _newer_pool_than(warehouse, as_of):
            return dict.fromkeys(surfaces)
        published: dict[str, int | None] = {}
        snapshots = []
        for surface in surfaces:
            if is_newer(store.current_version(namespace, surface), version):
                published[surface] = None
                continue
            rows = warehouse.rows(
                "pool/read_pool", {"as_of": as_of, "namespace": namespace, "surface": surface}
            )
            snapshot = snapshot_of(rows, as_of, namespace, surface, published_at)
            snapshots.append(snapshot)
            published[surface] = len(snapshot)
        publish_snapshots_spark(warehouse, store, snapshots)
    return published


def publish_snapshots_spark(
    warehouse: SparkWarehouse,
    store: OnlineStore,
    snapshots: Sequence[Snapshot],
    *,
    unless_newer: bool = False,
) -> list[Snapshot]:
    """Write the snapshots to the store, then record those written in
    ``bandit_publications`` (``pool.publish_snapshots`` on the other engines; with
    ``unless_newer``, the restore's conditional write). Returns the snapshots written."""
    if not snapshots:
        return []
    if unless_newer:
        done = store.publish_unless_newer(snapshots)
        written = [s for s, published in zip(snapshots, done, strict=True) if published]
    else:
        store.publish_many(snapshots)
        written = list(snapshots)
    for snapshot in written:
        warehouse.execute(
            "pool/record_publication",
            {
                "namespace": snapshot.namespace,
                "surface": snapshot.surface,
                "version": snapshot.version,
                "as_of": snapshot.as_of,
                "items": len(snapshot),
                "published_at": snapshot.published_at.astimezone(UTC),
            },
        )
    return written


def _newer_pool_than(warehouse: SparkWarehouse, as_of: datetime) -> bool:
    newest = warehouse.scalar("pool/newest_pool")
    return newest is not None and aware_timestamp(newest) > as_of


def _prune_pools(warehouse: SparkWarehouse, keep: int) -> None:
    """Keep the pools of the newest ``keep`` windows: remove the folders of older ones
    (their names, ``as_of=2026-11-20 12%3A15%3A00``, sort by time)."""
    jvm = warehouse.spark.sparkContext._jvm
    hadoop = warehouse.spark.sparkContext._jsc.hadoopConfiguration()
    root = jvm.org.apache.hadoop.fs.Path(f"{warehouse.location}/{POOL_TABLE}")
    fs = root.getFileSystem(hadoop)
    if not fs.exists(root):
        return
    windows = sorted(
        (status.getPath() for status in fs.listStatus(root) if status.isDirectory()),
        key=lambda path: path.getName(),
    )
    windows = [path for path in windows if path.getName().startswith("as_of=")]
    for path in windows[:-keep]:
        fs.delete(path, True)
    if len(windows) > keep:
        warehouse.execute("posteriors/refresh_tables")
