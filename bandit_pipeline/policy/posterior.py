"""The parameters of the posterior definition (docs/posterior.md) and its decay."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from bandit_pipeline.timing import SECONDS_PER_DAY, SECONDS_PER_HOUR

# Evidence older than this many half-lives weighs below 2**-40 (about 1e-12) of fresh
# evidence, under float precision next to the prior: the from-scratch computation ignores it.
LOOKBACK_HALF_LIVES = 40


def decay_factor(elapsed_seconds: float, half_life_seconds: float) -> float:
    """``0.5 ** (elapsed / h)``, never above 1 (an event dated in the future does not grow).

    The warehouse's SQL function ``bandit_decay(elapsed, half_life)`` is this same function
    (on SQLite it is registered from here)."""
    if elapsed_seconds <= 0:
        return 1.0
    return 0.5 ** (elapsed_seconds / half_life_seconds)


@dataclass(frozen=True)
class PosteriorParameters:
    """Everything the posterior numbers depend on besides the events.

    No defaults here: :class:`bandit_pipeline.settings.Settings` holds them and builds
    this object (``settings.posterior_parameters()``).
    """

    weight_click: float
    weight_add_to_cart: float
    weight_purchase: float
    prior_alpha: float
    prior_beta: float
    half_life_days: float
    attribution_window_hours: float
    train_on_all_impressions: bool

    def __post_init__(self) -> None:
        if min(self.weight_click, self.weight_add_to_cart, self.weight_purchase) < 0:
            raise ValueError("reward weights must be >= 0")
        if self.max_weight <= 0:
            raise ValueError("at least one reward weight must be positive")
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError("the prior's alpha and beta must be > 0")
        if self.half_life_days <= 0 or self.attribution_window_hours <= 0:
            raise ValueError("half-life and attribution window must be > 0")

    @property
    def reward_weights(self) -> dict[str, float]:
        """The weight of each outcome event type."""
        return {
            "click": self.weight_click,
            "add_to_cart": self.weight_add_to_cart,
            "purchase": self.weight_purchase,
        }

    @property
    def max_weight(self) -> float:
        return max(self.weight_click, self.weight_add_to_cart, self.weight_purchase)

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_days * SECONDS_PER_DAY

    @property
    def attribution_seconds(self) -> float:
        return self.attribution_window_hours * SECONDS_PER_HOUR

    @property
    def lookback_seconds(self) -> float:
        return LOOKBACK_HALF_LIVES * self.half_life_seconds

    def fingerprint(self) -> str:
        """Identifies the settings: a partition continues incrementally only from a
        predecessor computed with the same fingerprint."""
        canonical = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
