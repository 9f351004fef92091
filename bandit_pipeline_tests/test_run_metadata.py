"""The figures the job's steps report, computed without Dagster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bandit_pipeline.monitoring.rollups import SurfaceFigures
from bandit_pipeline.pool import PoolResult
from bandit_pipeline.run_metadata import (
    aggregates_metadata,
    metrics_metadata,
    pool_metadata,
    posteriors_metadata,
    publish_metadata,
)
from bandit_pipeline.window_update import WindowResult

AS_OF = datetime(2026, 11, 20, 12, 15, tzinfo=UTC)


def window(k: int, mode: str, **figures) -> WindowResult:
    values = {
        "items_touched": 2,
        "posterior_rows": 2,
        "impressions": 10,
        "clicks": 1,
        "add_to_carts": 1,
        "purchases": 0,
        "reward_evidence": 1.5,
        "late_corrections": 0,
        "aggregate_seconds": 0.01,
        "posterior_seconds": 0.02,
        **figures,
    }
    return WindowResult(as_of=AS_OF + timedelta(minutes=15 * k), mode=mode, **values)


def test_a_run_of_windows_reports_sums_and_its_newest_window():
    windows = [window(0, "from_scratch", items_touched=5), window(1, "incremental", clicks=3)]
    assert aggregates_metadata(windows) == {
        "partitions": 2,
        "rows": 7,
        "items_touched": 2,
        "impressions": 20,
        "clicks": 4,
        "add_to_carts": 2,
        "purchases": 0,
        "reward_evidence": 3.0,
        "late_corrections": 0,
        "sql_seconds": 0.02,
    }
    assert posteriors_metadata(windows) == {
        "partitions": 2,
        "rows": 4,
        "incremental_windows": 1,
        "from_scratch_windows": 1,
        "sql_seconds": 0.04,
        "last_window": windows[1].metadata(),
    }


def test_the_pool_reports_eligible_items_per_surface_and_exclusions_per_reason():
    result = PoolResult(
        AS_OF,
        eligible={"home": 4, "cart": 1},
        excluded={"home": {"stale": 2, "price": 1}, "cart": {"stale": 3}},
    )
    assert pool_metadata(result) == {
        "as_of": AS_OF.isoformat(),
        "skipped": False,
        "eligible_home": 4,
        "eligible_cart": 1,
        "excluded_price": 1,
        "excluded_stale": 5,
    }


def test_a_surface_not_published_reports_minus_one():
    assert publish_metadata(AS_OF, {"home": 4, "cart": None}) == {
        "version": "20261120T121500Z",
        "published_home": 4,
        "published_cart": -1,
    }


def test_the_publish_reports_what_the_restore_after_it_wrote():
    from bandit_pipeline.store_record import RestoreReport

    restored = RestoreReport("default", emptied=True, flags={"bandit_explore_slots": "2"},
                             killswitches={"home": True})  # fmt: skip
    metadata = publish_metadata(AS_OF, {"home": 4}, restored)
    assert metadata["restored"] == 2
    assert metadata["restore"] == (
        "default: store emptied; flag bandit_explore_slots=2; kill switch home tripped"
    )


def test_metrics_report_the_newest_figures_per_surface_as_floats():
    home = SurfaceFigures("home", 10, 2.0, 0.1, 100, None, 110, 0.05)
    metadata = metrics_metadata(3, [home])
    assert metadata == {
        "partitions": 3,
        "bandit_explore_impressions/home": 10.0,
        "bandit_explore_reward_sum/home": 2.0,
        "bandit_explore_ctr/home": 0.1,
        "impressions/home": 110.0,
        "ctr/home": 0.05,
    }
    assert all(isinstance(v, float) for k, v in metadata.items() if k != "partitions")
