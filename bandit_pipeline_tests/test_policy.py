"""Thompson sampling and experiment assignment: statistics with fixed seeds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bandit_pipeline.policy.experiment import CONTROL, assign_variant, bucket
from bandit_pipeline.policy.thompson import decision_rng, thompson_top_k, top_k, win_probabilities

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
    firsts = np.array([decision_rng(seed).beta(2.5, 7.0) for seed in range(5_000)])
    assert stats.kstest(firsts, stats.beta(2.5, 7.0).cdf).pvalue > 0.001
    assert abs(stats.pearsonr(firsts[:-1], firsts[1:]).statistic) < 0.05
    again = decision_rng(1234).beta(ALPHA, BETA)
    decision_rng(99).beta(ALPHA, BETA)  # the reused per-thread generator is reseeded
    assert decision_rng(1234).beta(ALPHA, BETA).tolist() == again.tolist()


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
