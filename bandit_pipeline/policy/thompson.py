"""Thompson sampling over Beta posteriors (DESIGN.md section 6): pure, seedable, vectorised."""

from __future__ import annotations

import numpy as np


def thompson_top_k(
    alpha: np.ndarray, beta: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One Beta(alpha_i, beta_i) draw per candidate; the ``k`` highest draws win.

    Returns the winners' positions in the input arrays, best first, and their draws.
    With fewer than ``k`` candidates every candidate wins.
    """
    n = len(alpha)
    if n == 0 or k <= 0:
        return np.empty(0, dtype=np.intp), np.empty(0)
    draws = rng.beta(alpha, beta)
    k = min(k, n)
    top = np.argpartition(draws, n - k)[n - k :] if k < n else np.arange(n)
    order = top[np.argsort(-draws[top], kind="stable")]
    return order, draws[order]


def win_probabilities(
    alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, draws: int = 100_000
) -> np.ndarray:
    """Monte Carlo probability that each candidate has the highest draw (its propensity of
    being chosen for the first exploration slot), for off-policy evaluation and tests."""
    samples = rng.beta(alpha[None, :], beta[None, :], size=(draws, len(alpha)))
    wins = np.bincount(np.argmax(samples, axis=1), minlength=len(alpha))
    return wins / draws
