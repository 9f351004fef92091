"""Off-policy evaluation on a log in the layout of the Open Bandit Dataset (Saito et al.
2020, "Open Bandit Dataset and Pipeline"): the product's Thompson sampling, trained on the
first part of the log by the posterior definition, evaluated on the rest with the
product's estimators (docs/data-science.md, "Replay on the Open Bandit Dataset").

The layout is OBD's: ``{policy}/{campaign}.csv`` holds one row per item shown, with its
``timestamp``, ``item_id``, ``position`` (1, 2, 3), ``click`` and ``propensity_score``
(the logging policy's probability of that item at that position), and
``item_context.csv`` one row per item the policy could show.

- **Training.** Every row before the split is one training impression of its item, its
  click the reward (the click is the whole reward: the other outcomes' weights are 0),
  and the posteriors are ``policy.counterfactual``'s as of the split, with the prior and
  half-life given.
- **The policies evaluated.** Thompson sampling on those posteriors, one Beta draw per
  item: ``ranked`` puts the k-th highest draw at position k, as the product fills its
  exploration slots and as OBD's Bernoulli TS filled its three positions; ``top`` puts
  the highest draw at every position, one exploration slot per position. Positions 1 and
  2 have exact probabilities (``policy.propensity``'s quadrature); a third position's
  are a Monte Carlo estimate, unbiased, so the estimators stay unbiased.
- **Estimates.** ``policy.ope``'s IPS, SNIPS and DR over the evaluation rows. The DR
  reward model is each item's click rate on the training rows, shrunk towards their
  overall rate at the prior's strength (``cross_fitted_means``): it knows nothing of the
  rows it corrects. The ratio of each estimate to the logging policy's observed click
  rate on the same rows has a paired bootstrap interval (the two share the clicks).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from scipy import stats

from bandit_pipeline.policy.counterfactual import (
    Outcome,
    TrainingImpression,
    evidence_increments,
    posteriors_as_of,
)
from bandit_pipeline.policy.ope import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    Estimate,
    OffPolicyEstimates,
    cross_fitted_means,
    estimate_all,
    mean_interval,
)
from bandit_pipeline.policy.posterior import PosteriorParameters
from bandit_pipeline.policy.propensity import (
    MAX_SLOTS,
    monte_carlo_slot_probabilities,
    thompson_slot_propensities,
)
from bandit_pipeline.report.stats import ratio_interval

MONTE_CARLO_DRAWS = 1_000_000
SURFACE = "obd"  # the one surface of the posteriors' keys
BOOTSTRAP_BATCH = 100  # resamples at once: 100 x rows values per array


@dataclass(frozen=True)
class BanditLog:
    """One logging policy's rows, sorted by time."""

    timestamp: np.ndarray  # epoch seconds
    item: np.ndarray  # 0 .. n_items - 1
    position: np.ndarray  # 0 the first position
    click: np.ndarray  # 0.0 or 1.0
    propensity: np.ndarray  # the logging policy's probability of the item at the position
    n_items: int

    def __len__(self) -> int:
        return len(self.item)

    @property
    def positions(self) -> int:
        return int(self.position.max()) + 1 if len(self) else 0

    def rows(self, mask: np.ndarray) -> BanditLog:
        return BanditLog(
            self.timestamp[mask],
            self.item[mask],
            self.position[mask],
            self.click[mask],
            self.propensity[mask],
            self.n_items,
        )


def read_log(rows: Iterable[str], item_context: Iterable[str]) -> BanditLog:
    """A log from the lines of OBD's ``{policy}/{campaign}.csv`` and of its
    ``item_context.csv`` (whose rows are the items; the other columns are not used).
    Positions become 0, 1, ... in the order of their values, as Open Bandit Pipeline
    reads them."""
    n_items = sum(1 for _ in csv.DictReader(item_context))
    columns: dict[str, list[str]] = {
        "timestamp": [],
        "item_id": [],
        "position": [],
        "click": [],
        "propensity_score": [],
    }
    for row in csv.DictReader(rows):
        for name, values in columns.items():
            values.append(row[name])
    timestamp = np.array([datetime.fromisoformat(t).timestamp() for t in columns["timestamp"]])
    item = np.array(columns["item_id"], dtype=np.intp)
    if len(item) and not 0 <= item.min() <= item.max() < n_items:
        raise ValueError(f"item ids must lie in 0..{n_items - 1} (item_context.csv's rows)")
    _, position = np.unique(np.array(columns["position"], dtype=np.intp), return_inverse=True)
    order = np.argsort(timestamp, kind="stable")
    return BanditLog(
        timestamp[order],
        item[order],
        position.astype(np.intp)[order],
        np.array(columns["click"], dtype=float)[order],
        np.array(columns["propensity_score"], dtype=float)[order],
        n_items,
    )


def train_posteriors(
    log: BanditLog, as_of: float, params: PosteriorParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's Beta posterior as of ``as_of`` (epoch seconds) by the posterior
    definition (docs/posterior.md): every row before then is a training impression that
    arrived when it occurred, and its click an outcome at the same time."""
    impressions, outcomes = [], []
    for row in np.flatnonzero(log.timestamp < as_of):
        key = (SURFACE, SURFACE, str(row), str(log.item[row]))
        at = float(log.timestamp[row])
        impressions.append(TrainingImpression(key, at, at, True, None))
        if log.click[row] > 0:
            outcomes.append(Outcome(key, "click", at, at))
    increments = evidence_increments(impressions, outcomes, params)
    items = [(SURFACE, str(item)) for item in range(log.n_items)]
    return posteriors_as_of(increments, as_of, items, params)


@dataclass(frozen=True)
class PositionProbabilities:
    """A policy's probability of each item at each position (items x positions), and
    each one's error: the quadrature's bound, or the Monte Carlo standard error."""

    probabilities: np.ndarray
    errors: np.ndarray


def thompson_ranking(
    alpha: np.ndarray,
    beta: np.ndarray,
    positions: int,
    rng: np.random.Generator,
    draws: int = MONTE_CARLO_DRAWS,
) -> PositionProbabilities:
    """Thompson sampling's probability of each item at each position when the k-th
    highest Beta draw takes position k: the first two positions by quadrature, further
    ones from ``draws`` Monte Carlo decisions."""
    n = len(alpha)
    exact = min(positions, MAX_SLOTS)
    probabilities, errors = np.zeros((n, positions)), np.zeros((n, positions))
    for item in range(n):
        result = thompson_slot_propensities(alpha, beta, item, exact)
        probabilities[item, :exact] = result.probabilities
        errors[item, :exact] = result.error_bounds
    if positions > exact:
        sampled = monte_carlo_slot_probabilities(alpha, beta, positions, rng, draws)[:, exact:]
        probabilities[:, exact:] = sampled
        errors[:, exact:] = np.sqrt(sampled * (1.0 - sampled) / draws)
    return PositionProbabilities(probabilities, errors)


def top_draw_everywhere(ranking: PositionProbabilities) -> PositionProbabilities:
    """The policy that puts Thompson sampling's highest draw at every position (a draw of
    its own per position): the first column of ``ranking`` at every position."""
    positions = ranking.probabilities.shape[1]
    return PositionProbabilities(
        np.repeat(ranking.probabilities[:, :1], positions, axis=1),
        np.repeat(ranking.errors[:, :1], positions, axis=1),
    )


def estimate_policy(
    log: BanditLog, target: np.ndarray, model: np.ndarray, rng: np.random.Generator
) -> OffPolicyEstimates:
    """IPS, SNIPS and DR of the policy with probabilities ``target`` (items x positions)
    on the log's rows, with the reward model ``model`` (one predicted click rate per
    item)."""
    return estimate_all(*_terms(log, target, model), rng)


def ratios_to_logged(
    log: BanditLog,
    target: np.ndarray,
    model: np.ndarray,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[Estimate, Estimate, Estimate]:
    """The IPS, SNIPS and DR estimates of the policy over the logging policy's observed
    click rate on the same rows, with paired bootstrap percentile intervals: one set of
    resampled rows for the numerator and the denominator, which share the clicks."""
    rewards, propensity, probability, logged_model, value = _terms(log, target, model)
    weights = probability / propensity

    def ratios(r, w, m, v, axis=-1):
        observed = np.mean(r, axis=axis)
        return np.stack([
            np.mean(w * r, axis=axis) / observed,
            np.sum(w * r, axis=axis) / np.sum(w, axis=axis) / observed,
            np.mean(v + w * (r - m), axis=axis) / observed,
        ])  # fmt: skip

    arrays = (rewards, weights, logged_model, value)
    values = ratios(*arrays)
    if not np.all(np.isfinite(values)):  # no click on these rows: no ratio
        return tuple(Estimate(float("nan"), float("nan"), float("nan")) for _ in range(3))
    interval = stats.bootstrap(
        arrays,
        ratios,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        batch=BOOTSTRAP_BATCH,
        rng=rng,
    ).confidence_interval
    return tuple(
        Estimate(float(value), float(low), float(high))
        for value, low, high in zip(values, interval.low, interval.high, strict=True)
    )


def _terms(
    log: BanditLog, target: np.ndarray, model: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the click, the logged propensity, the policy's probability of the logged
    item at its position, the model's prediction for that item and its value of the
    policy's choice at that position."""
    value = (model @ target)[log.position]
    return log.click, log.propensity, target[log.item, log.position], model[log.item], value


def on_policy_ratio(treatment: np.ndarray, control: np.ndarray) -> Estimate:
    """The ratio of two logs' observed click rates, with the experiment readout's
    interval (a delta-method interval on the log of the ratio of independent means)."""
    difference, low, high = ratio_interval(
        (float(np.mean(treatment)), float(np.var(treatment)), len(treatment)),
        (float(np.mean(control)), float(np.var(control)), len(control)),
    )
    return Estimate(*(float("nan") if x is None else 1.0 + x for x in (difference, low, high)))


@dataclass(frozen=True)
class PolicyReplay:
    """One policy's estimates on the evaluation rows."""

    name: str
    probabilities: PositionProbabilities
    estimates: OffPolicyEstimates
    ratios: tuple[Estimate, Estimate, Estimate]  # IPS, SNIPS, DR over the logged rate


@dataclass(frozen=True)
class Replay:
    """The training, the evaluation rows and each policy's estimates there."""

    split: float  # epoch seconds: rows before it train, rows from it are evaluated
    training: BanditLog
    evaluation: BanditLog
    alpha: np.ndarray
    beta: np.ndarray
    model: np.ndarray
    logged: Estimate  # the logging policy's observed click rate on the evaluation rows
    policies: list[PolicyReplay]


def replay(
    log: BanditLog,
    params: PosteriorParameters,
    rng: np.random.Generator,
    *,
    train_share: float = 0.5,
    draws: int = MONTE_CARLO_DRAWS,
) -> Replay:
    """Train on the first ``train_share`` of the rows by time (a timestamp's rows all
    fall on one side), evaluate Thompson sampling, ranked and top draw everywhere, on
    the rest."""
    params = replace(params, weight_add_to_cart=0.0, weight_purchase=0.0)
    split = float(log.timestamp[min(int(len(log) * train_share), len(log) - 1)])
    evaluated = log.timestamp >= split
    training, evaluation = log.rows(~evaluated), log.rows(evaluated)
    alpha, beta = train_posteriors(log, split, params)
    model = cross_fitted_means(
        log.item,
        evaluated.astype(np.intp),
        log.click,
        log.n_items,
        2,
        params.prior_alpha + params.prior_beta,
    )[1]
    ranking = thompson_ranking(alpha, beta, log.positions, rng, draws)
    policies = []
    for name, probabilities in (("ranked", ranking), ("top", top_draw_everywhere(ranking))):
        target = probabilities.probabilities
        policies.append(
            PolicyReplay(
                name,
                probabilities,
                estimate_policy(evaluation, target, model, rng),
                ratios_to_logged(evaluation, target, model, rng),
            )
        )
    return Replay(
        split,
        training,
        evaluation,
        alpha,
        beta,
        model,
        mean_interval(evaluation.click),
        policies,
    )
