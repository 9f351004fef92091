"""Thompson sampling over Beta posteriors (DESIGN.md section 6): pure, seedable, vectorised."""

from __future__ import annotations

import threading
from collections.abc import Collection

import numpy as np

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
    """One draw per candidate, in candidate order (what a decision's seed replays)."""
    if len(alpha) == 0:
        return np.empty(0)
    return rng.beta(alpha, beta)


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


def win_probabilities(
    alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, draws: int = 100_000
) -> np.ndarray:
    """Monte Carlo probability that each candidate has the highest draw (its propensity of
    being chosen for the first exploration slot), for off-policy evaluation and tests."""
    samples = rng.beta(alpha[None, :], beta[None, :], size=(draws, len(alpha)))
    wins = np.bincount(np.argmax(samples, axis=1), minlength=len(alpha))
    return wins / draws
