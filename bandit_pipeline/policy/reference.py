"""The posterior definition and the experiment's metric rollups, evaluated in plain Python.

This is the product's reference implementation (docs/posterior.md): one impression at a
time, straight from the definition, with no incremental state. The warehouse computes the
same numbers incrementally in SQL; the property tests compare the two, and analysis code
(the simulator's report, off-policy evaluation) uses this one. It favours being obviously
right over being fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bandit_pipeline.policy.posterior import PosteriorParameters, decay_factor
from bandit_pipeline.policy.prior import PriorFitParameters, fit_prior
from bandit_pipeline.timing import WINDOW_SECONDS

ImpressionKey = tuple[str, str, str, str]  # namespace, surface, request_id, item_id
ItemKey = tuple[str, str, str]  # namespace, surface, item_id


@dataclass(frozen=True)
class LoggedEvent:
    """One accepted reward event: the columns of ``bandit_rewards`` the definitions read."""

    event_id: str
    event_type: str
    occurred_at: datetime
    ingested_at: datetime
    namespace: str
    surface: str
    request_id: str
    item_id: str
    explore: bool
    experiment: str | None
    variant: str | None

    @property
    def impression_key(self) -> ImpressionKey:
        return (self.namespace, self.surface, self.request_id, self.item_id)


def _by_impression(
    events: Iterable[LoggedEvent], as_of: datetime
) -> tuple[dict[ImpressionKey, list[LoggedEvent]], dict[ImpressionKey, list[LoggedEvent]]]:
    """Impression events and outcome events visible at ``as_of``, by impression key."""
    impressions: dict[ImpressionKey, list[LoggedEvent]] = defaultdict(list)
    outcomes: dict[ImpressionKey, list[LoggedEvent]] = defaultdict(list)
    for event in events:
        if event.ingested_at < as_of:
            kind = impressions if event.event_type == "impression" else outcomes
            kind[event.impression_key].append(event)
    return impressions, outcomes


def _attributed(
    outcomes: list[LoggedEvent], shown_at: datetime, params: PosteriorParameters
) -> list[LoggedEvent]:
    """The outcomes that occurred within the attribution window after the impression."""
    window = params.attribution_seconds
    return [o for o in outcomes if (o.occurred_at - shown_at).total_seconds() <= window]


def reference_posteriors(
    events: Iterable[LoggedEvent],
    as_of: datetime,
    params: PosteriorParameters,
    prior: PriorFitParameters | None = None,
) -> dict[ItemKey, tuple[float, float]]:
    """alpha, beta per (namespace, surface, item) as of ``as_of``, for the items with
    evidence (every other item has the prior). With an empirical ``prior``, each
    surface's prior is fitted to these items' evidence (``reference_priors``)."""
    evidence = reference_evidence(events, as_of, params)
    priors = reference_priors(evidence, params, prior)
    fixed = (params.prior_alpha, params.prior_beta)
    result = {}
    for item, (a, b) in evidence.items():
        alpha0, beta0 = priors.get((item[0], item[1]), fixed)
        result[item] = (alpha0 + a, beta0 + b)
    return result


def reference_priors(
    evidence: dict[ItemKey, tuple[float, float]],
    params: PosteriorParameters,
    prior: PriorFitParameters | None,
) -> dict[tuple[str, str], tuple[float, float]]:
    """(alpha0, beta0) per (namespace, surface) with a well-explored item, fitted to the
    items' evidence when ``prior`` is empirical (policy/prior.py); empty otherwise."""
    if prior is None or not prior.empirical:
        return {}
    by_surface: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for item in sorted(evidence):
        a, b = evidence[item]
        if a + b >= prior.evidence_threshold:
            by_surface[item[0], item[1]].append((a, b))
    fitted = {}
    for surface, pairs in by_surface.items():
        values = np.array(pairs)
        fit = fit_prior(values[:, 0], values[:, 1], prior, params.prior_alpha, params.prior_beta)
        fitted[surface] = (fit.alpha, fit.beta)
    return fitted


def reference_evidence(
    events: Iterable[LoggedEvent], as_of: datetime, params: PosteriorParameters
) -> dict[ItemKey, tuple[float, float]]:
    """The decayed evidence (sum d_i r_i, sum d_i (1 - r_i)) per (namespace, surface, item)
    as of ``as_of``, for the items with a training impression."""
    impressions, outcomes = _by_impression(events, as_of)
    weights = params.reward_weights
    evidence: dict[ItemKey, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for key, shown in impressions.items():
        training = [
            e
            for e in shown
            if (e.explore or params.train_on_all_impressions) and e.variant != "control"
        ]
        if not training:
            continue
        shown_at = min(e.occurred_at for e in training)
        counted = _attributed(outcomes[key], shown_at, params)
        reward = max((weights[o.event_type] for o in counted), default=0.0) / params.max_weight
        decay = decay_factor((as_of - shown_at).total_seconds(), params.half_life_seconds)
        item = (key[0], key[1], key[3])
        evidence[item][0] += decay * reward
        evidence[item][1] += decay * (1.0 - reward)
    return {item: (a, b) for item, (a, b) in evidence.items()}


def reference_rollups(
    events: Iterable[LoggedEvent], as_of: datetime, params: PosteriorParameters
) -> dict[tuple, tuple[int, int, int, int, float, float]]:
    """The experiment's metric rollups as of ``as_of``.

    Per (window of the impression's first ingestion, namespace, surface, experiment,
    variant, explore): impressions, impressions with a click / add-to-cart / purchase
    within the attribution window, the reward sum and the sum of squared rewards (weights
    not normalised). Every impression counts here, whatever its variant or ``explore``.
    """
    impressions, outcomes = _by_impression(events, as_of)
    weights = params.reward_weights
    totals: dict[tuple, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0.0])
    for key, shown in impressions.items():
        shown_at = min(e.occurred_at for e in shown)
        first_ingested = min(e.ingested_at for e in shown).timestamp()
        window_start = datetime.fromtimestamp(
            first_ingested // WINDOW_SECONDS * WINDOW_SECONDS, tz=shown_at.tzinfo
        )
        group = (
            window_start,
            key[0],
            key[1],
            max(e.experiment or "" for e in shown),
            max(e.variant or "" for e in shown),
            int(any(e.explore for e in shown)),
        )
        counted = _attributed(outcomes[key], shown_at, params)
        kinds = {o.event_type for o in counted}
        reward = max((weights[o.event_type] for o in counted), default=0.0)
        total = totals[group]
        total[0] += 1
        total[1] += "click" in kinds
        total[2] += "add_to_cart" in kinds
        total[3] += "purchase" in kinds
        total[4] += reward
        total[5] += reward * reward
    return {group: tuple(values) for group, values in totals.items()}
