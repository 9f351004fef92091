"""Off-policy evaluation on a log in the Open Bandit Dataset's layout
(``bandit_pipeline.evaluation.obd``, run on the real sample by
``benchmarks/obd_replay.py``), checked on synthetic logs whose click rates are known: 5
items in 3 positions, shown by a uniform random policy (propensity 1/5), so the true value
of every policy evaluated on them can be computed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from bandit_pipeline.evaluation.obd import (
    estimate_policy,
    on_policy_ratio,
    read_log,
    replay,
    thompson_ranking,
    train_posteriors,
)
from bandit_pipeline.settings import default_settings

# True click rate of each item (rows) at each position (columns): items differ, and a
# lower position is clicked less, as in OBD.
RATES = np.outer([0.02, 0.05, 0.10, 0.20, 0.30], [1.0, 0.8, 0.6])
START = datetime(2019, 11, 24, tzinfo=UTC).timestamp()
HEADER = (
    ",timestamp,item_id,position,click,propensity_score,user_feature_0,"
    "user-item_affinity_0,user-item_affinity_1,user-item_affinity_2,"
    "user-item_affinity_3,user-item_affinity_4"
)


def obd_files(rows: int, seed: int) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """The lines of ``random/all/all.csv`` and ``item_context.csv`` of a uniform random
    policy over RATES's items and positions, one row a second, and the values written."""
    rng = np.random.default_rng(seed)
    n_items, positions = RATES.shape
    item = rng.integers(0, n_items, rows)
    position = rng.integers(0, positions, rows)
    click = (rng.random(rows) < RATES[item, position]).astype(int)
    log = [HEADER]
    for row in range(rows):
        stamp = datetime.fromtimestamp(START + row + rng.random() / 2, UTC)
        log.append(
            f"{row},{stamp.isoformat(sep=' ')},{item[row]},{position[row] + 1},{click[row]},"
            f"{1 / n_items},81ce123cbb5bd8ce818f60fb3586bba5,0.0,0.0,0.0,0.0,0.0"
        )
    items = [",item_id,item_feature_0,item_feature_1"]
    items += [f"{i},{i},{0.1 * i},5c1e29f902c3ad66e0ff9f6020b1aa0b" for i in range(n_items)]
    return log, items, {"item": item, "position": position, "click": click}


def test_reads_the_layout():
    lines, items, written = obd_files(50, seed=3)
    # Rows out of time order are sorted on reading.
    log = read_log([lines[0], *lines[:0:-1]], items)
    assert log.n_items == 5
    assert log.positions == 3
    assert np.all(np.diff(log.timestamp) > 0)
    assert log.timestamp[0] == pytest.approx(START, abs=1)
    assert np.array_equal(log.item, written["item"])
    assert np.array_equal(log.position, written["position"])
    assert np.array_equal(log.click, written["click"])
    assert np.allclose(log.propensity, 0.2)
    with pytest.raises(ValueError, match="item ids"):
        read_log(lines, items[:3])


def test_training_counts_clicks_before_the_split():
    lines, items, written = obd_files(400, seed=4)
    log = read_log(lines, items)
    split = float(log.timestamp[300])
    # A half-life of 1,000 years: no decay worth the name over 400 seconds.
    params = replace(
        default_settings().posterior_parameters(),
        weight_add_to_cart=0.0,
        weight_purchase=0.0,
        half_life_days=365_000.0,
    )
    alpha, beta = train_posteriors(log, split, params)
    clicks = np.bincount(written["item"][:300], weights=written["click"][:300], minlength=5)
    shown = np.bincount(written["item"][:300], minlength=5)
    assert np.allclose(alpha, 1.0 + clicks, rtol=1e-6)
    assert np.allclose(beta, 1.0 + shown - clicks, rtol=1e-6)


def test_thompson_ranking_probabilities():
    rng = np.random.default_rng(5)
    # Identical posteriors: every item is equally likely at every position.
    same = thompson_ranking(np.full(5, 3.0), np.full(5, 40.0), 3, rng, draws=200_000)
    assert np.allclose(same.probabilities, 0.2, atol=4 * same.errors.max() + 1e-9)
    # Distinct posteriors: each position's probabilities sum to 1 and agree with a
    # direct simulation of the ranking.
    alpha, beta = np.array([2.0, 5.0, 9.0, 3.0, 30.0]), np.array([90.0, 80.0, 60.0, 20.0, 70.0])
    found = thompson_ranking(alpha, beta, 3, rng, draws=200_000)
    assert np.allclose(found.probabilities.sum(axis=0), 1.0, atol=1e-4)
    draws = rng.beta(alpha, beta, size=(200_000, 5))
    ranks = np.argsort(-draws, axis=1)[:, :3]
    simulated = np.stack([np.bincount(ranks[:, k], minlength=5) / 200_000 for k in range(3)], 1)
    assert np.allclose(found.probabilities, simulated, atol=0.005)
    assert found.errors[:, :2].max() < 1e-5  # quadrature
    assert 0 < found.errors[:, 2].max() < 0.002  # Monte Carlo


def test_a_fixed_policy_is_estimated_within_its_interval():
    lines, items, _ = obd_files(6_000, seed=6)
    log = read_log(lines, items)
    # Always the best item, at every position.
    target = np.zeros((5, 3))
    target[4] = 1.0
    truth = float(np.mean(RATES[4, log.position]))
    uniform = float(np.mean(RATES[:, log.position].mean(axis=0)))
    model = np.full(5, float(log.click.mean()))
    found = estimate_policy(log, target, model, np.random.default_rng(7))
    for estimate in (found.ips, found.snips, found.dr):
        assert estimate.covers(truth)
        assert not estimate.covers(uniform)
        assert estimate.high - estimate.low < 0.06
    assert found.effective_sample_size == pytest.approx(np.sum(log.item == 4), rel=1e-9)


def test_replay_estimates_trained_thompson_sampling_within_its_intervals():
    lines, items, _ = obd_files(12_000, seed=8)
    log = read_log(lines, items)
    params = default_settings().posterior_parameters()
    result = replay(log, params, np.random.default_rng(9), draws=200_000)
    assert len(result.training) == 6_000
    assert len(result.evaluation) == 6_000
    assert result.training.timestamp.max() < result.split <= result.evaluation.timestamp.min()
    positions = result.evaluation.position
    uniform = float(np.mean(RATES[:, positions].mean(axis=0)))
    assert result.logged.covers(uniform)
    # The DR model is the training rows' click rate of each item.
    assert np.allclose(result.model, RATES.mean(axis=1), atol=0.03)
    for policy in result.policies:
        target = policy.probabilities.probabilities
        truth = float(np.mean(np.sum(target[:, positions] * RATES[:, positions], axis=0)))
        # Trained on 6,000 rows, it favours the better items: well above uniform.
        assert truth > 1.3 * uniform
        found = policy.estimates
        for estimate in (found.ips, found.snips, found.dr):
            assert estimate.covers(truth), (policy.name, estimate, truth)
            assert not estimate.covers(uniform)
        for share in policy.ratios:
            assert share.covers(truth / uniform), (policy.name, share, truth / uniform)
            assert share.low > 1.0
    ranked, top = (p.probabilities.probabilities for p in result.policies)
    assert np.allclose(top, ranked[:, :1])
    assert ranked[4, 0] > 0.9  # the best item leads


def test_on_policy_ratio_covers_the_ratio_of_rates():
    rng = np.random.default_rng(10)
    treatment = (rng.random(20_000) < 0.06).astype(float)
    control = (rng.random(20_000) < 0.04).astype(float)
    found = on_policy_ratio(treatment, control)
    assert found.covers(1.5)
    assert not found.covers(1.0)
    assert found.value == pytest.approx(treatment.mean() / control.mean())
