"""The served policy's propensity of every logged exploration choice, recorded in the
warehouse (``bandit_decision_propensities``) by ``bandit-pipeline propensities update``.

For each explored decision in ``bandit_decisions`` not yet recorded: its snapshot (the
candidates and posteriors of ``snapshot_version``) is copied from the job's candidate
pool into ``bandit_decision_snapshots`` the first time a decision needs it, since the job
keeps only two hours of pools; the decision is replayed from its seed by the rule of its
policy id, and only when the replay gives the recorded choice and scores is the
probability of each chosen item in its slot computed among the candidates the decision
could choose (``policy.propensity.SnapshotPropensities``, which shares the work between
the decisions of one snapshot). A decision that cannot be replayed gets rows with a
status saying why and no propensity, so it is not tried again. Each snapshot's
decisions are written in one transaction, so an interrupted run leaves whole groups and
the next run goes on.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from bandit_pipeline.policy.propensity import SnapshotPropensities, replay_choice
from bandit_pipeline.pool import pool_snapshot
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import sql_statement

OK = "ok"
SNAPSHOT_MISSING = "snapshot_missing"
REPLAY_MISMATCH = "replay_mismatch"
BATCH = 2_000
# A replayed score equals the recorded one to float precision; the trace's JSON keeps
# every digit, so this only absorbs the last bit.
_SCORE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class DecisionSnapshot:
    """The candidates a decision drew from, in snapshot order, with their posteriors."""

    item_ids: tuple[str, ...]
    alpha: np.ndarray
    beta: np.ndarray
    position: dict[str, int] = field(init=False, repr=False)  # item -> index
    propensities: SnapshotPropensities = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", {item: i for i, item in enumerate(self.item_ids)})
        object.__setattr__(self, "propensities", SnapshotPropensities(self.alpha, self.beta))

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass
class PropensityReport:
    """What one update did: decisions recorded by status, snapshots copied."""

    statuses: Counter[str] = field(default_factory=Counter)
    snapshots_copied: int = 0
    computed: int = 0  # propensities computed

    @property
    def decisions(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        """One line for the command."""
        parts = [f"decisions={self.decisions}", f"ok={self.statuses[OK]}"]
        parts += [f"{status}={n}" for status, n in sorted(self.statuses.items()) if status != OK]
        parts.append(f"snapshots_copied={self.snapshots_copied}")
        return " ".join(parts)


def update_propensities(
    engine: Engine,
    *,
    batch: int = BATCH,
    now: datetime | None = None,
    on_batch: Callable[[int], object] = lambda decisions: None,
) -> PropensityReport:
    """Record the propensities of every explored decision that has none yet."""
    report = PropensityReport()
    after = 0
    while True:
        with engine.connect() as connection:
            pending = connection.execute(
                sql_statement("evaluation/pending_decisions"), {"after": after, "batch": batch}
            ).all()
        if not pending:
            return report
        after = pending[-1].decision_id
        groups: dict[tuple[str, str, str | None], list[Any]] = {}
        for row in pending:
            groups.setdefault((row.namespace, row.surface, row.snapshot_version), []).append(row)
        for (namespace, surface, version), rows in groups.items():
            with engine.begin() as connection:
                snapshot = None
                if version is not None:
                    snapshot = decision_snapshot(connection, namespace, surface, version, report)
                records = [
                    record for row in rows for record in _decision_rows(row, snapshot, report)
                ]
                stamp = now or datetime.now(UTC)
                connection.execute(
                    sql_statement("evaluation/insert_propensity"),
                    [{**record, "computed_at": stamp} for record in records],
                )
        on_batch(len(pending))


def decision_snapshot(
    connection: Connection,
    namespace: str,
    surface: str,
    version: str,
    report: PropensityReport | None = None,
) -> DecisionSnapshot | None:
    """The snapshot ``version`` of a surface: the copy in ``bandit_decision_snapshots``,
    else its pool (copied now), else None when the pool is gone or no longer holds what
    was published."""
    params = {"namespace": namespace, "surface": surface, "version": version}
    rows = connection.execute(sql_statement("evaluation/snapshot"), params).all()
    if rows:
        return _snapshot(rows)
    published = connection.execute(sql_statement("evaluation/publication"), params).first()
    if published is None:
        return None
    pool = pool_snapshot(connection, aware_timestamp(published.as_of), namespace, surface)
    if len(pool) == 0 or len(pool) != published.items:
        return None
    connection.execute(
        sql_statement("evaluation/insert_snapshot_item"),
        [
            {**params, "position": i, "item_id": item, "alpha": float(a), "beta": float(b)}
            for i, (item, a, b) in enumerate(zip(pool.item_ids, pool.alpha, pool.beta, strict=True))
        ],
    )
    if report is not None:
        report.snapshots_copied += 1
    return DecisionSnapshot(pool.item_ids, np.asarray(pool.alpha), np.asarray(pool.beta))


def _snapshot(rows: Sequence[Any]) -> DecisionSnapshot:
    return DecisionSnapshot(
        tuple(row.item_id for row in rows),
        np.fromiter((row.alpha for row in rows), float, len(rows)),
        np.fromiter((row.beta for row in rows), float, len(rows)),
    )


def excluded_positions(snapshot: DecisionSnapshot, skipped: Sequence[str]) -> frozenset[int]:
    """Positions in the snapshot of the candidates a decision could not choose."""
    position = snapshot.position
    return frozenset(position[item] for item in skipped if item in position)


def _decision_rows(
    row: Any, snapshot: DecisionSnapshot | None, report: PropensityReport
) -> list[dict[str, Any]]:
    """The propensity rows of one decision (one per exploration slot)."""
    chosen = json.loads(row.chosen)
    slots = json.loads(row.explore_slots)
    status, propensities = _propensities(row, chosen, snapshot, report)
    report.statuses[status] += 1
    return [
        {
            "decision_id": row.decision_id,
            "rank": rank,
            "slot": slots[rank],
            "item_id": item,
            "propensity": None if propensities is None else propensities[rank][0],
            "error_bound": None if propensities is None else propensities[rank][1],
            "eligible": row.eligible,
            "status": status,
        }
        for rank, item in enumerate(chosen)
    ]


def _propensities(
    row: Any, chosen: list[str], snapshot: DecisionSnapshot | None, report: PropensityReport
) -> tuple[str, list[tuple[float, float]] | None]:
    if snapshot is None:
        return SNAPSHOT_MISSING, None
    skipped = [*json.loads(row.skipped_shown), *json.loads(row.skipped_recent)]
    excluded = excluded_positions(snapshot, skipped)
    k = len(chosen)
    if row.seed is None or len(snapshot) - len(excluded) != row.eligible:
        return REPLAY_MISMATCH, None
    positions, scores = replay_choice(
        row.policy_id, snapshot.alpha, snapshot.beta, int(row.seed), k, excluded
    )
    recorded = json.loads(row.scores)
    if [snapshot.item_ids[i] for i in positions] != chosen or not np.allclose(
        scores, recorded, rtol=_SCORE_TOLERANCE, atol=0.0
    ):
        return REPLAY_MISMATCH, None
    out = []
    for rank, position in enumerate(positions):
        result = snapshot.propensities.slot_propensities(position, excluded, k)
        report.computed += 1
        out.append((result.probabilities[rank], result.error_bounds[rank]))
    return OK, out
