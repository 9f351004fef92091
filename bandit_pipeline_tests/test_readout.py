"""The experiment readout against answers computed independently (scipy, numpy)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from scipy import stats
from sqlalchemy import text

from bandit_pipeline.monitoring.readout import experiment_readout
from bandit_pipeline_tests.helpers import stamp

WINDOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# variant -> (impressions, clicked, carted, purchased)
COUNTS = {"control": (10_400, 520, 104, 31), "treatment": (89_600, 4_300, 980, 250)}
HOLDOUT = 10.0


@pytest.fixture
def readout(engine):
    with engine.begin() as connection:
        # Split over two runs and both slot kinds, as real deltas are.
        for variant, counts in COUNTS.items():
            for part in range(4):  # (explore, run) pairs: each count split in four
                explore, run = divmod(part, 2)
                n, c, a, p = (x // 4 + (x % 4 if part == 3 else 0) for x in counts)
                as_of = WINDOW.replace(minute=run + 1)
                connection.execute(
                    text(
                        "INSERT INTO bandit_metric_deltas (as_of, window_start, namespace,"
                        " surface, experiment, variant, explore, impressions, clicked,"
                        " carted, purchased, reward_sum, reward_sq_sum) VALUES (:as_of,"
                        " :w, 'default', 'home', 'exp', :variant, :explore, :n, :c, :a,"
                        " :p, 0, 0)"
                    ),
                    {
                        "as_of": stamp(engine, as_of), "w": stamp(engine, WINDOW),
                        "variant": variant, "explore": explore,
                        "n": n, "c": c, "a": a, "p": p,
                    },
                )  # fmt: skip
        connection.execute(
            text("INSERT INTO bandit_experiments (experiment, holdout_percent) VALUES ('exp', :h)"),
            {"h": HOLDOUT},
        )
    return {row.metric: row for row in experiment_readout(engine)}


@pytest.mark.parametrize(
    ("metric", "index"), [("ctr", 1), ("add_to_cart_rate", 2), ("purchase_rate", 3)]
)
def test_relative_difference_and_its_interval(readout, metric, index):
    n_c, x_c = COUNTS["control"][0], COUNTS["control"][index]
    n_t, x_t = COUNTS["treatment"][0], COUNTS["treatment"][index]
    p_c, p_t = x_c / n_c, x_t / n_t
    # Katz log interval for a ratio of two proportions.
    se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_c - 1 / n_c)
    z = stats.norm.ppf(0.975)
    row = readout[metric]
    assert (row.control_impressions, row.treatment_impressions) == (n_c, n_t)
    assert row.relative_difference == pytest.approx(p_t / p_c - 1, rel=1e-9)
    assert row.relative_difference_ci_low == pytest.approx(
        math.exp(math.log(p_t / p_c) - z * se) - 1, rel=1e-6
    )
    assert row.relative_difference_ci_high == pytest.approx(
        math.exp(math.log(p_t / p_c) + z * se) - 1, rel=1e-6
    )


def test_sample_ratio_mismatch(readout):
    observed = [COUNTS["control"][0], COUNTS["treatment"][0]]
    total = sum(observed)
    expected = [total * HOLDOUT / 100, total * (1 - HOLDOUT / 100)]
    answer = stats.chisquare(observed, expected)
    row = readout["ctr"]
    assert row.srm_chi_square == pytest.approx(answer.statistic, rel=1e-9)
    assert row.srm_p_value == pytest.approx(answer.pvalue, rel=1e-6)
    assert row.srm_suspected == (answer.pvalue < 0.001)
    assert row.srm_suspected  # 10.4% control against a 10% holdout, on 100,000 impressions
