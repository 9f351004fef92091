"""Thompson sampling over Beta posteriors (docs/serving.md): pure, seedable, vectorised.

A decision's draws are inverse-transform samples: ``draw_i = F_i^-1(u_i)`` where ``F_i`` is
the Beta(alpha_i, beta_i) distribution function and ``u`` the decision generator's
uniforms, one per candidate in candidate order. That is an exact Beta draw, and it is
monotone in ``u_i``, so a decision need not invert every candidate's distribution:
``QuantileBounds`` keeps a few quantiles per candidate (built once per snapshot), which
bound each draw from its uniform alone, and ``BoundedDraws`` inverts only the candidates
whose bound could still reach the winners. The choice is the one ``thompson_top_k`` makes
over all the draws, which is how a recorded decision replays offline.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

import numpy as np
from scipy.special import betaincinv

_MASK64 = (1 << 64) - 1
# PCG64's stream increment for decision generators: any odd constant, fixed forever so a
# recorded seed replays the same draws.
_DECISION_INCREMENT = 0xDA3E39CB94B95BDB
_local = threading.local()
_ARGMAX_UP_TO = 4
_ASSIGN_ONE_BY_ONE_UP_TO = 16


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def decision_rng(seed: int) -> np.random.Generator:
    """The random generator of one decision, a pure function of ``seed``.

    The seed, scrambled by splitmix64, is the high half of PCG64's 128-bit state and
    the seed itself the low half, so nearby seeds give unrelated streams. Setting the
    state of a per-thread generator costs about 1 µs, where building a seeded generator
    costs about 8 µs (it hashes the seed); so the generator returned is reused by the
    next call on the same thread.
    """
    generator = getattr(_local, "generator", None)
    if generator is None:
        generator = _local.generator = np.random.Generator(np.random.PCG64(0))
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": (_splitmix64(seed) << 64) | (seed & _MASK64),
            "inc": _DECISION_INCREMENT,
        },
        "has_uint32": 0,
        "uinteger": 0,
    }
    return generator


def thompson_top_k(
    alpha: np.ndarray,
    beta: np.ndarray,
    k: int,
    rng: np.random.Generator,
    excluded: Collection[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """One Beta(alpha_i, beta_i) draw per candidate; the ``k`` highest draws win.

    Positions in ``excluded`` are drawn like the others (so the draws of the rest do not
    depend on which are excluded) but cannot win. Returns the winners' positions in the
    input arrays, best first, and their draws. With fewer than ``k`` eligible candidates
    every eligible candidate wins.
    """
    chosen, scores = top_k(beta_draws(alpha, beta, rng), k, excluded)
    return np.array(chosen, dtype=np.intp), np.array(scores)


def beta_draws(alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per candidate, in candidate order (what a decision's seed replays): the
    Beta quantile of one uniform each."""
    return betaincinv(alpha, beta, rng.random(len(alpha)))


def top_k(
    draws: np.ndarray, k: int, excluded: Collection[int] = ()
) -> tuple[list[int], list[float]]:
    """Positions of the ``k`` highest draws outside ``excluded``, best first, and the draws.

    ``draws`` is modified: excluded and chosen positions are set below any Beta draw.
    """
    if len(excluded) > _ASSIGN_ONE_BY_ONE_UP_TO:
        draws[list(excluded)] = -np.inf
    else:
        for position in excluded:
            draws[position] = -np.inf
    k = min(k, len(draws))
    if k > _ARGMAX_UP_TO:
        top = np.argpartition(draws, len(draws) - k)[len(draws) - k :]
        order = top[np.argsort(-draws[top], kind="stable")]
        order = order[np.isfinite(draws[order])]
        return order.tolist(), draws[order].tolist()
    # The few exploration slots: one pass per slot beats partitioning the whole array.
    chosen, scores = [], []
    for _ in range(k):
        best = int(draws.argmax())
        score = float(draws[best])
        if score == -np.inf:
            break
        chosen.append(best)
        scores.append(score)
        draws[best] = -np.inf
    return chosen, scores


# Cells of the uniform by how close it is to 1: cell c holds the u with 1 - u in
# [2^-c, 2^-(c-1)), which is read off the exponent of 1 - u (exact for the multiples of
# 2^-53 that Generator.random returns); cells past TAIL_CELLS share the last one. Cell 0
# is u = 0 alone. So the bounds are tight where winners are drawn: near u = 1.
TAIL_CELLS = 11
_LEVELS = np.concatenate([[0.0], 1.0 - 2.0 ** -np.arange(0, TAIL_CELLS), [1.0]])
_EXPONENT_ONE = 1023  # IEEE 754 biased exponent of 1.0
# Candidates whose upper bound is this close below the winners' lower bound are inverted
# too: betaincinv is monotone in u to far better than this, so nothing is pruned that
# rounding could have let win.
_SLACK = 1e-9


class QuantileBounds:
    """Per candidate the Beta quantiles at the cell edges, ``table[i, c] <= draw_i <=
    table[i, c + 1]`` for a uniform in cell ``c``; built once per snapshot, off the
    request path (10 quantiles a candidate). Kept as one complex number per cell, its
    two edges as real and imaginary parts, so that a decision looks up both bounds of a
    draw in one gather."""

    def __init__(self, alpha: np.ndarray, beta: np.ndarray, cells: np.ndarray) -> None:
        self.alpha = alpha
        self.beta = beta
        self.cells = cells
        self._flat = cells.ravel()
        # Flat index of row i, cell c: the row offset plus c, with c = _EXPONENT_ONE minus
        # the biased exponent of 1 - u; folded into one subtraction per decision.
        self._offsets = np.arange(len(alpha), dtype=np.int64) * cells.shape[1] + _EXPONENT_ONE

    @classmethod
    def build(cls, alpha: np.ndarray, beta: np.ndarray) -> QuantileBounds:
        alpha = np.ascontiguousarray(alpha, dtype=float)
        beta = np.ascontiguousarray(beta, dtype=float)
        table = np.empty((len(alpha), len(_LEVELS)))
        table[:, 0] = table[:, 1] = 0.0
        table[:, -1] = 1.0
        inner = _LEVELS[2:-1]
        table[:, 2:-1] = betaincinv(alpha[:, None], beta[:, None], inner[None, :])
        cells = np.empty((len(alpha), len(_LEVELS) - 1), dtype=complex)
        cells.real, cells.imag = table[:, :-1], table[:, 1:]
        return cls(alpha, beta, cells)

    @property
    def table(self) -> np.ndarray:
        """The quantiles at the cell edges, one row per candidate."""
        return np.concatenate([self.cells.real, self.cells.imag[:, -1:]], axis=1)

    def subset(self, positions: np.ndarray, fill: QuantileBounds) -> QuantileBounds:
        """The candidates at ``positions`` in that order; a position of -1 takes
        ``fill``'s only candidate (the prior, for items without a posterior)."""
        missing = positions < 0
        rows = np.where(missing, 0, positions)
        alpha, beta, cells = self.alpha[rows], self.beta[rows], self.cells[rows]
        if missing.any():
            alpha[missing], beta[missing], cells[missing] = (
                fill.alpha[0],
                fill.beta[0],
                fill.cells[0],
            )
        return QuantileBounds(alpha, beta, cells)

    def sample(self, rng: np.random.Generator) -> BoundedDraws:
        """This decision's uniforms and the bounds of its draws; no quantile inverted yet."""
        u = rng.random(len(self.alpha))
        exponent = (1.0 - u).view(np.int64) >> 52
        np.maximum(exponent, _EXPONENT_ONE - TAIL_CELLS, out=exponent)
        bounds = self._flat[self._offsets - exponent]
        return BoundedDraws(self, u, bounds.real, bounds.imag)


class BoundedDraws:
    """The draws of one decision, known by their bounds until a choice needs them."""

    def __init__(self, bounds: QuantileBounds, u: np.ndarray, lower: np.ndarray, upper: np.ndarray):
        self.bounds = bounds
        self.u = u
        self.lower = lower
        self.upper = upper

    def top_k(self, k: int, excluded: Collection[int] = ()) -> tuple[list[int], list[float]]:
        """What ``top_k(beta_draws(...), k, excluded)`` returns for the same uniforms,
        inverting only the candidates that could be among the winners: every candidate
        whose upper bound reaches the k-th highest lower bound of the eligible ones."""
        lower = self.lower.copy()
        if excluded:
            lower[list(excluded)] = -np.inf
        k = min(k, len(lower))
        if k <= 0:
            return [], []
        if k > _ARGMAX_UP_TO:
            threshold = np.partition(lower, len(lower) - k)[len(lower) - k]
        else:
            for _ in range(k - 1):
                lower[lower.argmax()] = -np.inf
            threshold = lower[lower.argmax()]  # argmax is a method call; max() is not
        if threshold == -np.inf:  # fewer than k eligible: all of them win
            maybe = np.arange(len(lower))
        else:
            maybe = (self.upper >= threshold - _SLACK).nonzero()[0]
        b = self.bounds
        draws = betaincinv(b.alpha[maybe], b.beta[maybe], self.u[maybe])
        if excluded:
            local = [i for i, position in enumerate(maybe.tolist()) if position in excluded]
        else:
            local = ()
        chosen, scores = top_k(draws, k, local)
        return maybe[chosen].tolist(), scores


def win_probabilities(
    alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, draws: int = 100_000
) -> np.ndarray:
    """Monte Carlo probability that each candidate has the highest draw (its propensity of
    being chosen for the first exploration slot), for off-policy evaluation and tests."""
    samples = rng.beta(alpha[None, :], beta[None, :], size=(draws, len(alpha)))
    wins = np.bincount(np.argmax(samples, axis=1), minlength=len(alpha))
    return wins / draws
