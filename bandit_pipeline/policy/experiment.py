"""Stable assignment of users: to the experiment's treatment or control, and to the
rollout share that gets exploration (docs/serving.md)."""

from __future__ import annotations

import hashlib

TREATMENT = "treatment"
CONTROL = "control"


def _percentile(key: str) -> float:
    """A stable, uniform number in [0, 100) from ``key``."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def bucket(experiment: str, user_id: str) -> float:
    """A stable number in [0, 100) from (experiment, user_id): same user, same bucket."""
    return _percentile(f"{experiment}\x1f{user_id}")


def rollout_bucket(user_id: str) -> float:
    """A stable number in [0, 100) from the user alone, independent of every experiment's
    bucket (its own separator, which no experiment name can hold)."""
    return _percentile(f"rollout\x1e{user_id}")


def in_rollout(user_id: str, percent: float) -> bool:
    """Whether the user is in the rollout share of ``percent`` of users."""
    return percent >= 100.0 or rollout_bucket(user_id) < percent


def assign_variant(experiment: str, user_id: str, holdout_percent: float) -> str:
    """``control`` for the holdout share of users, ``treatment`` for the rest."""
    return CONTROL if bucket(experiment, user_id) < holdout_percent else TREATMENT
