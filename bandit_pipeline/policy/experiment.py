"""Stable assignment of users to the experiment's treatment or control (docs/serving.md)."""

from __future__ import annotations

import hashlib

TREATMENT = "treatment"
CONTROL = "control"


def bucket(experiment: str, user_id: str) -> float:
    """A stable number in [0, 100) from (experiment, user_id): same user, same bucket."""
    digest = hashlib.sha256(f"{experiment}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def assign_variant(experiment: str, user_id: str, holdout_percent: float) -> str:
    """``control`` for the holdout share of users, ``treatment`` for the rest."""
    return CONTROL if bucket(experiment, user_id) < holdout_percent else TREATMENT
