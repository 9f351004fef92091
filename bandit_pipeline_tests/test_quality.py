"""Great Expectations suites: each fails on crafted bad input and blocks the publish."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import text

from bandit_pipeline.definitions import build_definitions
from bandit_pipeline.defs import posteriors, publishing
from bandit_pipeline.monitoring import quality
from bandit_pipeline.online_store import open_store
from bandit_pipeline.settings import load_settings
from bandit_pipeline_tests.helpers import (
    DEFAULTS,
    PARAMS,
    PARTITIONS_START,
    START,
    load_events,
    logged_event,
    reset,
    stamp,
    warehouse_resource,
)

KEY = "2026-11-20-12:00"
AS_OF = START + timedelta(minutes=15)


def good_traffic():
    t = START + timedelta(minutes=1)
    return [
        logged_event("i1", "impression", t, t, "home", "r1", "item-1", True, None),
        logged_event("c1", "click", t + timedelta(seconds=3), t + timedelta(seconds=4),
                     "home", "r1", "item-1", True, None),
    ]  # fmt: skip


def catalog(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO item_catalog (namespace, item_id, category, price, availability,"
                " freshness_index) VALUES ('default', 'item-1', 'shoes', 40, 0.9, 0.9),"
                " ('default', 'item-2', 'shoes', 50, 0.9, 0.9)"
            )
        )


def run_job(engine, tmp_path, monkeypatch=None):
    store_url = f"sqlite:///{tmp_path}/online.db"
    settings = load_settings(
        online_store_url=store_url,
        surfaces="home",
        partitions_start=PARTITIONS_START,
        half_life_days=PARAMS.half_life_days,
        attribution_window_hours=PARAMS.attribution_window_hours,
    )
    job = build_definitions(
        settings, warehouse=warehouse_resource(engine, settings)
    ).resolve_job_def("bandit_posterior_update")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, partition_key=KEY, raise_on_error=False)
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    published = open_store(store_url).load("default", "home")
    return checks, published


def test_a_clean_window_passes_every_suite_and_publishes(engine, tmp_path):
    reset(engine)
    catalog(engine)
    load_events(engine, good_traffic())
    checks, published = run_job(engine, tmp_path)
    assert checks == {
        "window_reward_rows_valid": True,
        "aggregates_within_bounds": True,
        "posteriors_proper": True,
        "pool_items_sane": True,
    }
    assert published is not None
    assert set(published.item_ids) == {"item-1", "item-2"}


def test_bad_raw_rows_fail_their_suite_and_block_the_publish(engine, tmp_path):
    reset(engine)
    catalog(engine)
    load_events(engine, good_traffic())
    with engine.begin() as connection:  # bypassing ingestion: a surface name and slot it refuses
        connection.execute(
            text(
                "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, ingested_at,"
                " namespace, surface, user_id, request_id, item_id, slot, explore) VALUES"
                " ('bad', 'impression', :t, :t, 'default', 'home page', 'u', 'r9', 'item-2',"
                " 20000, :explore)"
            ),
            {"t": stamp(engine, START + timedelta(minutes=2)), "explore": True},
        )
    checks, published = run_job(engine, tmp_path)
    assert checks["window_reward_rows_valid"] is False
    assert published is None


@pytest.mark.parametrize(
    ("check", "corrupt"),
    [
        ("aggregates_within_bounds", "UPDATE bandit_reward_aggregates SET clicks = -3"),
        ("posteriors_proper", "UPDATE bandit_posteriors SET alpha = 0.5"),
    ],
)
def test_corrupted_outputs_fail_their_suite_and_block_the_publish(
    engine, tmp_path, monkeypatch, check, corrupt
):
    """A fault in the posterior SQL, simulated by corrupting its output inside the step."""
    reset(engine)
    catalog(engine)
    load_events(engine, good_traffic())
    real = posteriors.materialise_window

    def faulty(engine_, as_of, params, **options):
        result = real(engine_, as_of, params, **options)
        with engine_.begin() as connection:
            connection.execute(text(corrupt))
        return result

    monkeypatch.setattr(posteriors, "materialise_window", faulty)
    checks, published = run_job(engine, tmp_path)
    assert checks[check] is False
    assert published is None


def test_a_bad_pool_fails_its_suite_and_blocks_the_publish(engine, tmp_path, monkeypatch):
    reset(engine)
    catalog(engine)
    load_events(engine, good_traffic())
    real = publishing.build_candidate_pool

    def faulty(engine_, as_of, namespace, pool, posterior):
        result = real(engine_, as_of, namespace, pool, posterior)
        with engine_.begin() as connection:  # an item the rules should have excluded
            connection.execute(
                text(
                    "UPDATE bandit_candidate_pool SET availability = 0.01 WHERE item_id = 'item-2'"
                )
            )
        return result

    monkeypatch.setattr(publishing, "build_candidate_pool", faulty)
    checks, published = run_job(engine, tmp_path)
    assert checks["pool_items_sane"] is False
    assert published is None


def test_suites_report_what_failed(engine):
    reset(engine)
    catalog(engine)
    # An empty window is not a failure.
    assert quality.check_posteriors(engine, AS_OF, PARAMS).success
    assert quality.check_pool(engine, AS_OF, DEFAULTS.pool_parameters()).success
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bandit_posteriors (namespace, surface, item_id, as_of, alpha, beta)"
                " VALUES ('default', 'home', 'a', :t, 0.5, 2.0), ('default', 'home', 'b', :t, 3, 2)"
            ),
            {"t": stamp(engine, AS_OF)},
        )
    result = quality.check_posteriors(engine, AS_OF, PARAMS)
    assert not result.success
    assert result.rows == 2
    assert result.failures == ["expect_column_values_to_be_between(alpha): 1 unexpected"]


AGGREGATE_ROW = (
    "INSERT INTO bandit_reward_aggregates (as_of, namespace, surface, item_id, impressions,"
    " clicks, add_to_carts, purchases, reward_evidence, non_reward_evidence, late_corrections)"
    " VALUES (:t, 'default', 'home', :item, :impressions, :clicks, 0, 0, :reward, :other, 0)"
)


@pytest.mark.parametrize(
    ("bad_row", "failure"),
    [
        ({"clicks": -1}, "expect_column_values_to_be_between(clicks)"),
        (
            {"reward": 0.8, "other": 0.7},
            "expect_column_values_to_be_between(rows_over_evidence_bound)",
        ),
        ({"reward": float("-inf")}, "expect_column_values_to_be_between(reward_evidence)"),
        ({"other": -2e12}, "expect_column_values_to_be_between(non_reward_evidence)"),
    ],
    ids=["negative count", "over the bound", "infinite", "far below"],
)
def test_one_bad_aggregate_among_good_ones_fails_its_summary_suite(engine, bad_row, failure):
    """The suite validates the smallest and largest values: one bad row in many shows."""
    reset(engine)
    good = {"impressions": 1, "clicks": 1, "reward": 0.4, "other": 0.5}
    with engine.begin() as connection:
        for k in range(50):
            connection.execute(
                text(AGGREGATE_ROW), {**good, "item": f"i{k}", "t": stamp(engine, AS_OF)}
            )
    clean = quality.check_aggregates(engine, AS_OF)
    assert clean.success
    assert clean.rows == 50
    with engine.begin() as connection:
        connection.execute(
            text(AGGREGATE_ROW), {**good, **bad_row, "item": "bad", "t": stamp(engine, AS_OF)}
        )
    result = quality.check_aggregates(engine, AS_OF)
    assert not result.success
    assert result.rows == 51
    assert [line.split(":")[0] for line in result.failures] == [failure]


def test_a_nan_posterior_fails_its_summary_suite(pg_engine):
    """PostgreSQL stores NaN (SQLite cannot), which sorts above every number."""
    reset(pg_engine)
    with pg_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bandit_posteriors (namespace, surface, item_id, as_of, alpha, beta)"
                " VALUES ('default', 'home', 'a', :t, 2, 'NaN'), ('default', 'home', 'b', :t, 3, 2)"
            ),
            {"t": AS_OF},
        )
    result = quality.check_posteriors(pg_engine, AS_OF, PARAMS)
    assert not result.success
    assert "expect_column_values_to_not_be_null(beta): 1 unexpected" in result.failures
