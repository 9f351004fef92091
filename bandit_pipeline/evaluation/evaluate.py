"""``bandit-pipeline evaluate``: the expected reward per exploration impression of
candidate policies, estimated from the served policy's logs (docs/data-science.md).

For each candidate and each logged exploration impression: the candidate's probability
of the shown item in that slot, in the same context (``policy.candidates``), on
posteriors recomputed with the candidate's parameters where it has any
(``policy.counterfactual``); the estimators are ``policy.ope``'s. The doubly robust
estimator's reward model is the posterior mean of the snapshot each decision drew from,
its prior replaced by the surface's mean reward (``_reward_model``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from bandit_pipeline.empirical_prior import fit_priors, recorded_prior
from bandit_pipeline.evaluation.logs import LoggedContext, LoggedExploration, load_logged
from bandit_pipeline.policy.candidates import PRIOR_KEYS, CandidatePolicy, slot_probabilities
from bandit_pipeline.policy.counterfactual import (
    Outcome,
    TrainingImpression,
    evidence_increments,
    posteriors_as_of,
)
from bandit_pipeline.policy.ope import (
    Estimate,
    OffPolicyEstimates,
    cross_fitted_means,
    estimate_all,
    mean_interval,
)
from bandit_pipeline.policy.posterior import LOOKBACK_HALF_LIVES, PosteriorParameters
from bandit_pipeline.settings import Settings
from bandit_pipeline.warehouse.sql import sql_statement

FOLDS = 2
DRAWS = 2_000  # Monte Carlo decisions per snapshot for a Thompson candidate's probabilities

# (surface, items, at) -> each item's true expected reward: the simulator's, in tests.
TruthFunction = Callable[[str, Sequence[str], datetime], np.ndarray]
PosteriorSource = Callable[
    [LoggedContext, list[str], np.ndarray, np.ndarray],
    tuple[np.ndarray | None, np.ndarray | None],
]


class EvaluationError(ValueError):
    """The evaluation cannot run as asked (a bad scores file, say)."""


@dataclass
class PolicyTerms:
    """Per logged unit: the candidate's probability of the shown item in its slot, the
    reward model at that item and its value of the candidate's choice, and (with a truth
    function) the true expected reward of the candidate's choice."""

    policy: CandidatePolicy
    target: np.ndarray
    model_logged: np.ndarray
    model_value: np.ndarray
    truth: np.ndarray | None = None

    def estimates(
        self, logged: LoggedExploration, rng: np.random.Generator, mask: np.ndarray | None = None
    ) -> OffPolicyEstimates:
        """IPS, SNIPS and DR over the units in ``mask`` (all by default)."""
        keep = slice(None) if mask is None else mask
        return estimate_all(
            logged.reward[keep],
            logged.propensity[keep],
            self.target[keep],
            self.model_logged[keep],
            self.model_value[keep],
            rng,
        )

    def true_value(self, mask: np.ndarray | None = None) -> float | None:
        if self.truth is None:
            return None
        return float(np.mean(self.truth if mask is None else self.truth[mask]))


@dataclass
class Evaluation:
    """The logged data of the range and each candidate's terms."""

    logged: LoggedExploration
    policies: list[PolicyTerms] = field(default_factory=list)

    def observed(self) -> Estimate:
        """The served policy's mean reward per exploration impression, as observed."""
        return mean_interval(self.logged.reward)


def evaluate(
    engine: Engine,
    settings: Settings,
    since: datetime,
    until: datetime,
    policies: Sequence[CandidatePolicy],
    *,
    surface: str | None = None,
    seed: int = 0,
    draws: int = DRAWS,
    truth: TruthFunction | None = None,
) -> Evaluation:
    """Each candidate's per-unit terms over the logged exploration of ``[since, until)``."""
    logged = load_logged(engine, settings, since, until, surface)
    evaluation = Evaluation(logged)
    if not len(logged):
        return evaluation
    priors = SnapshotPriors(engine, settings)
    model = _reward_model(logged, settings.posterior_parameters(), priors)
    models = {index: model(index) for index in range(len(logged.contexts))}
    features = _catalog_freshness(engine, settings.namespace)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, context in enumerate(logged.contexts):
        groups.setdefault((context.surface, context.version), []).append(index)
    true_rewards = (
        {i: truth(c.surface, c.items, c.decided_at) for i, c in enumerate(logged.contexts)}
        if truth is not None
        else None
    )
    for number, policy in enumerate(policies):
        rng = np.random.default_rng([seed, number])
        posteriors = _posterior_source(engine, settings, logged, policy, priors)
        scores = _scores(policy, features)
        per_context: dict[int, np.ndarray] = {}
        for indices in groups.values():
            # The snapshot's items that any of its decisions could choose, once.
            logged_posteriors: dict[str, tuple[float, float]] = {}
            for index in indices:
                context = logged.contexts[index]
                logged_posteriors.update(
                    zip(context.items, zip(context.alpha, context.beta, strict=True), strict=True)
                )
            items = list(logged_posteriors)
            column = {item: i for i, item in enumerate(items)}
            alpha, beta = posteriors(
                logged.contexts[indices[0]],
                items,
                np.array([logged_posteriors[i][0] for i in items]),
                np.array([logged_posteriors[i][1] for i in items]),
            )
            samples = None
            if policy.kind in ("served", "thompson"):
                # One set of draws per snapshot, shared by its decisions: each decision's
                # probabilities stay unbiased, at a fraction of the cost.
                samples = rng.beta(alpha[None, :], beta[None, :], size=(draws, len(items)))
            for index in indices:
                context = logged.contexts[index]
                columns = [column[item] for item in context.items]
                per_context[index] = slot_probabilities(
                    policy,
                    len(columns),
                    context.slots,
                    rng,
                    alpha=None if alpha is None else alpha[columns],
                    beta=None if beta is None else beta[columns],
                    scores=None if scores is None else np.array([scores(i) for i in context.items]),
                    samples=None if samples is None else samples[:, columns],
                )
        evaluation.policies.append(_terms(policy, logged, per_context, models, true_rewards))
    return evaluation


def _terms(
    policy: CandidatePolicy,
    logged: LoggedExploration,
    per_context: dict[int, np.ndarray],
    models: dict[int, np.ndarray],
    true_rewards: dict[int, np.ndarray] | None,
) -> PolicyTerms:
    n = len(logged)
    target, model_logged, model_value = np.empty(n), np.empty(n), np.empty(n)
    truth = np.empty(n) if true_rewards is not None else None
    for unit in range(n):
        index = int(logged.context[unit])
        probabilities = per_context[index][:, int(logged.rank[unit])]
        item_model = models[index]
        target[unit] = probabilities[logged.choice[unit]]
        model_logged[unit] = item_model[logged.choice[unit]]
        model_value[unit] = probabilities @ item_model
        if truth is not None:
            truth[unit] = probabilities @ true_rewards[index]
    return PolicyTerms(policy, target, model_logged, model_value, truth)


class SnapshotPriors:
    """The prior each logged snapshot's posteriors hold (the run's recorded empirical
    prior, else the fixed one), and the empirical prior its window fits, per surface."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._namespace = settings.namespace
        self._params = settings.posterior_parameters()
        self._fit = replace(settings.prior_fit_parameters(), mode="empirical")
        self._recorded: dict[tuple[datetime, str], tuple[float, float] | None] = {}
        self._fitted: dict[datetime, dict] = {}

    def served(self, context: LoggedContext) -> tuple[float, float]:
        recorded = self._recorded_prior(context)
        return (self._params.prior_alpha, self._params.prior_beta) if recorded is None else recorded

    def empirical(self, context: LoggedContext) -> tuple[float, float]:
        recorded = self._recorded_prior(context)
        if recorded is not None:  # the run served an empirical prior: that one
            return recorded
        if context.as_of not in self._fitted:
            with self._engine.connect() as connection:
                self._fitted[context.as_of] = fit_priors(
                    connection, context.as_of, self._params, self._fit
                )
        fitted = self._fitted[context.as_of].get((self._namespace, context.surface))
        if fitted is None:
            return self._params.prior_alpha, self._params.prior_beta
        return fitted.alpha, fitted.beta

    def _recorded_prior(self, context: LoggedContext) -> tuple[float, float] | None:
        key = (context.as_of, context.surface)
        if key not in self._recorded:
            with self._engine.connect() as connection:
                self._recorded[key] = recorded_prior(
                    connection, context.as_of, self._namespace, context.surface
                )
        return self._recorded[key]


def _reward_model(
    logged: LoggedExploration, served: PosteriorParameters, priors: SnapshotPriors
) -> Callable[[int], np.ndarray]:
    """The doubly robust estimator's reward model for a decision's items: the posterior
    mean of the snapshot it drew from, its prior's mean replaced by the surface's mean
    reward (over the other half of the decisions) at the prior's strength
    (``alpha0 + beta0`` pseudo impressions): Beta(1, 1)'s mean of 0.5 is far from a
    typical reward. The snapshot holds only what was known before the decision, so the
    model's errors are independent of the rewards it corrects."""
    surfaces = sorted({context.surface for context in logged.contexts})
    code = {surface: i for i, surface in enumerate(surfaces)}
    folds = np.array([logged.contexts[c].decision_id % FOLDS for c in logged.context])
    units = np.array([code[logged.contexts[c].surface] for c in logged.context], dtype=np.intp)
    means = cross_fitted_means(units, folds, logged.reward, len(surfaces), FOLDS, 0.0)
    strength = served.prior_alpha + served.prior_beta

    def model(index: int) -> np.ndarray:
        context = logged.contexts[index]
        prior = means[context.decision_id % FOLDS, code[context.surface]]
        alpha0, beta0 = priors.served(context)
        reward = np.maximum(context.alpha - alpha0, 0.0)
        evidence = reward + np.maximum(context.beta - beta0, 0.0)
        return (reward + strength * prior) / (evidence + strength)

    return model


def _posterior_source(
    engine: Engine,
    settings: Settings,
    logged: LoggedExploration,
    policy: CandidatePolicy,
    priors: SnapshotPriors,
) -> PosteriorSource:
    """Where a candidate's posteriors come from: the logged snapshot; the snapshot with
    another prior (the evidence is the same); or the events, for other weights, half-life,
    attribution window or training set. The source maps a decision (its surface and
    snapshot), items of that snapshot and their logged posteriors to the candidate's."""
    if not policy.uses_posteriors:
        return lambda context, items, alpha, beta: (None, None)
    served = settings.posterior_parameters()
    overrides = dict(policy.overrides)
    empirical = overrides.pop("prior_mode", "fixed") == "empirical"
    params = replace(served, **overrides)  # validates the values
    if not policy.recomputes_evidence:
        if not PRIOR_KEYS & policy.overrides.keys():
            return lambda context, items, alpha, beta: (alpha, beta)

        def reprior(context: LoggedContext, items: list[str], alpha, beta):
            alpha0, beta0 = priors.served(context)
            new_alpha0, new_beta0 = (
                priors.empirical(context) if empirical else (params.prior_alpha, params.prior_beta)
            )
            return (
                new_alpha0 + np.maximum(alpha - alpha0, 0.0),
                new_beta0 + np.maximum(beta - beta0, 0.0),
            )

        return reprior
    increments = _increments(engine, settings.namespace, logged, params)

    def recomputed(context: LoggedContext, items: list[str], alpha, beta):
        keys = [(context.surface, item) for item in items]
        return posteriors_as_of(increments, context.as_of.timestamp(), keys, params)

    return recomputed


def _increments(
    engine: Engine, namespace: str, logged: LoggedExploration, params: PosteriorParameters
):
    """The evidence increments of every event the posteriors of the range's snapshots
    could have trained on (back 40 of the candidate's half-lives)."""
    first = min(c.as_of for c in logged.contexts)
    last = max(c.as_of for c in logged.contexts)
    since = first - timedelta(seconds=LOOKBACK_HALF_LIVES * params.half_life_seconds)
    with engine.connect() as connection:
        rows = connection.execute(
            sql_statement("evaluation/training_events"),
            {"namespace": namespace, "since": since, "until": last},
        ).all()
    impressions, outcomes = [], []
    for row in rows:
        key = (namespace, row.surface, row.request_id, row.item_id)
        if row.event_type == "impression":
            impressions.append(TrainingImpression(key, row.occurred, row.ingested,
                                                  bool(row.explore), row.variant))  # fmt: skip
        else:
            outcomes.append(Outcome(key, row.event_type, row.occurred, row.ingested))
    return evidence_increments(impressions, outcomes, params)


def _catalog_freshness(engine: Engine, namespace: str) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(
            sql_statement("evaluation/catalog_features"), {"namespace": namespace}
        ).all()
    return {row.item_id: float(row.freshness_index or 0.0) for row in rows}


def _scores(policy: CandidatePolicy, freshness: dict[str, float]) -> Callable[[str], float] | None:
    """The ranking score of each item for the deterministic ranked candidates."""
    if policy.kind == "freshest":
        return lambda item: freshness.get(item, 0.0)
    if policy.kind != "scores":
        return None
    scores = read_scores(Path(policy.scores_path or ""))
    return lambda item: scores.get(item, -np.inf)


def read_scores(path: Path) -> dict[str, float]:
    """Item scores from a JSON object ``{"item": score}`` or a CSV of ``item_id,score``
    lines (a header line is skipped)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise EvaluationError(f"scores file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            return {str(k): float(v) for k, v in json.loads(text).items()}
        scores = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            item, _, value = line.rpartition(",")
            try:
                scores[item.strip()] = float(value)
            except ValueError:
                if number == 1:
                    continue  # a header
                raise
        return scores
    except (ValueError, AttributeError) as exc:
        raise EvaluationError(f"scores file {path}: {exc}") from None
