"""The logged exploration data of a range, as off-policy evaluation and the Open Bandit
Pipeline export read it: per explored decision its context (the items it could choose,
with the posteriors it drew from), per exploration slot the item shown, the served
policy's propensity of it and the reward it earned.

The reward of an exploration impression is the posterior's (docs/posterior.md): the
largest weight among the outcomes that occurred within the attribution window after it,
over the largest weight, with today's settings. A slot whose impression event never
reached the warehouse has no reward and is left out (and counted).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Engine

from bandit_pipeline.settings import Settings
from bandit_pipeline.timing import SECONDS_PER_HOUR
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import sql_statement

VERSION_FORMAT = "%Y%m%dT%H%M%SZ"  # pool.snapshot_version


@dataclass(frozen=True)
class LoggedContext:
    """One explored decision: the items it could choose (snapshot order, the excluded
    ones left out) with the posteriors it drew from, and how many slots it filled."""

    decision_id: int
    surface: str
    version: str
    decided_at: datetime
    items: tuple[str, ...]
    alpha: np.ndarray
    beta: np.ndarray
    slots: int

    @property
    def as_of(self) -> datetime:
        """The window end the snapshot's posteriors are as of."""
        return datetime.strptime(self.version, VERSION_FORMAT).replace(
            tzinfo=self.decided_at.tzinfo
        )


@dataclass
class LoggedExploration:
    """The exploration impressions of a range ("units"), one array entry per unit."""

    namespace: str
    since: datetime
    until: datetime
    surface: str | None
    contexts: list[LoggedContext] = field(default_factory=list)
    context: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    slot: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    item: list[str] = field(default_factory=list)
    choice: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))  # in items
    propensity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reward: np.ndarray = field(default_factory=lambda: np.zeros(0))
    click: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    without_impression: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # decisions by status

    def __len__(self) -> int:
        return len(self.reward)


def load_logged(
    engine: Engine,
    settings: Settings,
    since: datetime,
    until: datetime,
    surface: str | None = None,
) -> LoggedExploration:
    """The logged exploration of ``[since, until)`` in ``settings.namespace`` (one surface,
    or all)."""
    namespace = settings.namespace
    params = {"namespace": namespace, "since": since, "until": until}
    with engine.connect() as connection:
        units = connection.execute(sql_statement("evaluation/logged_units"), params).all()
        outcomes = connection.execute(
            sql_statement("evaluation/logged_outcomes"),
            {**params, "attribution_seconds": settings.attribution_window_hours * SECONDS_PER_HOUR},
        ).all()
        snapshot_rows = connection.execute(
            sql_statement("evaluation/decision_snapshots"), params
        ).all()
        statuses = connection.execute(sql_statement("evaluation/range_statuses"), params).all()
    logged = LoggedExploration(namespace, since, until, surface)
    for row in statuses:
        if surface is None or row.surface == surface:
            logged.statuses[row.status] += int(row.decisions)

    snapshots: dict[tuple[str, str], list] = defaultdict(list)
    for row in snapshot_rows:
        snapshots[row.surface, row.version].append(row)
    kinds: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for row in outcomes:
        events = kinds[row.surface, row.request_id, row.item_id]
        if row.event_type is not None:
            events.add(row.event_type)
    weights, top = settings.reward_weights, settings.max_reward_weight

    decisions: dict[int, list] = defaultdict(list)
    for row in units:
        if surface is None or row.surface == surface:
            decisions[row.decision_id].append(row)
    context, rank, slot, choice, propensity, reward, click = [], [], [], [], [], [], []
    for decision_id, rows in decisions.items():
        first = rows[0]
        stored = snapshots.get((first.surface, first.snapshot_version))
        if not stored:
            continue
        skipped = {*json.loads(first.skipped_recent), *json.loads(first.skipped_shown)}
        keep = [r for r in stored if r.item_id not in skipped]
        items = tuple(r.item_id for r in keep)
        position = {item: i for i, item in enumerate(items)}
        if len(items) != first.eligible or any(r.item_id not in position for r in rows):
            continue
        index = len(logged.contexts)
        logged.contexts.append(
            LoggedContext(
                decision_id=decision_id,
                surface=first.surface,
                version=first.snapshot_version,
                decided_at=aware_timestamp(first.decided_at),
                items=items,
                alpha=np.array([r.alpha for r in keep]),
                beta=np.array([r.beta for r in keep]),
                slots=len(rows),
            )
        )
        for row in rows:
            events = kinds.get((row.surface, row.request_id, row.item_id))
            if events is None:
                logged.without_impression += 1
                continue
            context.append(index)
            rank.append(row.rank)
            slot.append(row.slot)
            logged.item.append(row.item_id)
            choice.append(position[row.item_id])
            propensity.append(row.propensity)
            reward.append(max((weights[e] for e in events), default=0.0) / top)
            click.append("click" in events)
    logged.context = np.array(context, dtype=np.intp)
    logged.rank = np.array(rank, dtype=np.intp)
    logged.slot = np.array(slot, dtype=np.intp)
    logged.choice = np.array(choice, dtype=np.intp)
    logged.propensity = np.array(propensity, dtype=float)
    logged.reward = np.array(reward, dtype=float)
    logged.click = np.array(click, dtype=bool)
    return logged
