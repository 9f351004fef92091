"""The prior of a new item: the fixed Beta(alpha0, beta0) of the settings, or an empirical
Beta fitted per (namespace, surface) to the items that already have plenty of evidence.

Why: Beta(1, 1) has mean 0.5 while a fresh item's normalised reward is a few percent, so
each new item is shown far more than its evidence warrants before the posterior comes
down. The empirical prior starts a new item where the well-explored items of its surface
are, with a capped strength so that a few dozen impressions of its own outweigh it.

The fit is the method of moments for a beta-binomial population (Kleinman 1973,
"Proportions with extraneous variance", JASA 68(341)): the spread of the items' observed
rates minus the spread their finite evidence alone would produce is the spread of the
true rates, and a Beta with that mean and variance has strength
``mean * (1 - mean) / variance - 1``. Pure math, no I/O: the job feeds it the evidence of
the warehouse (``sql/posteriors/prior_evidence.sql``) and the reference implementation
the evidence of its own evaluation, so both fit the same prior from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRIOR_MODES = ("fixed", "empirical")
MIN_STRENGTH = 1.0  # a prior never weaker than one impression
RATE_FLOOR = 1e-6  # keeps both parameters > 0 when every fitted item has rate 0 or 1
# An item's decayed evidence is a product of window decays on one path and one power on
# another, and the two differ in the last bits: min_evidence is met up to this relative
# slack, so that an item exactly at the threshold counts (or not) the same on every path.
EVIDENCE_SLACK = 1e-9


@dataclass(frozen=True)
class PriorFitParameters:
    """How the empirical prior is fitted (defaults: ``settings.prior_fit_parameters()``)."""

    mode: str  # "fixed" or "empirical"
    max_strength: float  # cap on alpha0 + beta0: the prior never outweighs this many impressions
    min_items: int  # fewer well-explored items than this: the fixed prior
    min_evidence: float  # decayed trained impressions that make an item well explored

    def __post_init__(self) -> None:
        if self.mode not in PRIOR_MODES:
            raise ValueError(f"prior mode: {self.mode!r} is not one of {', '.join(PRIOR_MODES)}")
        if self.max_strength < MIN_STRENGTH or self.min_items < 2 or self.min_evidence <= 0:
            raise ValueError(
                f"max_strength must be >= {MIN_STRENGTH}, min_items >= 2, min_evidence > 0"
            )

    @property
    def empirical(self) -> bool:
        return self.mode == "empirical"

    @property
    def evidence_threshold(self) -> float:
        """The evidence an item needs to count as well explored: ``min_evidence`` less
        its rounding slack (``EVIDENCE_SLACK``)."""
        return self.min_evidence * (1.0 - EVIDENCE_SLACK)


@dataclass(frozen=True)
class FittedPrior:
    """The prior of one (namespace, surface) and how it came about."""

    alpha: float
    beta: float
    method: str  # "empirical", "capped" (strength hit the cap) or "fixed" (too few items)
    items: int  # well-explored items the fit saw
    observed_mean: float | None  # mean of their observed rates
    observed_variance: float | None  # variance of those rates across items
    noise_variance: float | None  # the part of it their finite evidence explains

    @property
    def strength(self) -> float:
        return self.alpha + self.beta

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def fit_prior(
    reward_evidence: np.ndarray,
    non_reward_evidence: np.ndarray,
    fit: PriorFitParameters,
    fixed_alpha: float,
    fixed_beta: float,
) -> FittedPrior:
    """The prior of a surface from its items' decayed evidence (``alpha - alpha0`` and
    ``beta - beta0`` of each item). Items below ``fit.evidence_threshold`` are left out; with
    fewer than ``fit.min_items`` left, the fixed prior."""
    a = np.asarray(reward_evidence, dtype=float)
    b = np.asarray(non_reward_evidence, dtype=float)
    n = a + b
    keep = n >= fit.evidence_threshold
    a, n = a[keep], n[keep]
    items = int(keep.sum())
    if items < fit.min_items:
        return FittedPrior(fixed_alpha, fixed_beta, "fixed", items, None, None, None)
    rates = a / n
    mean = float(rates.mean())
    variance = float(rates.var(ddof=1))
    # Rewards lie in [0, 1], so one impression's variance is at most p (1 - p): the
    # spread an item's finite evidence adds to its observed rate, at most.
    noise = float(np.mean(rates * (1.0 - rates) / n))
    mean_clipped = min(max(mean, RATE_FLOOR), 1.0 - RATE_FLOOR)
    between = variance - noise
    if between <= 0:
        strength, method = fit.max_strength, "capped"
    else:
        strength = mean_clipped * (1.0 - mean_clipped) / between - 1.0
        method = "capped" if strength >= fit.max_strength else "empirical"
        strength = min(max(strength, MIN_STRENGTH), fit.max_strength)
    return FittedPrior(
        alpha=mean_clipped * strength,
        beta=(1.0 - mean_clipped) * strength,
        method=method,
        items=items,
        observed_mean=mean,
        observed_variance=variance,
        noise_variance=noise,
    )
