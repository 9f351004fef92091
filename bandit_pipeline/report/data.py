"""What the report reads from the warehouse over its range, as plain dataclasses.

Every query is a file under ``sql/reports/`` and runs on SQLite and PostgreSQL alike;
this module only binds the range and turns driver values (SQLite text timestamps,
PostgreSQL decimals) into Python numbers and aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from bandit_pipeline.monitoring.readout import assignment_users
from bandit_pipeline.report.stats import Totals
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import sql_statement

ITEMS_PER_SURFACE = 3  # the most-explored items whose posteriors the report draws


@dataclass(frozen=True)
class WindowExploration:
    window_start: datetime
    surface: str
    explore_impressions: int
    explore_clicks: float
    explore_reward_sum: float
    baseline_impressions: int
    baseline_clicks: float
    baseline_reward_sum: float


@dataclass(frozen=True)
class GroupTotals:
    surface: str
    experiment: str  # '' outside an experiment
    variant: str  # '' outside an experiment
    explore: bool
    totals: Totals


@dataclass(frozen=True)
class PosteriorPoint:
    surface: str
    item_id: str
    as_of: datetime
    alpha: float
    beta: float


@dataclass(frozen=True)
class AlertEpisode:
    alert_id: int
    kind: str
    surface: str
    opened_at: datetime
    resolved_at: datetime | None
    explore_impressions: int
    explore_ctr: float | None
    baseline_ctr: float | None


@dataclass(frozen=True)
class KillSwitchEvent:
    surface: str
    action: str  # trip or reset
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class SurfacePrior:
    """The empirical prior of a surface at the newest run of the range that recorded one."""

    surface: str
    as_of: datetime
    alpha: float
    beta: float
    method: str
    items: int
    max_strength: float
    min_evidence: float


@dataclass
class WarehouseData:
    """Everything the report takes from the warehouse for one namespace and range."""

    namespace: str
    since: datetime
    until: datetime
    windows: list[WindowExploration] = field(default_factory=list)
    groups: list[GroupTotals] = field(default_factory=list)
    holdouts: dict[str, float] = field(default_factory=dict)
    most_explored: list[tuple[str, str, int]] = field(default_factory=list)
    posteriors: list[PosteriorPoint] = field(default_factory=list)
    alerts: list[AlertEpisode] = field(default_factory=list)
    killswitch_events: list[KillSwitchEvent] = field(default_factory=list)
    priors: list[SurfacePrior] = field(default_factory=list)
    # (surface, experiment) -> (control users, treatment users), for the SRM check.
    assignment_users: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


def read_warehouse(
    engine: Engine,
    namespace: str,
    since: datetime,
    until: datetime,
    items_per_surface: int = ITEMS_PER_SURFACE,
) -> WarehouseData:
    """Run the report's queries, in one connection."""
    bind = {"namespace": namespace, "since": since, "until": until}
    top = {**bind, "per_surface": items_per_surface}
    data = WarehouseData(namespace, since, until)
    with engine.connect() as connection:
        run = connection.execute
        data.windows = [
            WindowExploration(
                aware_timestamp(r.window_start),
                r.surface,
                int(r.explore_impressions),
                float(r.explore_clicks),
                float(r.explore_reward_sum),
                int(r.baseline_impressions),
                float(r.baseline_clicks),
                float(r.baseline_reward_sum),
            )
            for r in run(sql_statement("reports/window_exploration"), bind)
        ]
        data.groups = [
            GroupTotals(
                r.surface,
                r.experiment,
                r.variant,
                bool(r.explore),
                Totals(
                    int(r.impressions),
                    int(r.clicked),
                    int(r.carted),
                    int(r.purchased),
                    float(r.reward_sum),
                    float(r.reward_sq_sum),
                ),
            )
            for r in run(sql_statement("reports/range_totals"), bind)
        ]
        data.holdouts = {
            r.experiment: float(r.holdout_percent)
            for r in run(sql_statement("reports/experiments"))
        }
        data.most_explored = [
            (r.surface, r.item_id, int(r.impressions))
            for r in run(sql_statement("reports/most_explored"), top)
        ]
        data.posteriors = [
            PosteriorPoint(
                r.surface, r.item_id, aware_timestamp(r.as_of), float(r.alpha), float(r.beta)
            )
            for r in run(sql_statement("reports/posterior_history"), top)
        ]
        data.alerts = [
            AlertEpisode(
                int(r.alert_id),
                r.kind,
                r.surface,
                aware_timestamp(r.opened_at),
                None if r.resolved_at is None else aware_timestamp(r.resolved_at),
                int(r.explore_impressions),
                _float(r.explore_ctr),
                _float(r.baseline_ctr),
            )
            for r in run(sql_statement("reports/alerts"), bind)
        ]
        data.killswitch_events = [
            KillSwitchEvent(r.surface, r.action, r.reason, r.actor, aware_timestamp(r.at))
            for r in run(sql_statement("reports/killswitch_events"), bind)
        ]
        data.assignment_users = {
            (surface, experiment): pair
            for (_, surface, experiment), pair in assignment_users(
                connection, namespace, since, until
            ).items()
        }
        data.priors = [
            SurfacePrior(
                r.surface,
                aware_timestamp(r.as_of),
                float(r.alpha),
                float(r.beta),
                r.method,
                int(r.items),
                float(r.max_strength),
                float(r.min_evidence),
            )
            for r in run(sql_statement("reports/priors"), bind)
        ]
    return data


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
