"""Candidate policies for off-policy evaluation, and the probability that each puts each
eligible item in each exploration slot of a logged decision (docs/data-science.md).

A candidate is named by a spec, ``--policy`` of ``bandit-pipeline evaluate``:

- ``served``: Thompson sampling on the logged snapshot, as served (a sanity check: its
  estimates should match the observed reward);
- ``thompson:KEY=VALUE,...``: Thompson sampling on posteriors computed with other
  parameters: ``prior_alpha``, ``prior_beta``, ``half_life_days``, ``weight_click``,
  ``weight_add_to_cart``, ``weight_purchase``, ``attribution_window_hours``,
  ``train_on_all_impressions`` (the ``BANDIT_*`` settings of the same names), and
  ``prior_mode=fixed|empirical`` (the empirical prior each snapshot's window would have
  fitted; not with the settings that need the events);
- ``greedy[:KEY=VALUE,...]``: the items with the highest posterior means, always;
- ``uniform``: uniform random choice among the eligible items;
- ``freshest``: the eligible items with the highest catalog ``freshness_index``;
- ``scores:PATH``: the eligible items the ranker scores highest, its scores of the
  fresh items in a file (JSON object or CSV ``item_id,score``): "the ranker's top fresh
  item".

Every candidate chooses among the items the logged decision could choose (its snapshot
less the items the ranker showed and the user's recent ones), for as many slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bandit_pipeline.policy.prior import PRIOR_MODES
from bandit_pipeline.policy.propensity import monte_carlo_slot_probabilities

KINDS = ("served", "thompson", "greedy", "uniform", "freshest", "scores")
PRIOR_KEYS = frozenset({"prior_alpha", "prior_beta", "prior_mode"})
EVENT_KEYS = frozenset(
    {
        "half_life_days",
        "weight_click",
        "weight_add_to_cart",
        "weight_purchase",
        "attribution_window_hours",
        "train_on_all_impressions",
    }
)


@dataclass(frozen=True)
class CandidatePolicy:
    """A parsed ``--policy`` spec."""

    spec: str
    kind: str
    overrides: dict[str, float | bool | str] = field(default_factory=dict)
    scores_path: str | None = None

    @property
    def uses_posteriors(self) -> bool:
        """Whether it draws on (or ranks by) posteriors."""
        return self.kind in ("served", "thompson", "greedy")

    @property
    def recomputes_evidence(self) -> bool:
        """Whether its posteriors need the events (not only the logged snapshot)."""
        return bool(EVENT_KEYS & self.overrides.keys())


def parse_policy(spec: str) -> CandidatePolicy:
    """The candidate named by ``spec``; ValueError says what is wrong with it."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"policy {spec!r}: expected one of {', '.join(KINDS)}")
    if kind == "scores":
        if not rest:
            raise ValueError(f"policy {spec!r}: give the scores file, scores:PATH")
        return CandidatePolicy(spec, kind, scores_path=rest)
    if rest and kind not in ("thompson", "greedy"):
        raise ValueError(f"policy {spec!r}: {kind} takes no settings")
    overrides: dict[str, float | bool | str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, equals, value = part.partition("=")
        key = key.strip().lower().removeprefix("bandit_").replace("reward_weight_", "weight_")
        if not equals or key not in PRIOR_KEYS | EVENT_KEYS:
            raise ValueError(
                f"policy {spec!r}: {part!r} is not KEY=VALUE with KEY one of "
                f"{', '.join(sorted(PRIOR_KEYS | EVENT_KEYS))}"
            )
        if key == "prior_mode":
            if value.strip() not in PRIOR_MODES:
                raise ValueError(f"policy {spec!r}: prior_mode is one of {', '.join(PRIOR_MODES)}")
            overrides[key] = value.strip()
            continue
        if key == "train_on_all_impressions":
            overrides[key] = value.strip().lower() in ("1", "true", "yes", "t")
            continue
        try:
            overrides[key] = float(value)
        except ValueError:
            raise ValueError(f"policy {spec!r}: {key} must be a number") from None
    if overrides.get("prior_mode") == "empirical" and EVENT_KEYS & overrides.keys():
        raise ValueError(
            f"policy {spec!r}: prior_mode=empirical cannot be combined with "
            f"{', '.join(sorted(EVENT_KEYS & overrides.keys()))}"
        )
    return CandidatePolicy(spec, kind, overrides)


def slot_probabilities(
    policy: CandidatePolicy,
    n: int,
    slots: int,
    rng: np.random.Generator,
    *,
    alpha: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    draws: int = 4_000,
    samples: np.ndarray | None = None,
) -> np.ndarray:
    """The candidate's probability of putting each of the ``n`` eligible items in each
    slot, shape (n, slots). Thompson sampling's is a Monte Carlo estimate over ``draws``
    decisions (unbiased, so the estimators built on it stay unbiased); the others are
    exact. ``alpha``/``beta`` are the eligible items' posteriors under the candidate's
    parameters, ``scores`` their ranking scores (higher first; ties by position).
    ``samples`` (draws x n), when given, are Thompson's Beta draws to use: decisions that
    share a snapshot can share them."""
    if policy.kind == "uniform":
        probabilities = np.zeros((n, slots))
        probabilities[:, : min(slots, n)] = 1.0 / n
        return probabilities
    if policy.kind in ("served", "thompson"):
        if samples is None:
            return monte_carlo_slot_probabilities(alpha, beta, slots, rng, draws)
        return slot_frequencies(samples, slots)
    if policy.kind == "greedy":
        scores = alpha / (alpha + beta)  # type: ignore[operator]
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    probabilities = np.zeros((n, slots))
    for slot, item in enumerate(order[:slots]):
        probabilities[item, slot] = 1.0
    return probabilities


def slot_frequencies(samples: np.ndarray, slots: int) -> np.ndarray:
    """How often each column of ``samples`` (draws x n) has the highest value, the second
    highest, ...: shape (n, slots)."""
    draws, n = samples.shape
    frequencies = np.zeros((n, slots))
    values = samples.copy()
    rows = np.arange(draws)
    for slot in range(min(slots, n)):
        best = values.argmax(axis=1)
        frequencies[:, slot] = np.bincount(best, minlength=n) / draws
        values[rows, best] = -np.inf
    return frequencies
