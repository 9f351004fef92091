"""The staging dry run on a smaller seeded shop: every event lands once, Thompson sampling
beats uniform exploration, the posteriors cover the hidden rates, the collapse scenario
trips the alert and the kill switch, and the report renders in a real browser."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scipy.stats import beta as beta_distribution

from bandit_pipeline.demo import demo_settings
from bandit_pipeline.report import write_report
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate.dry_run import dry_run_settings, run_dry_run
from bandit_pipeline.simulate.shop import ShopOptions
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline_tests.dagster_ui import Browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# A fixed start: the runs are reproducible to the microsecond.
START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _dry_run(folder: Path, options: ShopOptions, **overrides):
    settings = demo_settings(default_settings(), folder).model_copy(update=overrides)
    settings = dry_run_settings(settings, options, START)
    engine = make_engine(settings.warehouse_url)
    upgrade(engine)
    result = run_dry_run(engine, settings, options, START, folder)
    end = START + result.windows * WINDOW
    report = write_report(engine, settings, START, end, folder / "report", result.truth)
    return engine, settings, result, report


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    engine, settings, result, report = _dry_run(
        tmp_path_factory.mktemp("steady"), ShopOptions(seed=3, days=1.0, fresh_items=20)
    )
    yield engine, settings, result, report
    engine.dispose()


@pytest.fixture(scope="module")
def collapse(tmp_path_factory):
    engine, settings, result, report = _dry_run(
        tmp_path_factory.mktemp("collapse"),
        ShopOptions(seed=5, days=0.5, scenario="collapse", collapse_after=0.4),
        killswitch_min_explore_impressions=200,
    )
    yield engine, settings, result, report
    engine.dispose()


def test_every_valid_event_lands_once_and_every_malformed_row_is_kept_aside(steady):
    engine, _, result, _ = steady
    with engine.connect() as connection:
        ids = [row[0] for row in connection.exec_driver_sql("SELECT event_id FROM bandit_rewards")]
        rejected = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM bandit_rewards_rejected"
        ).scalar()
    emitted = result.truth.emitted
    assert min(emitted["duplicates"], emitted["late"], emitted["malformed"]) > 0
    assert len(ids) == len(set(ids))
    assert set(ids) == result.emitted_ids
    assert rejected == emitted["malformed"]
    assert result.duplicates_ignored == emitted["duplicates"]


def test_thompson_sampling_regret_is_at_most_40_percent_of_uniform(steady):
    regret = steady[2].truth.regret
    thompson = sum(r.thompson for r in regret)
    uniform = sum(r.uniform for r in regret)
    assert sum(r.explore_slots for r in regret) > 5_000
    assert thompson <= 0.4 * uniform, (thompson, uniform)


def test_posteriors_of_well_explored_items_cover_the_true_rates(steady):
    engine, _, result, _ = steady
    truth = result.truth
    last = max(r.at for r in truth.true_rewards)
    true = {(r.surface, r.item_id): r.expected_reward for r in truth.true_rewards if r.at == last}
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT surface, item_id, alpha, beta FROM bandit_posteriors_latest"
        ).all()
    covered = []
    for surface, item, alpha, beta in rows:
        if (surface, item) in true and alpha + beta - 2 >= 100:
            low, high = beta_distribution.ppf([0.025, 0.975], alpha, beta)
            covered.append(low <= true[surface, item] <= high)
    assert len(covered) >= 30
    assert sum(covered) / len(covered) >= 0.9, covered


def test_the_collapse_trips_the_alert_and_the_kill_switch_and_serving_stops(collapse):
    engine, _, result, report = collapse
    with engine.connect() as connection:
        alerts = connection.exec_driver_sql("SELECT surface FROM bandit_alerts").all()
        trips = connection.exec_driver_sql(
            "SELECT surface FROM bandit_killswitch_events WHERE action = 'trip'"
        ).all()
    assert alerts
    assert trips
    assert result.reasons.get("kill_switch", 0) > 0  # serving read the tripped switch
    # The report's timeline names each trip, and the widening criteria fail on both.
    page = report.html_path.read_text()
    assert page.count("trip") >= len(trips)
    failed = {c.label for c in report.criteria if not c.passed}
    assert any("alert" in label for label in failed), failed
    assert any("kill switch" in label for label in failed), failed
    assert not report.passed


def test_the_report_renders_in_chromium(collapse, tmp_path):
    report = collapse[3]
    ARTIFACTS.mkdir(exist_ok=True)
    browser = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    try:
        session = browser.open(report.html_path.resolve().as_uri(), {}, width=1400, height=3000)
        probe = (
            "JSON.stringify({complete: document.readyState === 'complete', images: "
            "[...document.images].map(i => i.complete && i.naturalWidth), criteria: "
            "document.querySelectorAll('#success-criteria tr').length})"
        )
        deadline = time.monotonic() + 30
        while True:
            value = browser.send("Runtime.evaluate", session, expression=probe,
                                 returnByValue=True)["result"]["value"]  # fmt: skip
            state = json.loads(value)
            if state["complete"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        browser.screenshot(session, ARTIFACTS / "dry-run-report.png")
    finally:
        browser.close()
    assert state["complete"]
    assert len(state["images"]) == len(report.image_paths) >= 5
    assert all(width and width > 0 for width in state["images"]), state["images"]
    assert state["criteria"] >= 6
    assert browser.exceptions == []
    assert (ARTIFACTS / "dry-run-report.png").stat().st_size > 10_000


def test_the_run_is_reproducible_for_a_seed(tmp_path):
    options = ShopOptions(seed=11, days=0.1, users=200, requests_per_hour=200, fresh_items=8)
    first = _dry_run(tmp_path / "a", options)
    second = _dry_run(tmp_path / "b", options)
    try:
        assert first[2].truth.regret == second[2].truth.regret
        assert first[2].emitted_ids == second[2].emitted_ids
        assert first[2].reasons == second[2].reasons
    finally:
        first[0].dispose()
        second[0].dispose()


def test_the_collapse_starts_where_the_options_say():
    from bandit_pipeline.simulate.shop import Shop

    options = ShopOptions(days=2, scenario="collapse", collapse_after=0.5)
    shop = Shop(options, START, default_settings().reward_weights)
    item = shop.fresh_items[0].item_id
    before = shop.click_rate(item, "home", START + timedelta(hours=23))
    after = shop.click_rate(item, "home", START + timedelta(hours=24))
    assert after == pytest.approx(before * 0.05, rel=0.01)
    with pytest.raises(ValueError, match="scenario"):
        ShopOptions(scenario="meltdown")
