"""What only the simulator knows: the hidden true rates and the regret of each policy.

The dry run writes it as ``truth.json`` beside the warehouse; ``bandit-pipeline report
--truth`` reads it to draw the true rates beside the posteriors and the cumulative regret.
A production report has no truth file, and the report leaves those sections out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from bandit_pipeline.simulate.prior_regret import PriorRegretWindow


@dataclass(frozen=True)
class TrueReward:
    """The hidden expected normalised reward of a fresh item on a surface, from ``at``
    (an hour start) until the next row of the same item and surface."""

    at: datetime
    surface: str
    item_id: str
    expected_reward: float  # E[max weight of the outcomes] / w_max, in [0, 1]
    ctr: float  # probability of a click


@dataclass(frozen=True)
class RegretWindow:
    """The regret of one 15-minute window's exploration slots on a surface: the true
    expected reward of the best eligible candidate minus that of the item shown, summed
    over the window's explore slots, for Thompson sampling as served and, on the same
    slots and pools, for uniform random choice and for no exploration (the ranker's item
    left in the slot)."""

    window_start: datetime
    surface: str
    explore_slots: int
    thompson: float
    uniform: float
    no_exploration: float


@dataclass
class DryRunTruth:
    """Everything the report needs from the simulator, in one JSON file."""

    seed: int
    scenario: str
    namespace: str
    start: datetime
    end: datetime
    surfaces: list[str]
    fresh_items: list[str]
    true_rewards: list[TrueReward] = field(default_factory=list)
    regret: list[RegretWindow] = field(default_factory=list)
    # The fixed and the empirical prior on the same seed (simulate/prior_regret.py).
    prior_regret: list[PriorRegretWindow] = field(default_factory=list)
    # Counters of what the shop emitted, for the dry run's verdict and its tests.
    emitted: dict[str, int] = field(default_factory=dict)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), default=_iso, indent=1))

    def reward_function(self) -> Callable[[str, Sequence[str], datetime], np.ndarray]:
        """``(surface, items, at) -> each item's hidden expected reward at ``at``` (by the
        hour's row): what off-policy evaluation's estimates are checked against."""
        table = {(r.surface, r.item_id, r.at): r.expected_reward for r in self.true_rewards}

        def expected(surface: str, items: Sequence[str], at: datetime) -> np.ndarray:
            hour = at.replace(minute=0, second=0, microsecond=0)
            return np.array([table[surface, item, hour] for item in items])

        return expected

    @classmethod
    def read(cls, path: str | Path) -> DryRunTruth:
        raw = json.loads(Path(path).read_text())
        return cls(
            seed=raw["seed"],
            scenario=raw["scenario"],
            namespace=raw["namespace"],
            start=datetime.fromisoformat(raw["start"]),
            end=datetime.fromisoformat(raw["end"]),
            surfaces=list(raw["surfaces"]),
            fresh_items=list(raw["fresh_items"]),
            true_rewards=[
                TrueReward(**{**row, "at": datetime.fromisoformat(row["at"])})
                for row in raw["true_rewards"]
            ],
            regret=[
                RegretWindow(**{**row, "window_start": datetime.fromisoformat(row["window_start"])})
                for row in raw["regret"]
            ],
            prior_regret=[
                PriorRegretWindow(
                    **{**row, "window_start": datetime.fromisoformat(row["window_start"])}
                )
                for row in raw.get("prior_regret", [])
            ],
            emitted=dict(raw.get("emitted", {})),
        )


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
