"""The automatic kill switch (docs/monitoring.md).

It trips a surface when the exploration reward per impression over the last hour falls
below a threshold: relative (a share of the baseline slots' reward per impression) or
absolute, once the hour has at least ``min_explore_impressions`` explore impressions.
Tripping writes the state to the online store (serving stops exploring within one
snapshot refresh) and a row to ``bandit_killswitch_events``.

Policy: a tripped switch stays tripped until someone resets it deliberately
(``bandit-pipeline killswitch reset`` or the ``killswitch_reset`` Dagster job); it never
re-arms by itself, because a surface that stopped exploring produces no evidence that it
would now do better.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bandit_pipeline.monitoring.hour import HourFigures, last_hour
from bandit_pipeline.online_store import KillSwitchState, OnlineStore
from bandit_pipeline.warehouse.sql import query_rows, sql_statement

if TYPE_CHECKING:
    from bandit_pipeline.warehouse.spark import SparkWarehouse


@dataclass(frozen=True)
class KillSwitchPolicy:
    """When the kill switch trips (from ``Settings.killswitch_policy()``)."""

    mode: str  # "relative" or "absolute"
    threshold: float
    min_explore_impressions: int


@dataclass(frozen=True)
class KillSwitchChange:
    surface: str
    action: str  # trip or reset
    reason: str
    figures: dict


def breach(hour: HourFigures, policy: KillSwitchPolicy) -> str | None:
    """Why the hour breaches the policy, or None."""
    if hour.explore_impressions < policy.min_explore_impressions:
        return None
    explore = hour.explore_reward_per_impression or 0.0
    if policy.mode == "absolute":
        if explore < policy.threshold:
            return f"explore reward per impression {explore:.4f} below {policy.threshold:g}"
        return None
    baseline = hour.baseline_reward_per_impression
    if baseline is None or baseline <= 0:
        return None  # nothing to compare against
    if explore < policy.threshold * baseline:
        return (
            f"explore reward per impression {explore:.4f} below {policy.threshold:g} x "
            f"baseline {baseline:.4f}"
        )
    return None


def evaluate_killswitch(
    engine: Engine | SparkWarehouse,
    store: OnlineStore,
    namespace: str,
    as_of: datetime,
    policy: KillSwitchPolicy,
) -> list[KillSwitchChange]:
    """Trip every surface whose last hour breaches the policy and is not tripped yet."""
    changes = []
    for surface, hour in sorted(last_hour(engine, namespace, as_of).items()):
        reason = breach(hour, policy)
        if reason is None:
            continue
        state = store.killswitch(namespace, surface)
        if state is not None and state.tripped:
            continue
        figures = {"as_of": as_of.isoformat(), **hour.as_dict()}
        _set(engine, store, namespace, surface, "trip", reason, figures, "killswitch_sensor", as_of)
        changes.append(KillSwitchChange(surface, "trip", reason, figures))
    return changes


def reset_killswitch(
    engine: Engine | SparkWarehouse,
    store: OnlineStore,
    namespace: str,
    surface: str,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> KillSwitchChange:
    """Re-arm exploration on a surface, deliberately, recording who and why."""
    now = now or datetime.now(UTC)
    _set(engine, store, namespace, surface, "reset", reason, {}, actor, now)
    return KillSwitchChange(surface, "reset", reason, {})


def _set(
    engine: Engine | SparkWarehouse,
    store: OnlineStore,
    namespace: str,
    surface: str,
    action: str,
    reason: str,
    figures: dict,
    actor: str,
    at: datetime,
) -> None:
    event = {
        "namespace": namespace,
        "surface": surface,
        "action": action,
        "reason": reason,
        "figures": json.dumps(figures),
        "actor": actor,
        "as_of": at,
    }
    state = KillSwitchState(action == "trip", reason, at, actor)
    if not isinstance(engine, Engine):
        # No transaction over the lake and the store: the store first, so the history
        # never shows a trip the store did not get (a crash in between leaves it unrecorded).
        store.set_killswitch(namespace, surface, state)
        engine.execute("killswitch/record_event", event)
        return
    # Store and record in one warehouse transaction: if the store write fails the event
    # is rolled back, so the history never shows a trip the store did not get.
    with engine.begin() as connection:
        connection.execute(sql_statement("killswitch/record_event"), event)
        store.set_killswitch(namespace, surface, state)


def killswitch_events(engine: Engine | SparkWarehouse, namespace: str, limit: int = 20) -> list:
    return query_rows(engine, "killswitch/events", {"namespace": namespace, "limit": limit})
