"""The figures of the last hour per surface, read from ``bandit_explore_metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bandit_pipeline.timing import HOUR
from bandit_pipeline.warehouse.sql import query_rows

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bandit_pipeline.warehouse.spark import SparkWarehouse


@dataclass
class HourFigures:
    surface: str
    explore_impressions: int = 0
    explore_clicks: float = 0.0
    explore_reward: float = 0.0
    baseline_impressions: int = 0
    baseline_clicks: float = 0.0
    baseline_reward: float = 0.0
    # (explore CTR, baseline CTR) of each window of the hour that has exploration.
    windows: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def explore_ctr(self) -> float | None:
        return self.explore_clicks / self.explore_impressions if self.explore_impressions else None

    @property
    def baseline_ctr(self) -> float | None:
        return (
            self.baseline_clicks / self.baseline_impressions if self.baseline_impressions else None
        )

    @property
    def explore_reward_per_impression(self) -> float | None:
        return self.explore_reward / self.explore_impressions if self.explore_impressions else None

    @property
    def baseline_reward_per_impression(self) -> float | None:
        if not self.baseline_impressions:
            return None
        return self.baseline_reward / self.baseline_impressions

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "bandit_explore_impressions": self.explore_impressions,
            "bandit_explore_ctr": self.explore_ctr,
            "baseline_ctr": self.baseline_ctr,
            "bandit_explore_reward_sum": self.explore_reward,
            "explore_reward_per_impression": self.explore_reward_per_impression,
            "baseline_reward_per_impression": self.baseline_reward_per_impression,
            "windows_with_exploration": len(self.windows),
        }


def last_hour(
    warehouse: Engine | SparkWarehouse, namespace: str, as_of: datetime
) -> dict[str, HourFigures]:
    """Per surface, the four windows of the hour before ``as_of``."""
    rows = query_rows(
        warehouse,
        "metrics/last_hour",
        {"namespace": namespace, "window_start": as_of - HOUR, "as_of": as_of},
    )
    figures: dict[str, HourFigures] = {}
    for row in rows:
        hour = figures.setdefault(row.surface, HourFigures(row.surface))
        explore, baseline = int(row.explore_impressions), int(row.baseline_impressions)
        hour.explore_impressions += explore
        hour.explore_clicks += float(row.explore_clicks)
        hour.explore_reward += float(row.explore_reward)
        hour.baseline_impressions += baseline
        hour.baseline_clicks += float(row.baseline_clicks)
        hour.baseline_reward += float(row.baseline_reward)
        if explore:
            baseline_ctr = float(row.baseline_clicks) / baseline if baseline else None
            hour.windows.append((float(row.explore_clicks) / explore, baseline_ctr))
    return figures
