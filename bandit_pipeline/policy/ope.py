"""Off-policy estimators of a candidate policy's expected reward per exploration
impression, from impressions logged under another policy (docs/data-science.md).

Each logged exploration impression ``i`` contributes its reward ``r_i`` (normalised, in
[0, 1]), the served policy's propensity ``p_i`` of the item it showed in that slot, the
candidate policy's probability ``q_i`` of showing that item in that slot in the same
context, and for the doubly robust estimator a reward model: ``m_i`` its prediction for
the logged item and ``v_i = sum_a q(a) m(a)`` its value of the candidate's whole choice.
With ``w_i = q_i / p_i``:

- IPS (inverse propensity scoring; Horvitz and Thompson 1952): ``mean(w r)``. Unbiased
  when every item the candidate may choose had a positive propensity; its variance grows
  with the weights.
- SNIPS (self-normalised IPS; Swaminathan and Joachims 2015, "The Self-Normalized
  Estimator for Counterfactual Learning"): ``sum(w r) / sum(w)``. Slightly biased, often
  much less variable; it cannot leave [0, 1].
- DR (doubly robust; Dudik, Langford and Li 2011, "Doubly Robust Policy Evaluation and
  Learning"): ``mean(v + w (r - m))``. Unbiased like IPS, and less variable the better the
  reward model predicts.

Intervals are 95% by default. IPS and DR are means of per-impression terms: Student's t
interval of the mean (``scipy.stats.ttest_1samp``). SNIPS is a ratio: the bootstrap
percentile interval (``scipy.stats.bootstrap``). The effective sample size is Kish's
``(sum w)^2 / sum w^2``: how many on-policy impressions the weighted ones are worth.

The propensities of an adaptive policy depend on the data before each decision; the
terms are then martingale differences rather than independent, and the same estimators
and intervals hold asymptotically (van der Laan and Lendle 2014; Bibaut et al. 2021),
which the simulator check measures (docs/data-science.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval."""

    value: float
    low: float
    high: float

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


@dataclass(frozen=True)
class OffPolicyEstimates:
    """The three estimates of one candidate policy, with what they rest on."""

    impressions: int
    ips: Estimate
    snips: Estimate
    dr: Estimate
    effective_sample_size: float
    max_weight: float


def ips(rewards: np.ndarray, weights: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """Inverse propensity scoring: the mean of ``w r``."""
    return mean_interval(weights * rewards, confidence)


def snips(
    rewards: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Estimate:
    """Self-normalised IPS, ``sum(w r) / sum(w)``, with a bootstrap percentile interval."""
    if weights.sum() <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    value = float(np.sum(weights * rewards) / np.sum(weights))
    if len(rewards) < 2 or (np.ptp(weights * rewards) == 0 and np.ptp(weights) == 0):
        return Estimate(value, value, value)

    def ratio(r: np.ndarray, w: np.ndarray, axis: int = -1) -> np.ndarray:
        total = np.sum(w, axis=axis)
        return np.sum(w * r, axis=axis) / np.where(total > 0, total, np.nan)

    result = stats.bootstrap(
        (rewards, weights),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=rng,
    )
    interval = result.confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def doubly_robust(
    rewards: np.ndarray,
    weights: np.ndarray,
    model_logged: np.ndarray,
    model_value: np.ndarray,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """Doubly robust: the mean of ``v + w (r - m)``."""
    return mean_interval(model_value + weights * (rewards - model_logged), confidence)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights."""
    squares = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0


def mean_interval(terms: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """The mean of ``terms`` with Student's t interval (the terms all equal: no width)."""
    value = float(np.mean(terms)) if len(terms) else float("nan")
    if len(terms) < 2 or np.ptp(terms) == 0:
        return Estimate(value, value, value)
    interval = stats.ttest_1samp(terms, 0.0).confidence_interval(confidence)
    return Estimate(value, float(interval.low), float(interval.high))


def estimate_all(
    rewards: np.ndarray,
    logged_propensity: np.ndarray,
    target_probability: np.ndarray,
    model_logged: np.ndarray,
    model_value: np.ndarray,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
) -> OffPolicyEstimates:
    """IPS, SNIPS and DR of one candidate policy over the same logged impressions."""
    weights = target_probability / logged_propensity
    return OffPolicyEstimates(
        impressions=len(rewards),
        ips=ips(rewards, weights, confidence),
        snips=snips(rewards, weights, rng, confidence),
        dr=doubly_robust(rewards, weights, model_logged, model_value, confidence),
        effective_sample_size=effective_sample_size(weights),
        max_weight=float(weights.max()) if len(weights) else 0.0,
    )


def cross_fitted_means(
    groups: np.ndarray,
    folds: np.ndarray,
    rewards: np.ndarray,
    n_groups: int,
    n_folds: int,
    strength: float,
) -> np.ndarray:
    """Per fold, each group's mean reward over the *other* folds, shrunk towards those
    folds' overall mean by ``strength`` pseudo impressions; shape (folds, groups). A
    reward model fitted on other folds than the one it predicts has errors independent
    of the rewards it corrects (cross-fitting; Chernozhukov et al. 2018)."""
    model = np.empty((n_folds, n_groups))
    for fold in range(n_folds):
        train = folds != fold
        overall = float(rewards[train].mean()) if train.any() else 0.0
        sums = np.bincount(groups[train], weights=rewards[train], minlength=n_groups)
        counts = np.bincount(groups[train], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (sums + strength * overall) / (counts + strength)
        model[fold] = np.where(counts + strength > 0, means, overall)
    return model
