"""The warehouse's record of what the online store holds, and the restore of an emptied
store from it.

The online store is a cache the product can rebuild: every snapshot written to it is
recorded in ``bandit_publications`` (its pool stays in ``bandit_candidate_pool``), every
flag set or unset through the product in ``bandit_flag_events``, every kill-switch trip
and reset in ``bandit_killswitch_events``. Each record is written in the warehouse
transaction that writes the store, so the record never names a value the store did not
get (on Spark, without such a transaction, right after the store's write).

How an emptied store is told apart: per namespace, the restore writes a marker into the
store once it has seeded it from the record. The marker lives and dies with the store's
other keys, so a store without it is one that is new or has lost its data since (a
Redis restarted without persistence, a fresh replica, another URL); a publish in the
meantime does not hide the loss, since publishing does not write the marker. A surface
whose recorded snapshot is missing from the store also counts as a loss (keys dropped
one by one, an eviction).

What the restore writes, never over something newer: per surface the newest recorded
snapshot where the store holds none or an older version (the publish rule); on an
emptied store, each recorded flag and kill-switch state the store does not hold (one the
store holds was written since the loss, through the product or by hand). Each of these
writes is conditional in the store itself, check and write in one step (a Redis script
or HSETNX, one SQLite transaction), so a value written by someone else while the restore
runs, after it looked, is never overwritten. It is idempotent: once the marker is back
and the snapshots are current, it only reads.

What it cannot tell from an empty slot: a flag *unset* (``flags unset``) in the moment
between the restore's read of the record and its write comes back with its recorded
value, until it is unset again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bandit_pipeline.online_store import KillSwitchState, OnlineStore, Snapshot
from bandit_pipeline.pool import is_newer, pool_snapshot, publish_snapshots, snapshot_of
from bandit_pipeline.spark_pool import publish_snapshots_spark
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import query_rows, sql_statement

if TYPE_CHECKING:
    from bandit_pipeline.warehouse.spark import SparkWarehouse


def set_flag(
    engine: Engine | SparkWarehouse,
    store: OnlineStore,
    namespace: str,
    name: str,
    value: str | None,
    actor: str,
    now: datetime | None = None,
) -> None:
    """Set a flag in the store (None: unset it) and record who did and when, in one
    warehouse transaction: if the store write fails the record is rolled back. On Spark,
    which has no such transaction, the store first and then the record."""
    now = now or datetime.now(UTC)
    if not isinstance(engine, Engine):
        store.set_flag(namespace, name, value)
        event = {"namespace": namespace, "name": name, "actor": actor, "at": now}
        if value is None:
            engine.execute("flags/record_unset", event)
        else:
            engine.execute("flags/record_event", {**event, "value": value})
        return
    with engine.begin() as connection:
        connection.execute(
            sql_statement("flags/record_event"),
            {"namespace": namespace, "name": name, "value": value, "actor": actor, "at": now},
        )  # fmt: skip
        store.set_flag(namespace, name, value)


def recorded_flags(engine: Engine | SparkWarehouse, namespace: str) -> dict[str, str]:
    """The namespace's flags as last set through the product (unset ones left out)."""
    rows = query_rows(engine, "flags/current", {"namespace": namespace})
    return {row.name: row.value for row in rows if row.value is not None}


def recorded_killswitches(
    engine: Engine | SparkWarehouse, namespace: str
) -> dict[str, KillSwitchState]:
    """Each surface's kill-switch state as last written (its newest trip or reset)."""
    rows = query_rows(engine, "killswitch/current", {"namespace": namespace})
    return {
        row.surface: KillSwitchState(
            row.action == "trip", row.reason, aware_timestamp(row.at), row.actor
        )
        for row in rows
    }


@dataclass
class RestoreReport:
    """What one restore found and wrote."""

    namespace: str
    emptied: bool = False  # the marker was missing, or a recorded snapshot was
    snapshots: dict[str, str] = field(default_factory=dict)  # surface -> version written
    flags: dict[str, str] = field(default_factory=dict)  # name -> value written
    killswitches: dict[str, bool] = field(default_factory=dict)  # surface -> tripped
    # surface -> why its recorded snapshot could not be written again
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def restored(self) -> bool:
        """Whether anything was written to the store."""
        return bool(self.snapshots or self.flags or self.killswitches)

    def summary(self) -> str:
        """One line for a log or a sensor tick."""
        if not (self.emptied or self.snapshots or self.unavailable):
            return f"{self.namespace}: the online store holds what the warehouse recorded"
        parts = [f"{self.namespace}: " + ("store emptied" if self.emptied else "store behind")]
        parts += [f"snapshot {s}={v}" for s, v in sorted(self.snapshots.items())]
        parts += [f"flag {n}={v}" for n, v in sorted(self.flags.items())]
        parts += [
            f"kill switch {s} {'tripped' if t else 'armed'}"
            for s, t in sorted(self.killswitches.items())
        ]
        parts += [
            f"snapshot {s} not restored: {why}" for s, why in sorted(self.unavailable.items())
        ]
        return "; ".join(parts)


def restore(
    engine: Engine | SparkWarehouse,
    store: OnlineStore,
    namespace: str,
    now: datetime | None = None,
) -> RestoreReport:
    """Bring an emptied (or behind) online store back to the warehouse's record of the
    namespace, never over anything newer; see the module docstring."""
    now = now or datetime.now(UTC)
    report = RestoreReport(namespace)
    marker = store.restore_marker(namespace)
    report.emptied = marker is None
    snapshots = []
    for row in query_rows(engine, "pool/newest_publications", {"namespace": namespace}):
        current = store.current_version(namespace, row.surface)
        report.emptied |= current is None
        if current == row.version or is_newer(current, row.version):
            continue
        snapshot = _recorded_snapshot(engine, aware_timestamp(row.as_of), namespace,
                                      row.surface, now)  # fmt: skip
        if len(snapshot) != row.items:
            # Its pool was pruned or rebuilt since: not what was published.
            report.unavailable[row.surface] = (
                f"the pool of {row.version} no longer holds its {row.items} items"
            )
            continue
        snapshots.append(snapshot)
    # Each write decides in the store, in one step, whether it may write: a snapshot, a
    # flag or a kill switch written since the reads above (by a publish, `flags set`, the
    # kill-switch sensor) is kept.
    if isinstance(engine, Engine):
        written = publish_snapshots(engine, store, snapshots, unless_newer=True)
    else:
        written = publish_snapshots_spark(engine, store, snapshots, unless_newer=True)
    report.snapshots = {s.surface: s.version for s in written}
    if report.emptied:
        for name, value in recorded_flags(engine, namespace).items():
            if store.set_flag_if_absent(namespace, name, value):
                report.flags[name] = value
        for surface, state in recorded_killswitches(engine, namespace).items():
            if store.set_killswitch_if_absent(namespace, surface, state):
                report.killswitches[surface] = state.tripped
    if marker is None:
        # Last: a restore cut short leaves no marker, and the next one goes on.
        store.set_restore_marker(namespace, now)
    return report


def _recorded_snapshot(
    engine: Engine | SparkWarehouse,
    as_of: datetime,
    namespace: str,
    surface: str,
    published_at: datetime,
) -> Snapshot:
    if isinstance(engine, Engine):
        with engine.connect() as connection:
            return pool_snapshot(connection, as_of, namespace, surface, published_at)
    rows = engine.rows(
        "pool/read_pool", {"as_of": as_of, "namespace": namespace, "surface": surface}
    )
    return snapshot_of(rows, as_of, namespace, surface, published_at)
