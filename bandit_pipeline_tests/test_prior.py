"""The empirical prior: the fit against a known population, and in the warehouse its
record per run, its use by the candidate pool, reruns and backfills, and the command."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from bandit_pipeline.cli import main
from bandit_pipeline.policy import reference_posteriors
from bandit_pipeline.policy.prior import PriorFitParameters, fit_prior
from bandit_pipeline.policy.reference import reference_evidence, reference_priors
from bandit_pipeline.pool import build_candidate_pool
from bandit_pipeline.simulate import DryRunTruth
from bandit_pipeline.simulate.prior_regret import simulate_prior_regret
from bandit_pipeline.simulate.shop import ShopOptions
from bandit_pipeline.window_update import materialise_window, posteriors_as_of
from bandit_pipeline_tests.helpers import (
    DEFAULTS,
    FUTURE_SCAN,
    PARAMS,
    START,
    WINDOW_ENDS,
    load_events,
    logged_event,
    reset,
    rows,
)

FIT = PriorFitParameters("empirical", max_strength=1_000.0, min_items=10, min_evidence=50.0)


def population(rng, n_items, impressions, a, b):
    """Items with true rates drawn from Beta(a, b), each shown ``impressions`` times."""
    rates = rng.beta(a, b, n_items)
    clicks = rng.binomial(impressions, rates).astype(float)
    return clicks, impressions - clicks


def test_the_fit_recovers_a_known_beta_population():
    rng = np.random.default_rng(3)
    reward, non_reward = population(rng, 3_000, 400, 2.0, 48.0)  # mean 0.04, strength 50
    fitted = fit_prior(reward, non_reward, FIT, 1.0, 1.0)
    assert fitted.method == "empirical"
    assert fitted.mean == pytest.approx(0.04, rel=0.05)
    assert fitted.strength == pytest.approx(50.0, rel=0.15)
    # The finite evidence explains part of the observed spread, not all of it.
    assert 0 < fitted.noise_variance < fitted.observed_variance


def test_the_strength_is_capped_and_few_items_keep_the_fixed_prior():
    rng = np.random.default_rng(4)
    reward, non_reward = population(rng, 500, 400, 40.0, 960.0)  # strength 1000: near-equal
    capped = fit_prior(reward, non_reward, replace(FIT, max_strength=20.0), 1.0, 1.0)
    assert capped.method == "capped"
    assert capped.strength == pytest.approx(20.0)
    assert capped.mean == pytest.approx(0.04, rel=0.05)
    # Items under min_evidence do not count, and too few items leave the fixed prior.
    few = fit_prior(reward[:9], non_reward[:9], FIT, 2.0, 3.0)
    assert (few.alpha, few.beta, few.method, few.items) == (2.0, 3.0, "fixed", 9)
    thin = fit_prior(np.r_[reward, 1.0], np.r_[non_reward, 2.0], FIT, 1.0, 1.0)
    assert thin.items == 500


def test_rates_of_zero_still_give_a_proper_prior():
    fitted = fit_prior(np.zeros(20), np.full(20, 100.0), FIT, 1.0, 1.0)
    assert fitted.alpha > 0
    assert fitted.beta > 0
    assert fitted.mean < 1e-5


# --- In the warehouse ----------------------------------------------------------------

PRIOR = PriorFitParameters("empirical", max_strength=1_000.0, min_items=3, min_evidence=5.0)
WELL_EXPLORED = {"a": 0.05, "b": 0.2, "c": 0.5, "d": 0.1}  # share of each item's views that buy


def explored_events():
    """Four items with 40 explored impressions each on 'home' in the first window, clicked
    at their share with a purchase (reward 1); 'e' with two impressions (below
    min_evidence)."""
    events = []
    for item, share in {**WELL_EXPLORED, "e": 0.0}.items():
        views = 40 if item in WELL_EXPLORED else 2
        for k in range(views):
            at = START + timedelta(seconds=10 * k + 1)
            key = f"{item}-{k}"
            events.append(
                logged_event(f"{key}-i", "impression", at, at, "home", key, item, True, None)
            )
            if k < round(share * views):
                click = at + timedelta(seconds=5)
                events.append(
                    logged_event(
                        f"{key}-p", "purchase", click, click, "home", key, item, True, None
                    )
                )
    return events


def priors_table(engine):
    return rows(engine, "SELECT * FROM bandit_priors ORDER BY as_of, namespace, surface")


def test_the_job_records_the_prior_it_fits_and_a_rerun_or_backfill_fits_it_again(engine):
    events = explored_events()
    reset(engine)
    load_events(engine, events)
    for as_of in WINDOW_ENDS[:3]:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN, prior=PRIOR)
    recorded = priors_table(engine)
    assert len(recorded) == 3  # one row per run for (default, home)
    as_of = WINDOW_ENDS[2]
    evidence = reference_evidence(events, as_of, PARAMS)
    want = reference_priors(evidence, PARAMS, PRIOR)[("default", "home")]
    (alpha, beta, method, items) = rows(
        engine,
        "SELECT alpha, beta, method, items FROM bandit_priors WHERE surface = 'home'"
        " ORDER BY as_of DESC LIMIT 1",
    )[0]
    assert (method, items) == ("empirical", 4)
    assert alpha == pytest.approx(want[0], rel=1e-9)
    assert beta == pytest.approx(want[1], rel=1e-9)
    # The prior moves the posteriors of every item of the surface, not the stored rows.
    got = posteriors_as_of(engine, as_of, PARAMS)
    expected = reference_posteriors(events, as_of, PARAMS, PRIOR)
    assert got.keys() == expected.keys()
    for item, value in got.items():
        assert value == pytest.approx(expected[item], rel=1e-9)
    assert got[("default", "home", "e")][0] == pytest.approx(alpha)
    assert not math.isclose(alpha, PARAMS.prior_alpha)

    # A rerun replaces each row; a backfill of one window alone fits the same prior.
    for as_of in WINDOW_ENDS[:3]:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN, prior=PRIOR)
    assert priors_table(engine) == recorded
    reset(engine)
    load_events(engine, events)
    materialise_window(engine, WINDOW_ENDS[2], PARAMS, future_scan=FUTURE_SCAN, prior=PRIOR)
    alone = priors_table(engine)
    assert len(alone) == 1
    assert alone[0][3:5] == pytest.approx(recorded[-1][3:5], rel=1e-9)
    # The fixed mode records nothing, and the posteriors keep the fixed prior.
    materialise_window(engine, WINDOW_ENDS[2], PARAMS, future_scan=FUTURE_SCAN)
    assert priors_table(engine) == []
    fixed = posteriors_as_of(engine, WINDOW_ENDS[2], PARAMS)
    assert fixed[("default", "home", "e")][0] == pytest.approx(PARAMS.prior_alpha + 0.0)


def test_new_items_enter_the_pool_with_the_surface_prior(engine):
    reset(engine)
    load_events(engine, explored_events())
    as_of = WINDOW_ENDS[0]
    materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN, prior=PRIOR)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM item_catalog"))
        connection.execute(text("DELETE FROM bandit_candidate_pool"))
        connection.execute(
            text(
                "INSERT INTO item_catalog (namespace, item_id, category, price, availability,"
                " freshness_index) VALUES ('default', :item, 'shoes', 50, 0.9, 0.9)"
            ),
            [{"item": item} for item in ("a", "e", "brand-new")],
        )
    pool = replace(DEFAULTS.pool_parameters(), surfaces=("home", "cart"))
    build_candidate_pool(engine, as_of, "default", pool, PARAMS)
    stored = {
        (surface, item): (alpha, beta)
        for surface, item, alpha, beta in rows(
            engine, "SELECT surface, item_id, alpha, beta FROM bandit_candidate_pool"
        )
    }
    prior = rows(engine, "SELECT alpha, beta FROM bandit_priors WHERE surface = 'home'")[0]
    assert stored[("home", "brand-new")] == pytest.approx(tuple(prior), rel=1e-12)
    # An item with evidence: the surface prior plus its evidence; 'cart' has no fit.
    posteriors = posteriors_as_of(engine, as_of, PARAMS)
    assert stored[("home", "a")] == pytest.approx(posteriors[("default", "home", "a")], rel=1e-9)
    assert stored[("cart", "brand-new")] == (PARAMS.prior_alpha, PARAMS.prior_beta)


def test_prior_suggest_prints_the_fit_per_surface(engine):
    reset(engine)
    load_events(engine, explored_events())
    materialise_window(engine, WINDOW_ENDS[0], PARAMS, future_scan=FUTURE_SCAN)
    env = {
        "BANDIT_WAREHOUSE_URL": engine.url.render_as_string(hide_password=False),
        "BANDIT_HALF_LIFE_DAYS": str(PARAMS.half_life_days),
        "BANDIT_ATTRIBUTION_WINDOW_HOURS": str(PARAMS.attribution_window_hours),
        "BANDIT_PRIOR_MIN_ITEMS": "3",
        "BANDIT_PRIOR_MIN_EVIDENCE": "5",
    }
    runner = CliRunner()
    result = runner.invoke(main, ["prior", "suggest"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    fit = replace(PRIOR, max_strength=DEFAULTS.prior_max_strength)
    evidence = reference_evidence(explored_events(), WINDOW_ENDS[0], PARAMS)
    home = np.array([v for k, v in sorted(evidence.items()) if k[1] == "home"])
    want = fit_prior(home[:, 0], home[:, 1], fit, PARAMS.prior_alpha, PARAMS.prior_beta)
    assert want.method == "empirical"
    line = next(line for line in result.output.splitlines() if " home " in line)
    assert line.split()[:6] == [
        "default", "home", "empirical", "4", f"{want.alpha:.4f}", f"{want.beta:.4f}",
    ]  # fmt: skip
    assert line.endswith("fixed")  # the run was in the fixed mode
    assert "BANDIT_PRIOR_MODE=fixed" in result.output

    empty = runner.invoke(
        main, ["prior", "suggest", "--as-of", "2020-01-01T00:00"], env=env, catch_exceptions=False
    )
    assert empty.exit_code == 2
    assert "no materialised window yet" in empty.output


# --- The closed-loop comparison of the dry run ---------------------------------------


def test_the_two_priors_run_on_common_random_numbers():
    """With an empirical prior that can never be fitted, both runs are the same policy on
    the same traffic and outcomes: their regret must agree window by window."""
    options = ShopOptions(seed=5, days=0.25)
    never = replace(DEFAULTS.prior_fit_parameters(), min_items=1_000_000)
    series = simulate_prior_regret(options, START, DEFAULTS.posterior_parameters(), never, 500)
    assert len(series) == 24
    assert [w.fixed for w in series] == [w.empirical for w in series]
    assert series[-1].uniform > 0


def test_the_prior_comparison_reaches_the_report_through_the_truth_file(tmp_path):
    options = ShopOptions(seed=5, days=0.25)
    params = DEFAULTS.posterior_parameters()
    series = simulate_prior_regret(options, START, params, DEFAULTS.prior_fit_parameters(), 500)
    assert series[-1].fixed != series[-1].empirical
    # The truth file carries the comparison to the report.
    truth = DryRunTruth(7, "steady", "default", START, START, ["home"], [], prior_regret=series)
    truth.write(tmp_path / "truth.json")
    assert DryRunTruth.read(tmp_path / "truth.json").prior_regret == series
