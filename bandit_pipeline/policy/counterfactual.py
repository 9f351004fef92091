"""The posterior definition (docs/posterior.md) evaluated with other parameters at many
times at once: what a candidate policy with other weights, half-life or attribution
window would have sampled from at each logged decision, had it seen the same events.

Each training impression becomes evidence increments, each at the time it became
visible to the warehouse: its unit of evidence, split by its reward, when its first
impression event was ingested, and a correction whenever a later event changes its
reward (an outcome arrives) or its time (an earlier-dated copy arrives). The evidence
as of ``T`` is then the decayed sum of the increments visible before ``T``: a sorted
prefix and one weighted count per item, where ``policy.reference`` walks every event for
every ``T``. The tests hold the two together.
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
    """The increments of every training impression under ``params``.

    An impression's state as of ``T`` follows from its events ingested before ``T``: it is
    shown at the earliest occurrence among its training impression events, and its reward
    is the largest weight among the outcomes within the attribution window of that time.
    The state changes only when one of its events is ingested; each change adds the new
    state's evidence and takes the old one's away (a re-sent impression dated earlier
    moves it)."""
    events: dict[tuple, list[tuple[float, int, object]]] = defaultdict(list)
    for event in impressions:
        if (event.explore or params.train_on_all_impressions) and event.variant != "control":
            events[event.key].append((event.ingested, 0, event))
    for outcome in outcomes:
        if outcome.key in events:
            events[outcome.key].append((outcome.ingested, 1, outcome))
    weights, top = params.reward_weights, params.max_weight
    index: dict[tuple[str, str], int] = {}
    rows: list[tuple[int, float, float, float, float]] = []
    for key, timeline in events.items():
        item = index.setdefault((key[1], key[3]), len(index))
        timeline.sort(key=lambda entry: (entry[0], entry[1]))
        shown: float | None = None
        visible_outcomes: list[Outcome] = []
        state: tuple[float, float] | None = None  # (shown, reward) as counted so far
        for position, (ingested, kind, event) in enumerate(timeline):
            if kind == 0:
                shown = event.occurred if shown is None else min(shown, event.occurred)
            else:
                visible_outcomes.append(event)
            if position + 1 < len(timeline) and timeline[position + 1][0] == ingested:
                continue  # the state as of just after this instant counts all its events
            if shown is None:
                continue
            reward = max(
                (weights[o.event_type] / top for o in visible_outcomes
                 if o.occurred - shown <= params.attribution_seconds),
                default=0.0,
            )  # fmt: skip
            if state == (shown, reward):
                continue
            if state is not None:
                rows.append((item, state[0], ingested, -state[1], state[1] - 1.0))
            rows.append((item, shown, ingested, reward, 1.0 - reward))
            state = (shown, reward)
    table = np.array(rows, dtype=float).reshape(-1, 5)
    table = table[np.argsort(table[:, 2], kind="stable")]
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
