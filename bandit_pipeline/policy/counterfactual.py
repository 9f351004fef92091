"""The posterior definition (docs/posterior.md) evaluated with other parameters at many
times at once: what a candidate policy with other weights, half-life or attribution
window would have sampled from at each logged decision, had it seen the same events.

Each training impression becomes evidence increments, each at the time it became
visible to the warehouse: one unit of evidence (reward 0) when its first impression
event was ingested, then each attributed outcome's raise of the reward (the largest
weight so far, over the largest weight) at that outcome's ingestion, or at the
impression's if the outcome came first. The evidence as of ``T`` is then the decayed sum
of the increments visible before ``T``: a sorted prefix and one weighted count per item,
where ``policy.reference`` walks every event for every ``T``. The tests hold the two
together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bandit_pipeline.policy.posterior import PosteriorParameters


@dataclass(frozen=True)
class TrainingImpression:
    """One impression event of ``bandit_rewards`` (times in epoch seconds)."""

    key: tuple[str, str, str, str]  # namespace, surface, request_id, item_id
    occurred: float
    ingested: float
    explore: bool
    variant: str | None


@dataclass(frozen=True)
class Outcome:
    """One outcome event of ``bandit_rewards`` (times in epoch seconds)."""

    key: tuple[str, str, str, str]
    event_type: str
    occurred: float
    ingested: float


@dataclass(frozen=True)
class EvidenceIncrements:
    """Evidence changes sorted by the time they became visible; ``items`` index into
    ``item_keys`` ((surface, item_id) pairs)."""

    item_keys: list[tuple[str, str]]
    items: np.ndarray
    shown: np.ndarray
    times: np.ndarray
    d_alpha: np.ndarray
    d_beta: np.ndarray


def evidence_increments(
    impressions: Iterable[TrainingImpression],
    outcomes: Iterable[Outcome],
    params: PosteriorParameters,
) -> EvidenceIncrements:
    """The increments of every training impression under ``params``."""
    shown: dict[tuple, float] = {}
    visible: dict[tuple, float] = {}
    for event in impressions:
        if not (event.explore or params.train_on_all_impressions) or event.variant == "control":
            continue
        shown[event.key] = min(shown.get(event.key, event.occurred), event.occurred)
        visible[event.key] = min(visible.get(event.key, event.ingested), event.ingested)
    by_key: dict[tuple, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.key in shown:
            by_key[outcome.key].append(outcome)
    weights, top = params.reward_weights, params.max_weight
    index: dict[tuple[str, str], int] = {}
    rows: list[tuple[int, float, float, float, float]] = []
    for key, at in shown.items():
        item = index.setdefault((key[1], key[3]), len(index))
        seen = visible[key]
        rows.append((item, at, seen, 0.0, 1.0))
        reward = 0.0
        counted = [o for o in by_key.get(key, ()) if o.occurred - at <= params.attribution_seconds]
        for outcome in sorted(counted, key=lambda o: max(o.ingested, seen)):
            raised = max(reward, weights[outcome.event_type] / top)
            if raised > reward:
                when = max(outcome.ingested, seen)
                rows.append((item, at, when, raised - reward, reward - raised))
                reward = raised
    table = np.array(rows, dtype=float).reshape(-1, 5)
    order = np.argsort(table[:, 2], kind="stable")
    table = table[order]
    return EvidenceIncrements(
        item_keys=list(index),
        items=table[:, 0].astype(np.intp),
        shown=table[:, 1],
        times=table[:, 2],
        d_alpha=table[:, 3],
        d_beta=table[:, 4],
    )


def posteriors_as_of(
    increments: EvidenceIncrements,
    as_of: float,
    items: list[tuple[str, str]],
    params: PosteriorParameters,
) -> tuple[np.ndarray, np.ndarray]:
    """alpha and beta of each (surface, item_id) in ``items`` as of ``as_of`` (epoch
    seconds): the prior plus the decayed increments visible before then."""
    visible = int(np.searchsorted(increments.times, as_of, side="left"))
    elapsed = as_of - increments.shown[:visible]
    decay = np.where(elapsed > 0, 0.5 ** (np.maximum(elapsed, 0) / params.half_life_seconds), 1.0)
    n = len(increments.item_keys)
    alpha_evidence = np.bincount(
        increments.items[:visible], weights=decay * increments.d_alpha[:visible], minlength=n
    )
    beta_evidence = np.bincount(
        increments.items[:visible], weights=decay * increments.d_beta[:visible], minlength=n
    )
    lookup = {key: i for i, key in enumerate(increments.item_keys)}
    positions = [lookup.get(item, -1) for item in items]
    alpha = np.array([alpha_evidence[p] if p >= 0 else 0.0 for p in positions])
    beta = np.array([beta_evidence[p] if p >= 0 else 0.0 for p in positions])
    # Float sums of +d and -d can leave -1e-17 where the evidence is 0.
    return params.prior_alpha + np.maximum(alpha, 0.0), params.prior_beta + np.maximum(beta, 0.0)
