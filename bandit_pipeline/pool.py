"""The exploration candidate pool and its publication to the online store.

The pool of a window is built in the warehouse (``sql/pool/``) from the catalog and the
posteriors as of the window's end. It serves the present: a window older than the newest
stored pool is skipped (a backfill of history does not rebuild or republish old pools),
and only the newest few pools are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from bandit_pipeline.empirical_prior import prior_in_effect
from bandit_pipeline.online_store import OnlineStore, Snapshot
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import sql_file, sql_statement

KEEP_POOLS = 8  # two hours of 15-minute windows, for analysts and debugging


@dataclass(frozen=True)
class PoolParameters:
    """Which items may be explored, per surface (defaults: ``settings.pool_parameters()``)."""

    surfaces: tuple[str, ...]
    min_freshness: float
    min_availability: float
    max_price_ratio: float
    graduation_impressions: float


@dataclass
class PoolResult:
    as_of: datetime
    skipped: bool = False
    eligible: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)


def build_candidate_pool(
    engine: Engine,
    as_of: datetime,
    namespace: str,
    pool: PoolParameters,
    posterior: PosteriorParameters,
) -> PoolResult:
    """Store the eligible candidates of each surface as of ``as_of``; count exclusions."""
    result = PoolResult(as_of)
    with engine.begin() as connection:
        newest = connection.execute(sql_statement("pool/newest_pool")).scalar()
        if newest is not None and aware_timestamp(newest) > as_of:
            result.skipped = True
            return result
        for surface in pool.surfaces:
            alpha0, beta0 = prior_in_effect(connection, as_of, namespace, surface, posterior)
            params = {
                "as_of": as_of,
                "as_of_epoch": as_of.timestamp(),
                "namespace": namespace,
                "surface": surface,
                "base_alpha": posterior.prior_alpha,
                "base_beta": posterior.prior_beta,
                "prior_alpha": alpha0,
                "prior_beta": beta0,
                "half_life_seconds": posterior.half_life_seconds,
                "min_freshness": pool.min_freshness,
                "min_availability": pool.min_availability,
                "max_price_ratio": pool.max_price_ratio,
                "graduation_impressions": pool.graduation_impressions,
            }
            connection.execute(sql_statement("pool/delete_pool"), params)
            for statement in sql_file("pool/stage_candidates").clauses():
                connection.execute(statement, params)
            connection.execute(sql_statement("pool/insert_pool"), params)
            counts = dict(connection.execute(sql_statement("pool/exclusions")).all())
            result.eligible[surface] = int(counts.pop(None, 0))
            result.excluded[surface] = {reason: int(n) for reason, n in counts.items()}
        connection.execute(sql_statement("pool/prune_pools"), {"keep": KEEP_POOLS})
    return result


def snapshot_version(as_of: datetime) -> str:
    """Versions sort by time: a publish never replaces a newer snapshot."""
    return as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def publish_pools(
    engine: Engine,
    store: OnlineStore,
    as_of: datetime,
    namespace: str,
    surfaces: tuple[str, ...],
    published_at: datetime | None = None,
) -> dict[str, int | None]:
    """Publish each surface's pool as of ``as_of``; per surface the items published, or
    None when a newer pool or snapshot exists (nothing is published then)."""
    version = snapshot_version(as_of)
    published: dict[str, int | None] = {}
    snapshots: list[Snapshot] = []
    with engine.connect() as connection:
        newest = connection.execute(sql_statement("pool/newest_pool")).scalar()
        if newest is not None and aware_timestamp(newest) > as_of:
            # A rerun of an older window: its pool was superseded (maybe pruned).
            return dict.fromkeys(surfaces)
        for surface in surfaces:
            if is_newer(store.current_version(namespace, surface), version):
                published[surface] = None
                continue
            snapshot = pool_snapshot(connection, as_of, namespace, surface, published_at)
            snapshots.append(snapshot)
            published[surface] = len(snapshot)
    publish_snapshots(engine, store, snapshots)
    return published


def is_newer(current: str | None, version: str) -> bool:
    """Whether the store's ``current`` version is newer than ``version``: a publish never
    replaces a newer snapshot."""
    return current is not None and current > version


def pool_snapshot(
    connection: Connection,
    as_of: datetime,
    namespace: str,
    surface: str,
    published_at: datetime | None = None,
) -> Snapshot:
    """The snapshot of a surface's stored pool as of ``as_of`` (empty when none is stored)."""
    rows = connection.execute(
        sql_statement("pool/read_pool"),
        {"as_of": as_of, "namespace": namespace, "surface": surface},
    ).all()
    return snapshot_of(rows, as_of, namespace, surface, published_at)


def snapshot_of(
    rows: Sequence[Sequence[Any]],
    as_of: datetime,
    namespace: str,
    surface: str,
    published_at: datetime | None = None,
) -> Snapshot:
    """A snapshot of pool rows (item_id, alpha, beta) as ``pool/read_pool`` reads them."""
    return Snapshot(
        namespace=namespace,
        surface=surface,
        version=snapshot_version(as_of),
        published_at=published_at or datetime.now(UTC),
        as_of=as_of,
        item_ids=tuple(row[0] for row in rows),
        alpha=np.fromiter((row[1] for row in rows), float, len(rows)),
        beta=np.fromiter((row[2] for row in rows), float, len(rows)),
    )


def publish_snapshots(
    engine: Engine, store: OnlineStore, snapshots: Sequence[Snapshot], *, unless_newer: bool = False
) -> list[Snapshot]:
    """Write the snapshots to the store and record them in ``bandit_publications``, in
    one warehouse transaction: the record never names a snapshot the store did not get,
    so an emptied store can be restored from it (``store_record.restore``). With
    ``unless_newer`` (the restore, which may meet a publish) the store writes each only
    where it holds no newer version, deciding in one step, and only those written are
    recorded. Returns the snapshots written."""
    if not snapshots:
        return []
    with engine.begin() as connection:
        if unless_newer:
            done = store.publish_unless_newer(snapshots)
            written = [s for s, published in zip(snapshots, done, strict=True) if published]
        else:
            written = list(snapshots)
        for snapshot in written:
            connection.execute(
                sql_statement("pool/record_publication"),
                {
                    "namespace": snapshot.namespace,
                    "surface": snapshot.surface,
                    "version": snapshot.version,
                    "as_of": snapshot.as_of,
                    "items": len(snapshot),
                    "published_at": snapshot.published_at,
                },
            )
        if not unless_newer:
            store.publish_many(snapshots)
    return written
