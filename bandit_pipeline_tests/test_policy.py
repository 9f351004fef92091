"""Thompson sampling and experiment assignment: statistics with fixed seeds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bandit_pipeline.policy.experiment import CONTROL, assign_variant, bucket
from bandit_pipeline.policy.thompson import (
    QuantileBounds,
    beta_draws,
    decision_rng,
    thompson_top_k,
    top_k,
    win_probabilities,
)

ALPHA = np.array([2.0, 5.0, 1.0, 8.0, 3.0])
BETA = np.array([6.0, 5.0, 1.0, 12.0, 3.0])


def test_winner_frequencies_match_the_posteriors():
    """How often each candidate wins the first slot matches its Monte Carlo probability
    of having the highest draw (chi-square goodness of fit)."""
    expected = win_probabilities(ALPHA, BETA, np.random.default_rng(1), draws=400_000)
    rng = np.random.default_rng(2)
    decisions = 20_000
    wins = np.zeros(len(ALPHA))
    for _ in range(decisions):
        chosen, _ = thompson_top_k(ALPHA, BETA, 1, rng)
        wins[chosen[0]] += 1
    result = stats.chisquare(wins, expected * decisions)
    assert result.pvalue > 0.001, (wins, expected * decisions)
    # ... and a wrong model is rejected by the same test: it has power.
    uniform = np.full(len(ALPHA), decisions / len(ALPHA))
    assert stats.chisquare(wins, uniform).pvalue < 1e-6


def test_draws_follow_the_beta_distribution():
    rng = np.random.default_rng(3)
    alpha, beta = np.array([2.5]), np.array([7.0])
    scores = np.array([thompson_top_k(alpha, beta, 1, rng)[1][0] for _ in range(5_000)])
    assert stats.kstest(scores, stats.beta(2.5, 7.0).cdf).pvalue > 0.001
    assert stats.kstest(scores, stats.beta(7.0, 2.5).cdf).pvalue < 1e-6


def test_top_k_returns_distinct_winners_best_first():
    rng = np.random.default_rng(4)
    for _ in range(200):
        chosen, scores = thompson_top_k(ALPHA, BETA, 2, rng)
        assert len(set(chosen.tolist())) == 2
        assert scores[0] >= scores[1]
    chosen, _ = thompson_top_k(ALPHA[:1], BETA[:1], 2, rng)
    assert chosen.tolist() == [0]
    assert thompson_top_k(ALPHA[:0], BETA[:0], 2, rng)[0].size == 0


def test_same_seed_same_choice():
    first = thompson_top_k(ALPHA, BETA, 2, np.random.default_rng(99))
    again = thompson_top_k(ALPHA, BETA, 2, np.random.default_rng(99))
    assert first[0].tolist() == again[0].tolist()
    assert first[1].tolist() == again[1].tolist()


def test_decision_generators_of_consecutive_seeds_are_independent_beta_streams():
    """Serving seeds one generator per decision: the first draws over consecutive seeds
    follow the Beta distribution and do not correlate with the neighbouring seed's."""
    one = (np.array([2.5]), np.array([7.0]))
    firsts = np.array([beta_draws(*one, decision_rng(seed))[0] for seed in range(5_000)])
    assert stats.kstest(firsts, stats.beta(2.5, 7.0).cdf).pvalue > 0.001
    assert abs(stats.pearsonr(firsts[:-1], firsts[1:]).statistic) < 0.05
    again = beta_draws(ALPHA, BETA, decision_rng(1234))
    beta_draws(ALPHA, BETA, decision_rng(99))  # the reused per-thread generator is reseeded
    assert beta_draws(ALPHA, BETA, decision_rng(1234)).tolist() == again.tolist()


def test_draws_follow_the_beta_distribution_across_its_shapes():
    """The inverse-transform draws against scipy's Beta, from U-shaped to very peaked."""
    rng = np.random.default_rng(11)
    for a, b in [(0.5, 0.5), (1.0, 1.0), (1.0, 40.0), (30.0, 2.0), (400.0, 9000.0)]:
        draws = beta_draws(np.full(4_000, a), np.full(4_000, b), rng)
        assert stats.kstest(draws, stats.beta(a, b).cdf).pvalue > 0.001, (a, b)


def heterogeneous_posteriors(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A pool as serving sees it: many items with little evidence, some with a lot."""
    trials = rng.integers(0, 600, n) * (rng.random(n) < 0.7) + rng.integers(0, 5, n)
    successes = rng.binomial(trials, rng.beta(1, 15, n))
    decay = rng.uniform(0.3, 1.0, n)  # decayed evidence is fractional
    return 1.0 + decay * successes, 1.0 + decay * (trials - successes)


def test_bounded_draws_choose_what_all_the_draws_choose():
    """Inverting only the candidates whose bounds can reach the winners gives the choice
    and the scores of inverting every candidate, whatever the slots and exclusions."""
    rng = np.random.default_rng(12)
    for n in (0, 1, 2, 3, 7, 50, 1_000):
        alpha, beta = heterogeneous_posteriors(rng, n)
        bounds = QuantileBounds.build(alpha, beta)
        for seed in range(150):
            k = int(rng.integers(1, 7))  # beyond 4 slots the partition path
            excluded = (
                set(rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False).tolist())
                if n
                else set()
            )
            if seed % 3:
                excluded = set(list(excluded)[:2])
            want, want_scores = thompson_top_k(alpha, beta, k, decision_rng(seed), excluded)
            got, got_scores = bounds.sample(decision_rng(seed)).top_k(k, excluded)
            assert got == want.tolist(), (n, seed, k, excluded)
            assert got_scores == want_scores.tolist()


def test_bounds_hold_every_draw():
    """Each draw lies within the bounds that its uniform selects (the pruning's premise),
    including uniforms at the cell edges and the last, open-ended cell."""
    rng = np.random.default_rng(13)
    alpha, beta = heterogeneous_posteriors(rng, 300)
    alpha[:3], beta[:3] = [0.2, 1.0, 5000.0], [0.3, 1.0, 20.0]  # unusual shapes too
    bounds = QuantileBounds.build(alpha, beta)
    for seed in range(200):
        draws = bounds.sample(decision_rng(seed))
        exact = beta_draws(alpha, beta, decision_rng(seed))
        assert np.all(draws.lower <= exact)
        assert np.all(exact <= draws.upper)

    # Uniforms exactly on the cell edges (and 0) fall into a cell that holds their draw.
    class Edges:
        def random(self, n: int) -> np.ndarray:
            return np.resize(np.array([0.0, 0.5, 0.75, 1 - 2.0**-10, 1 - 2.0**-40]), n)

    draws = bounds.sample(Edges())
    exact = beta_draws(alpha, beta, Edges())
    assert np.all(draws.lower <= exact)
    assert np.all(exact <= draws.upper)


def test_a_subset_takes_the_prior_for_unknown_items():
    rng = np.random.default_rng(14)
    alpha, beta = heterogeneous_posteriors(rng, 20)
    bounds = QuantileBounds.build(alpha, beta)
    prior = QuantileBounds.build(np.array([1.0]), np.array([1.0]))
    subset = bounds.subset(np.array([5, -1, 0, 5]), prior)
    assert subset.alpha.tolist() == [alpha[5], 1.0, alpha[0], alpha[5]]
    assert subset.beta.tolist() == [beta[5], 1.0, beta[0], beta[5]]
    rebuilt = QuantileBounds.build(subset.alpha, subset.beta)
    assert np.array_equal(subset.table, rebuilt.table)
    assert np.array_equal(subset.cells, rebuilt.cells)


@settings(max_examples=200, deadline=None)
@given(
    draws=st.lists(st.floats(0, 1), min_size=0, max_size=40),
    k=st.integers(0, 8),
    excluded=st.sets(st.integers(0, 39), max_size=40),  # one by one up to 16, else at once
)
def test_top_k_is_the_k_highest_eligible_draws(draws, k, excluded):
    """Both paths (a pass per slot up to 4 slots, a partition beyond) give the k highest
    draws outside the excluded positions, best first."""
    values = np.array(draws, dtype=float)
    excluded = {i for i in excluded if i < len(values)}
    eligible = sorted(
        (i for i in range(len(values)) if i not in excluded), key=lambda i: -values[i]
    )[:k]
    chosen, scores = top_k(values.copy(), k, excluded)
    assert scores == [values[i] for i in eligible]  # ties may swap positions
    assert set(chosen).isdisjoint(excluded)
    assert len(set(chosen)) == len(chosen) == len(eligible)
    assert scores == [values[i] for i in chosen]


def test_assignment_is_stable_and_respects_the_holdout_share():
    users = [f"user-{i}" for i in range(20_000)]
    variants = [assign_variant("exp", u, 10.0) for u in users]
    assert variants == [assign_variant("exp", u, 10.0) for u in users]
    control = variants.count(CONTROL)
    assert stats.binomtest(control, len(users), 0.10).pvalue > 0.001
    assert all(assign_variant("exp", u, 0.0) != CONTROL for u in users[:1000])  # rollback
    # Another experiment reshuffles users.
    assert [bucket("other", u) for u in users[:50]] != [bucket("exp", u) for u in users[:50]]
