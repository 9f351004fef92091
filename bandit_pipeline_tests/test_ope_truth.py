"""Off-policy evaluation against the simulator's truth: over blocks of a seeded dry run's
logged decisions, the 95% intervals of four candidate policies (uniform random, another
prior, another half-life, greedy) hold what each candidate would truly have earned at
about the nominal rate, and the doubly robust estimator errs no more than IPS.
(`benchmarks/ope_coverage.py` measures the same over several day-long runs, where
uniform random choice loses the overlap it has here.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bandit_pipeline.simulate.ope_check import (
    ESTIMATORS,
    POLICIES,
    TRUSTED_ESS,
    check_against_truth,
    coverage,
    mean_error,
)
from bandit_pipeline.simulate.shop import ShopOptions

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    # 7.2 simulated hours, 12 fresh items: about 5,000 decisions, half a minute.
    options = ShopOptions(seed=11, days=0.3, fresh_items=12, requests_per_hour=900)
    return check_against_truth(tmp_path_factory.mktemp("ope"), START, options)


def test_the_intervals_hold_the_truth_at_about_the_nominal_rate(blocks):
    assert len(blocks) == 8 * len(POLICIES)
    assert min(b.impressions for b in blocks) > 500
    # Enough overlap in every block for the estimates to be trusted (docs/data-science.md).
    assert min(b.effective_sample_size for b in blocks) >= TRUSTED_ESS
    for estimator in ESTIMATORS:
        # 32 intervals at 95%: fewer than 28 covering would happen by chance in 2% of runs.
        assert coverage(blocks, estimator) >= 28 / 32, (estimator, coverage(blocks, estimator))


def test_the_candidates_differ_and_doubly_robust_errs_no_more_than_ips(blocks):
    truth = {p: [b.truth for b in blocks if b.policy == p] for p in POLICIES}
    assert max(truth["uniform"]) < min(truth["greedy"])
    assert mean_error(blocks, "dr") <= mean_error(blocks, "ips")
