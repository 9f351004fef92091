"""The propensities of Thompson sampling's choices: the probability that a candidate
lands in each exploration slot, given the posteriors the decision drew from.

Serving puts the candidate with the highest Beta draw in the first exploration slot and
the second highest in the second (docs/serving.md). With ``X_j`` the draw of candidate
``j``, ``F_j`` its distribution function and ``Q_a`` the quantile function of candidate
``a``, substituting ``x = Q_a(u)``:

- ``P(a in slot 1) = integral_0^1 P(no other X_j > x) du = integral prod_j F_j(x) du``
- ``P(a in slot 2) = integral_0^1 P(exactly one X_j > x) du
  = integral sum_j (1 - F_j(x)) prod_{l != j} F_l(x) du``, the second term of the
  Poisson-binomial distribution of how many draws beat ``x``.

Both integrands are smooth and lie between 0 and 1. The integrals are computed by
adaptive Gauss-Kronrod quadrature on panels that crowd towards ``u = 1`` (where an
outsider's winning draws are), panels split until their 21-point Kronrod and 10-point
Gauss values agree; the returned error bound is the sum of those disagreements, which
overstates the Kronrod value's error on these smooth integrands. Panels stop splitting
once the bound is below ``RELATIVE_TOLERANCE`` of the value (or ``ABSOLUTE_TOLERANCE``).
The cost is (nodes x candidates) evaluations of the Beta distribution function per item,
a few hundred nodes: about 2 ms an item in a pool of 17 on one core, and in proportion to
the pool's size beyond that.

Monte Carlo (``monte_carlo_slot_probabilities``) gives every candidate's probabilities at
once at a precision of about ``sqrt(p (1 - p) / draws)``: the cross-check in the tests,
and what off-policy evaluation uses for the policy being evaluated (an unbiased estimate
of its probabilities keeps the estimators unbiased).

References: Russo et al., "A Tutorial on Thompson Sampling" (2018), section 3; for the
quadrature, Piessens et al., QUADPACK (1983), the adaptive rules of ``scipy.integrate.quad``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaincinv, roots_legendre

from bandit_pipeline.policy.thompson import beta_draws, decision_rng, top_k

RELATIVE_TOLERANCE = 1e-5
ABSOLUTE_TOLERANCE = 1e-12
MAX_SLOTS = 2
# The 21-point Gauss-Kronrod rule on [-1, 1] (QUADPACK's qk21): its odd nodes are the
# 10-point Gauss-Legendre rule's, so each panel's error estimate costs no extra evaluation.
_KRONROD_HALF = np.array([
    0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
    0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
    0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
    0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
    0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
])  # fmt: skip
_KRONROD_WEIGHTS_HALF = np.array([
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
    0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
    0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077600525452910, 0.134709217311473325928054001771707,
    0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
])  # fmt: skip
KRONROD_NODES = np.concatenate([-_KRONROD_HALF, [0.0], _KRONROD_HALF[::-1]])
KRONROD_WEIGHTS = np.concatenate(
    [_KRONROD_WEIGHTS_HALF, [0.149445554002916905664936468389821], _KRONROD_WEIGHTS_HALF[::-1]]
)
GAUSS_WEIGHTS = np.zeros(21)  # the 10-point Gauss rule on the same nodes (odd positions)
GAUSS_WEIGHTS[1::2] = roots_legendre(10)[1]
# Initial panel edges in u: quarters of [0, 1], then ever narrower panels towards 0 (where
# a favourite's losing draws are) and towards 1 (an outsider's winning ones), down to
# 4^-20; the adaptive splitting refines where the integrand needs it. (What lies beyond
# 4^-20 of either end weighs less than 1e-12.)
_TAIL = 4.0 ** -np.arange(2, 21, 6)  # 4^-2, 4^-8, 4^-14, 4^-20
_EDGES = np.unique(np.concatenate([[0.0, 0.25, 0.5, 0.75, 1.0], _TAIL, 1.0 - _TAIL]))
_MAX_ROUNDS = 40
_CHUNK = 4_000_000  # nodes x candidates evaluated at once (about 32 MB per array)


@dataclass(frozen=True)
class SlotPropensity:
    """The probability that one candidate lands in each exploration slot (index 0 is the
    first slot), and a bound on the error of each."""

    probabilities: tuple[float, ...]
    error_bounds: tuple[float, ...]


def thompson_slot_propensities(
    alpha: np.ndarray, beta: np.ndarray, target: int, slots: int = MAX_SLOTS
) -> SlotPropensity:
    """The probabilities that candidate ``target`` takes slot 1, ..., ``slots`` when one
    Beta(alpha_j, beta_j) draw per candidate is taken and the highest draws win in order.

    ``alpha`` and ``beta`` hold the *eligible* candidates only (the ones a decision could
    choose): excluded candidates are drawn in serving but cannot win, so they do not
    change the probabilities. ``slots`` is 1 or 2.
    """
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"slots must be 1..{MAX_SLOTS}")
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    others = np.ones(len(alpha), dtype=bool)
    others[target] = False
    n_others = int(others.sum())
    if n_others == 0:  # alone: it takes the first slot
        return SlotPropensity((1.0, 0.0)[:slots], (0.0, 0.0)[:slots])
    if slots == 2 and n_others == 1:  # two candidates: it is first or second
        first = thompson_slot_propensities(alpha, beta, target, 1)
        p, e = first.probabilities[0], first.error_bounds[0]
        return SlotPropensity((p, 1.0 - p), (e, e))
    integrand = _Integrand(alpha[target], beta[target], alpha[others], beta[others], slots)
    values, errors, _, _ = _integrate(integrand)
    return _result(values, errors)


def _result(values: np.ndarray, errors: np.ndarray) -> SlotPropensity:
    return SlotPropensity(
        tuple(float(min(max(p, 0.0), 1.0)) for p in values),
        tuple(float(b) for b in errors),
    )


class SnapshotPropensities:
    """Propensities on one snapshot for decisions that each exclude a few candidates
    (the ranker's items, the user's recent ones), as ``thompson_slot_propensities`` over
    the eligible ones would give them.

    Per target, the quadrature's panels are found once on the whole snapshot and every
    candidate's distribution function is kept at their nodes; a decision then costs
    products over the kept values of its eligible candidates, not new evaluations. The
    decision's own error estimate is computed on those panels, and when it is above the
    tolerance (its exclusions moved the integrand where the panels are coarse) the
    decision is computed from scratch."""

    def __init__(self, alpha: np.ndarray, beta: np.ndarray) -> None:
        self.alpha = np.asarray(alpha, dtype=float)
        self.beta = np.asarray(beta, dtype=float)
        self._kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # target -> half, cdf
        self.from_scratch = 0  # decisions the kept panels could not serve

    def slot_propensities(
        self, target: int, excluded: Collection[int], slots: int = MAX_SLOTS
    ) -> SlotPropensity:
        """The probabilities that ``target`` takes each slot when ``excluded`` cannot win."""
        eligible = np.array([i for i in range(len(self.alpha)) if i not in excluded], np.intp)
        index = int(np.searchsorted(eligible, target))
        if len(eligible) <= 2 or not 1 <= slots <= MAX_SLOTS:
            return thompson_slot_propensities(
                self.alpha[eligible], self.beta[eligible], index, slots
            )
        half, cdf = self._panels(target)
        others = eligible[eligible != target]
        values = _rows(cdf[:, others], slots).reshape(slots, len(half), len(KRONROD_NODES))
        kronrod = (values @ KRONROD_WEIGHTS) * half[None, :]
        gauss = (values @ GAUSS_WEIGHTS) * half[None, :]
        totals = kronrod.sum(axis=1)
        errors = np.abs(kronrod - gauss).sum(axis=1)
        if np.all(errors <= np.maximum(RELATIVE_TOLERANCE * totals, ABSOLUTE_TOLERANCE)):
            return _result(totals, errors)
        self.from_scratch += 1
        return thompson_slot_propensities(self.alpha[eligible], self.beta[eligible], index, slots)

    def _panels(self, target: int) -> tuple[np.ndarray, np.ndarray]:
        """The half-widths of the target's panels on the whole snapshot, and every
        candidate's distribution function at their nodes (nodes x candidates; the
        target's own column is never read)."""
        if target not in self._kept:
            others = np.arange(len(self.alpha)) != target
            record: list[tuple[np.ndarray, np.ndarray]] = []
            integrand = _Integrand(
                self.alpha[target], self.beta[target], self.alpha[others], self.beta[others],
                MAX_SLOTS, record,
            )  # fmt: skip
            _, _, lows, highs = _integrate(integrand)
            # The final panels' nodes were all evaluated on the way (as _panel_rules
            # computes them): their values are looked up, not computed again.
            half = (highs - lows) / 2
            u = ((highs + lows)[:, None] / 2 + half[:, None] * KRONROD_NODES[None, :]).ravel()
            seen = np.concatenate([nodes for nodes, _ in record])
            values = np.concatenate([cdf for _, cdf in record])
            order = np.argsort(seen, kind="stable")
            found = order[np.searchsorted(seen[order], u)]
            cdf = np.ones((len(u), len(self.alpha)))
            cdf[:, others] = values[found]
            self._kept[target] = (half, cdf)
        return self._kept[target]


class _Integrand:
    """``u -> (P(no other beats Q(u)), P(exactly one other beats Q(u)))`` for one target."""

    def __init__(
        self,
        a: float,
        b: float,
        alpha: np.ndarray,
        beta: np.ndarray,
        slots: int,
        record: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        self.a, self.b = a, b
        self.alpha, self.beta = alpha[None, :], beta[None, :]
        self.slots = slots
        self.record = record  # (nodes, distribution functions there), when kept

    def __call__(self, u: np.ndarray) -> np.ndarray:
        out = np.empty((self.slots, len(u)))
        step = max(1, _CHUNK // self.alpha.shape[1])
        for start in range(0, len(u), step):
            part = slice(start, start + step)
            x = betaincinv(self.a, self.b, u[part])
            cdf = betainc(self.alpha, self.beta, x[:, None])  # (nodes, others)
            out[:, part] = _rows(cdf, self.slots)
            if self.record is not None:
                self.record.append((u[part], cdf))
        return out


def _rows(cdf: np.ndarray, slots: int) -> np.ndarray:
    """The integrands at each node from the others' distribution functions there
    (nodes x others): no other draw beats the target's, and (slot 2) exactly one does."""
    out = np.empty((slots, cdf.shape[0]))
    out[0] = np.prod(cdf, axis=1)
    if slots == 2:
        # sum_j (1 - F_j) prod_{l != j} F_l, from prefix and suffix products (no
        # division, so exact zeros are fine).
        ones = np.ones((cdf.shape[0], 1))
        prefix = np.cumprod(np.concatenate([ones, cdf[:, :-1]], axis=1), axis=1)
        suffix = np.cumprod(np.concatenate([ones, cdf[:, :0:-1]], axis=1), axis=1)[:, ::-1]
        out[1] = np.sum((1.0 - cdf) * prefix * suffix, axis=1)
    return out


def _integrate(integrand: _Integrand) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Globally adaptive Gauss-Kronrod over [0, 1] of each row of ``integrand``: the sum
    of the panels' Kronrod values, and the sum of their |Kronrod - Gauss| differences as
    the error bound, and the final panels' edges. Each round splits the panels whose
    difference is above an even share of the allowed error, until the whole difference
    is within it."""
    lows, highs = _EDGES[:-1], _EDGES[1:]
    fine, difference = _panel_rules(integrand, lows, highs)
    for _ in range(_MAX_ROUNDS):
        total, error = fine.sum(axis=1), difference.sum(axis=1)
        allowed = np.maximum(RELATIVE_TOLERANCE * total, ABSOLUTE_TOLERANCE)
        if np.all(error <= allowed):
            break
        split = np.any(difference > (allowed / len(lows))[:, None], axis=0)
        middles = (lows[split] + highs[split]) / 2
        new_lows = np.concatenate([lows[split], middles])
        new_highs = np.concatenate([middles, highs[split]])
        new_fine, new_difference = _panel_rules(integrand, new_lows, new_highs)
        keep = ~split
        lows = np.concatenate([lows[keep], new_lows])
        highs = np.concatenate([highs[keep], new_highs])
        fine = np.concatenate([fine[:, keep], new_fine], axis=1)
        difference = np.concatenate([difference[:, keep], new_difference], axis=1)
    return fine.sum(axis=1), difference.sum(axis=1), lows, highs


def _panel_rules(
    integrand: _Integrand, lows: np.ndarray, highs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each panel's 21-point Gauss-Kronrod value and its difference from the 10-point
    Gauss value on the same nodes, per integrand row."""
    half = (highs - lows) / 2
    middle = (highs + lows) / 2
    u = (middle[:, None] + half[:, None] * KRONROD_NODES[None, :]).ravel()
    values = integrand(u).reshape(integrand.slots, len(lows), len(KRONROD_NODES))
    kronrod = (values @ KRONROD_WEIGHTS) * half[None, :]
    gauss = (values @ GAUSS_WEIGHTS) * half[None, :]
    return kronrod, np.abs(kronrod - gauss)


def monte_carlo_slot_probabilities(
    alpha: np.ndarray,
    beta: np.ndarray,
    slots: int,
    rng: np.random.Generator,
    draws: int = 100_000,
) -> np.ndarray:
    """Monte Carlo estimate of every candidate's probability of each slot, shape
    (candidates, slots): ``draws`` Thompson decisions over the candidates given (the
    eligible ones). Its standard error is ``sqrt(p (1 - p) / draws)``."""
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    n = len(alpha)
    counts = np.zeros((n, slots))
    batch = max(1, 2_000_000 // max(n, 1))
    for start in range(0, draws, batch):
        size = min(batch, draws - start)
        samples = rng.beta(alpha[None, :], beta[None, :], size=(size, n))
        order = np.argsort(-samples, axis=1)[:, :slots]
        for slot in range(min(slots, n)):
            counts[:, slot] += np.bincount(order[:, slot], minlength=n)
    return counts / draws


def replay_choice(
    policy_id: str,
    alpha: np.ndarray,
    beta: np.ndarray,
    seed: int,
    k: int,
    excluded: Collection[int],
) -> tuple[list[int], list[float]]:
    """The choice a recorded decision made, recomputed from its seed by the replay rule of
    its policy id (docs/serving.md, "The trace and offline propensities"): the positions
    of the winners in the candidate arrays, best first, and their draws."""
    if policy_id == "thompson-beta-v1":
        eligible = np.array([i for i in range(len(alpha)) if i not in set(excluded)], np.intp)
        draws = np.random.default_rng(seed).beta(alpha[eligible], beta[eligible])
        chosen, scores = top_k(draws, k)
        return [int(eligible[i]) for i in chosen], scores
    if policy_id == "thompson-beta-v2":
        return top_k(decision_rng(seed).beta(alpha, beta), k, excluded)
    return top_k(beta_draws(alpha, beta, decision_rng(seed)), k, excluded)
