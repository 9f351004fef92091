"""The serving flags' names and valid values: read by serving, set by the CLI.

A small module of its own so that the command line checks a value without importing the
serving stack.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bandit_pipeline.settings import Settings

EXPLORATION_ENABLED = "bandit_exploration_enabled"
EXPLORE_SLOTS = "bandit_explore_slots"
EXPLORE_TRAFFIC_PERCENT = "bandit_explore_traffic_percent"
FLAGS = (EXPLORATION_ENABLED, EXPLORE_SLOTS, EXPLORE_TRAFFIC_PERCENT)


def flag_fallbacks(settings: Settings) -> dict[str, bool | int | float]:
    """Each flag's value when the store holds none for a namespace: its setting."""
    return {
        EXPLORATION_ENABLED: settings.exploration_enabled,
        EXPLORE_SLOTS: settings.explore_slots,
        EXPLORE_TRAFFIC_PERCENT: settings.explore_traffic_percent,
    }


def flag_text(value: bool | int | float) -> str:
    """A flag's value as the store holds it and ``flags set`` takes it."""
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def flag_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not a valid stored value of the flag ``name``, or None."""
    if name == EXPLORATION_ENABLED:
        return None if value in ("true", "false") else "takes true or false"
    if name == EXPLORE_SLOTS:
        return None if value in ("1", "2") else "takes 1 or 2"
    if name != EXPLORE_TRAFFIC_PERCENT:
        return f"is not a flag; the flags are {', '.join(FLAGS)}"
    try:
        share = float(value)
    except ValueError:
        share = math.nan
    return None if 0 <= share <= 100 else "takes a share of users from 0 to 100"
