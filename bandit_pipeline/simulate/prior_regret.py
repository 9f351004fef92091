"""What the prior costs: a closed-loop simulation of the exploration policy alone, with the
fixed and the empirical prior, on the same seed and the same traffic.

The dry run's pipeline serves one prior. To show what each would cost on the same shop,
this runs the policy (Thompson sampling over Beta posteriors, one exploration slot per
request, the posteriors updated at the end of every 15-minute window with the decay, as
the job does) against the shop's hidden rates once per prior, with common random
numbers: the same requests, the same outcome of a given item shown in a given request,
the same launch times. The empirical prior is refitted at each window's end with the
product's own fit (``policy/prior.py``) and the settings' fit parameters.

A shop keeps adding items: a third of the dry run's fresh items are taken to have
launched earlier and graduated (each with enough impressions of history per surface to
have left the pool: the evidence the empirical prior is fitted to), and the others
launch one after another through the first day and stay in the pool (the dry run does
not graduate items within its run either). What the prior decides is how long each
newcomer is over-shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from bandit_pipeline.policy.posterior import PosteriorParameters
from bandit_pipeline.policy.prior import PriorFitParameters, fit_prior
from bandit_pipeline.simulate.shop import SURFACE_CLICK_FACTOR, Shop, ShopOptions
from bandit_pipeline.timing import WINDOW

GRADUATED_SHARE = 1 / 3  # of the fresh items: launched and graduated before the start
SIMULATED = timedelta(days=1)  # the first simulated day


@dataclass(frozen=True)
class PriorRegretWindow:
    """Cumulative regret at the end of a window, summed over surfaces: the true expected
    reward of the best launched item minus that of the item shown, per explore slot."""

    window_start: datetime
    fixed: float
    empirical: float
    uniform: float


def _reward(shop: Shop, item: str, surface: str, at: datetime, u: np.ndarray) -> float:
    """The normalised reward of one impression, drawn with the uniforms ``u`` (the same
    ``u`` gives every policy the same outcome for the same item in the same request)."""
    spec = shop.item(item)
    weights = shop.weights
    if u[0] >= shop.click_rate(item, surface, at):
        return 0.0
    best = weights["click"]
    if u[1] < spec.cart_rate:
        best = max(best, weights["add_to_cart"])
        if u[2] < spec.buy_rate:
            best = max(best, weights["purchase"])
    return best / max(weights.values())


class _Policy:
    """Per surface, the evidence of every item and the prior new evidence is added to."""

    def __init__(
        self, items: list[str], surfaces: list[str], seed: int, fixed: tuple[float, float]
    ):
        self.rng = np.random.default_rng(seed)
        self.evidence = {s: np.zeros((2, len(items))) for s in surfaces}
        self.prior = dict.fromkeys(surfaces, fixed)
        self.regret = 0.0

    def choose(self, surface: str, launched: np.ndarray) -> int:
        alpha0, beta0 = self.prior[surface]
        evidence = self.evidence[surface]
        draws = self.rng.beta(alpha0 + evidence[0, launched], beta0 + evidence[1, launched])
        return int(launched[np.argmax(draws)])


def simulate_prior_regret(
    options: ShopOptions,
    start: datetime,
    params: PosteriorParameters,
    fit: PriorFitParameters,
    history_impressions: float,
) -> list[PriorRegretWindow]:
    """The cumulative regret of each window of the first simulated day (or of the whole
    run when shorter), for the fixed
    prior of ``params`` and the empirical prior fitted with ``fit``; each graduated item
    has ``history_impressions`` impressions of history per surface."""
    shop = Shop(options, start, params.reward_weights)
    items = [item.item_id for item in shop.fresh_items]
    surfaces = sorted(SURFACE_CLICK_FACTOR)
    veterans = round(len(items) * GRADUATED_SHARE)
    newcomers = len(items) - veterans
    history = math.ceil(history_impressions)
    # Graduated items are out of the pool (launched "after" the day); newcomers launch
    # one by one, the first at the start.
    launch = np.array(
        [math.inf] * veterans
        + [k / newcomers * SIMULATED.total_seconds() for k in range(newcomers)]
    )
    fixed = (params.prior_alpha, params.prior_beta)
    policies = {
        "fixed": _Policy(items, surfaces, options.seed, fixed),
        "empirical": _Policy(items, surfaces, options.seed, fixed),
    }
    draws = np.random.default_rng(options.seed + 2)
    for surface in surfaces:
        for i in range(veterans):
            rewards = sum(
                _reward(shop, items[i], surface, start, draws.random(3)) for _ in range(history)
            )
            for policy in policies.values():
                policy.evidence[surface][:, i] = (rewards, history - rewards)
    outcomes = np.random.default_rng(options.seed + 3)
    keep = 0.5 ** (WINDOW.total_seconds() / params.half_life_seconds)
    uniform = 0.0
    series = []
    for n in range(round(min(SIMULATED, timedelta(days=options.days)) / WINDOW)):
        window_start = start + n * WINDOW
        _refit(policies["empirical"], fit, fixed)
        added = {name: {s: np.zeros((2, len(items))) for s in surfaces} for name in policies}
        for request in shop.requests(window_start, WINDOW):
            elapsed = (request.at - start).total_seconds()
            launched = np.flatnonzero(launch <= elapsed)
            if not len(launched):
                continue
            truth = np.array(
                [shop.expected_reward(items[i], request.surface, request.at) for i in launched]
            )
            best = truth.max()
            uniform += best - truth.mean()
            u = outcomes.random(3)
            for name, policy in policies.items():
                chosen = policy.choose(request.surface, launched)
                policy.regret += best - truth[np.searchsorted(launched, chosen)]
                reward = _reward(shop, items[chosen], request.surface, request.at, u)
                added[name][request.surface][:, chosen] += (reward, 1.0 - reward)
        for name, policy in policies.items():
            for surface in surfaces:
                policy.evidence[surface] = policy.evidence[surface] * keep + added[name][surface]
        series.append(
            PriorRegretWindow(
                window_start, policies["fixed"].regret, policies["empirical"].regret, uniform
            )
        )
    return series


def _refit(policy: _Policy, fit: PriorFitParameters, fixed: tuple[float, float]) -> None:
    """Each surface's empirical prior from the evidence as of the window's start."""
    for surface, evidence in policy.evidence.items():
        fitted = fit_prior(evidence[0], evidence[1], fit, *fixed)
        policy.prior[surface] = (fitted.alpha, fitted.beta)
