"""Off-policy evaluation against the simulator's truth: over blocks of a seeded dry run's
logged decisions, the 95% intervals of five candidate policies (uniform random, another
prior, two other half-lives, greedy) hold what each candidate would truly have earned at
about the nominal rate, and the doubly robust estimator errs no more than IPS.
(`benchmarks/ope_coverage.py` measures the same over several day-long runs, where
the candidates far from the served policy lose the overlap they have here.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bandit_pipeline.simulate.ope_check import (
    ESTIMATORS,
    POLICIES,
    TRUSTED_ESS,
    coverage,
    evaluate_blocks,
    logged_run,
    mean_error,
)
from bandit_pipeline.simulate.shop import ShopOptions

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # 7.2 simulated hours, 12 fresh items: about 5,000 decisions, half a minute.
    options = ShopOptions(seed=11, days=0.3, fresh_items=12, requests_per_hour=900)
    logged = logged_run(tmp_path_factory.mktemp("ope"), START, options)
    yield logged
    logged.engine.dispose()


@pytest.fixture(scope="module")
def blocks(run):
    return evaluate_blocks(run, seed=11)


def test_the_intervals_hold_the_truth_at_about_the_nominal_rate(blocks):
    assert len(blocks) == 8 * len(POLICIES)
    assert min(b.impressions for b in blocks) > 500
    # Enough overlap in every block for the estimates to be trusted (docs/data-science.md).
    assert min(b.effective_sample_size for b in blocks) >= TRUSTED_ESS
    for estimator in ESTIMATORS:
        # 40 intervals at 95%: fewer than 35 covering would happen by chance in 1.4% of runs.
        assert coverage(blocks, estimator) >= 35 / 40, (estimator, coverage(blocks, estimator))


def test_the_candidates_differ_and_doubly_robust_errs_no_more_than_ips(blocks):
    truth = {p: [b.truth for b in blocks if b.policy == p] for p in POLICIES}
    assert max(truth["uniform"]) < min(truth["greedy"])
    assert mean_error(blocks, "dr") <= mean_error(blocks, "ips")


def test_posteriors_recomputed_from_the_events_are_the_ones_the_job_published(run):
    """A candidate with the served parameters, through the events path, samples from the
    very posteriors serving drew from: the counterfactual machinery and the job agree."""
    from bandit_pipeline.evaluation.evaluate import SnapshotPriors, _posterior_source
    from bandit_pipeline.evaluation.logs import load_logged
    from bandit_pipeline.policy.candidates import parse_policy

    logged = load_logged(run.engine, run.settings, run.since, run.until)
    served = run.settings.posterior_parameters()
    same = parse_policy(f"thompson:half_life_days={served.half_life_days},weight_click=1")
    priors = SnapshotPriors(run.engine, run.settings)
    source = _posterior_source(run.engine, run.settings, logged, same, priors)
    contexts = logged.contexts[::25]
    assert len(contexts) > 100
    assert max(c.alpha.max() for c in contexts) > 20  # posteriors with real evidence
    for context in contexts:
        alpha, beta = source(context, list(context.items), context.alpha, context.beta)
        assert alpha == pytest.approx(context.alpha, rel=1e-12)
        assert beta == pytest.approx(context.beta, rel=1e-12)
