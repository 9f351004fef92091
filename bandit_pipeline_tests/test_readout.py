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


# variant -> (users, impressions per user): 9.5% of the users in control, each with more
# impressions than a treatment user, as heavy users happen to fall in one variant.
USERS = {"control": (95, 30), "treatment": (905, 20)}


def insert_impressions(engine) -> None:
    rows = [
        {"id": f"{variant}-{user}-{k}", "user": f"{variant}-{user}", "variant": variant,
         "at": stamp(engine, WINDOW)}
        for variant, (users, per_user) in USERS.items()
        for user in range(users)
        for k in range(per_user)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, ingested_at,"
                " namespace, surface, user_id, request_id, item_id, slot, explore,"
                " experiment, variant) VALUES (:id, 'impression', :at, :at, 'default',"
                " 'home', :user, :id, 'item', 0, false, 'exp', :variant)"
            ),
            rows,
        )


def test_the_sample_ratio_mismatch_check_counts_users(engine, readout):
    insert_impressions(engine)
    observed = [USERS["control"][0], USERS["treatment"][0]]
    answer = stats.chisquare(observed, [sum(observed) * HOLDOUT / 100, sum(observed) * 0.9])
    row = {r.metric: r for r in experiment_readout(engine)}["ctr"]
    assert (row.control_users, row.treatment_users) == tuple(observed)
    assert row.srm_p_value == pytest.approx(answer.pvalue, rel=1e-6)
    assert not row.srm_suspected  # 9.5% of 1,000 users against a 10% holdout
    # The same users' impressions would have failed a test that counts impressions.
    impressions = [users * per_user for users, per_user in USERS.values()]
    total = sum(impressions)
    assert stats.chisquare(impressions, [total * 0.1, total * 0.9]).pvalue < 1e-9


def test_a_broken_assignment_is_flagged(engine, readout):
    insert_impressions(engine)
    with engine.begin() as connection:  # 60 more control users: 15.1% of them
        connection.execute(
            text(
                "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, ingested_at,"
                " namespace, surface, user_id, request_id, item_id, slot, explore,"
                " experiment, variant) VALUES (:id, 'impression', :at, :at, 'default',"
                " 'home', :id, :id, 'item', 0, false, 'exp', 'control')"
            ),
            [{"id": f"extra-{k}", "at": stamp(engine, WINDOW)} for k in range(60)],
        )
    row = {r.metric: r for r in experiment_readout(engine)}["ctr"]
    assert row.control_users == 155
    assert row.srm_suspected
