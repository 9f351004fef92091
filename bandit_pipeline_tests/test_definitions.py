"""The Dagster project: what it defines, its schedule, and materialising through Dagster."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from bandit_pipeline.definitions import build_definitions, defs
from bandit_pipeline.defs.partitions import fifteen_minute_partitions, window_end
from bandit_pipeline.defs.posteriors import posterior_definitions
from bandit_pipeline.defs.resources import resources_from_settings
from bandit_pipeline.defs.schedule import posterior_update_schedule
from bandit_pipeline.deploy import WORKSPACE_FILE
from bandit_pipeline.settings import Settings, default_settings
from bandit_pipeline_tests.helpers import (
    PARAMS,
    PARTITIONS_START,
    as_of,
    load_events,
    reset,
    rows,
    scalar,
    timed_event,
    traffic,
    warehouse_resource,
)


def test_definitions_pin_assets_jobs_and_schedules():
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    keys = {k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "bandit_rewards",
        "item_catalog",
        "reward_aggregates",
        "bandit_posteriors",
        "explore_candidate_pool",
        "online_posteriors",
        "bandit_explore_metrics",
        "bandit_decision_propensities",
    }
    assert {s.name for s in definitions.sensors} == {
        "explore_ctr_alert",
        "exploration_killswitch",
        "online_store_restore",
        "retry_reason",
    }
    assert definitions.resolve_job_def("killswitch_reset").name == "killswitch_reset"
    assert definitions.resolve_job_def("bandit_posterior_update").name == "bandit_posterior_update"
    schedule = definitions.resolve_schedule_def("bandit_posterior_update_every_15_minutes")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.execution_timezone == "UTC"
    hourly = definitions.resolve_schedule_def("bandit_propensities_hourly")
    assert (hourly.cron_schedule, hourly.job_name) == ("5 * * * *", "bandit_propensities_update")


def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path):
    # An empty DAGSTER_HOME: the deployment's dagster.yaml needs a PostgreSQL instance.
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            str(WORKSPACE_FILE),
        ],
        cwd=tmp_path,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schedule_tick_runs_the_last_complete_window():
    tick = datetime(2026, 11, 28, 10, 30, 5, tzinfo=UTC)
    definitions = build_definitions(default_settings(partitions_start=PARTITIONS_START))
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=definitions.get_repository_def()
    )
    schedule = definitions.resolve_schedule_def(posterior_update_schedule.name)
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-11-28-10:15"]
    assert requests[0].run_key == "2026-11-28-10:15"
    assert window_end("2026-11-28-10:15") == datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


def _settings(tmp_path, **overrides) -> Settings:
    """The documented settings with the posterior parameters of the tests and an online
    store of the test's own."""
    return default_settings(
        online_store_url=f"sqlite:///{tmp_path}/online.db",
        partitions_start=PARTITIONS_START,
        half_life_days=PARAMS.half_life_days,
        attribution_window_hours=PARAMS.attribution_window_hours,
        **overrides,
    )


def test_materialise_a_partition_and_a_single_run_backfill_through_dagster(engine, tmp_path):
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    reset(engine)
    load_events(
        engine,
        [
            timed_event("a", "impression", start, 1),
            timed_event("b", "purchase", start, 3, lag_minutes=17),
        ],
    )
    settings = _settings(tmp_path)
    resources = {
        **resources_from_settings(settings),
        "warehouse": warehouse_resource(engine, settings),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(  # the posterior domain alone
            posterior_definitions(settings).assets,
            partition_key="2026-11-20-12:00",
            instance=instance,
            resources=resources,
        )
        assert result.success
        materialisations = result.asset_materializations_for_node("posterior_update")
        metadata = {m.asset_key.to_user_string(): m.metadata for m in materialisations}
        assert metadata["reward_aggregates"]["impressions"].value == 1
        assert metadata["bandit_posteriors"]["from_scratch_windows"].value == 1
        # The rollups come from the same step: one impression on home, not explored.
        assert metadata["bandit_explore_metrics"]["impressions/home"].value == 1.0

        # A range in one run, computed window by window.
        keys = fifteen_minute_partitions(settings).get_partition_keys_in_range(
            dg.PartitionKeyRange("2026-11-20-12:00", "2026-11-20-13:00")
        )
        job = build_definitions(
            settings, warehouse=warehouse_resource(engine, settings)
        ).resolve_job_def("bandit_posterior_update")
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
        )
        assert result.success
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_posterior_runs") == len(keys)
    modes = [m for (m,) in rows(engine, "SELECT mode FROM bandit_posterior_runs ORDER BY as_of")]
    assert modes == ["from_scratch"] + ["incremental"] * (len(keys) - 1)
    # The purchase arrived in the second window and upgraded the reward to 1.
    assert (
        scalar(
            engine,
            "SELECT late_corrections FROM bandit_reward_aggregates "
            "WHERE item_id = 'i1' AND clicks + purchases > 0",
        )
        == 1
    )


def test_sensors_evaluate_once_per_run_and_the_reset_job(engine, tmp_path):
    """The sensors read the newest rollup run, act, and keep a cursor so a restart with the
    same cursor does nothing; the reset job re-arms a surface."""
    from bandit_pipeline.defs.safeguards import killswitch_sensor
    from bandit_pipeline.monitoring.rollups import materialise_metrics
    from bandit_pipeline.online_store import open_store

    reset(engine)
    load_events(engine, traffic(0, 0.0, 0.3, n_explore=120))
    materialise_metrics(engine, as_of(0), PARAMS, "default")
    settings = _settings(tmp_path, killswitch_min_explore_impressions=100)
    store_url = settings.online_store_url
    resources = {
        **resources_from_settings(settings),
        "warehouse": warehouse_resource(engine, settings),
    }
    with dg.build_sensor_context(resources=resources) as context:
        result = killswitch_sensor(context)
    assert result.cursor == as_of(0).isoformat()
    assert open_store(store_url).killswitch("default", "home").tripped
    # A restarted sensor resumes from its cursor and does nothing more.
    with dg.build_sensor_context(cursor=result.cursor, resources=resources) as context:
        assert isinstance(killswitch_sensor(context), dg.SkipReason)

    job = build_definitions(
        settings, warehouse=warehouse_resource(engine, settings)
    ).resolve_job_def("killswitch_reset")
    run_config = {
        "ops": {"reset_killswitch_op": {"config": {"surface": "home", "reason": "fixed"}}}
    }
    assert job.execute_in_process(run_config=run_config).success
    state = open_store(store_url).killswitch("default", "home")
    assert not state.tripped
    assert state.reason == "fixed"


def test_importing_the_code_location_reads_no_settings(tmp_path):
    """Invalid settings fail when Dagster loads the code location, not at import."""
    script = (
        "import bandit_pipeline.definitions as d\n"
        "from bandit_pipeline.settings import SettingsError\n"
        "try:\n"
        "    d.defs()\n"
        "except SettingsError as e:\n"
        "    print('BANDIT_PARTITIONS_START' in str(e))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "BANDIT_PARTITIONS_START": "yesterday"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize(
    ("warehouse_url", "store_url", "warehouse_kind", "store_kind"),
    [
        ("sqlite:///w.db", "sqlite:///s.db", "sqlite", "sqlite"),
        ("postgresql+psycopg://u@db/bandit", "redis://cache:6379/0", "postgresql", "redis"),
    ],
)
def test_groups_and_kinds_name_what_the_assets_are_and_where_they_live(
    warehouse_url, store_url, warehouse_kind, store_kind
):
    settings = default_settings(
        warehouse_url=warehouse_url, online_store_url=store_url, partitions_start=PARTITIONS_START
    )
    graph = build_definitions(settings).resolve_asset_graph()
    nodes = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert {name: node.group_name for name, node in nodes.items()} == {
        "bandit_rewards": "bandit_exploration",
        "item_catalog": "bandit_exploration",
        "reward_aggregates": "bandit_exploration",
        "bandit_posteriors": "bandit_exploration",
        "explore_candidate_pool": "bandit_exploration",
        "online_posteriors": "bandit_exploration",
        "bandit_explore_metrics": "bandit_monitoring",
        "bandit_decision_propensities": "bandit_evaluation",
    }
    assert {name: node.kinds for name, node in nodes.items()} == {
        **{name: {warehouse_kind} for name in nodes},
        "online_posteriors": {store_kind},
    }


def test_resources_take_every_value_from_the_settings():
    """No resource field has a default of its own, and each nested config gives back the
    parameter object it was made from."""

    settings = default_settings(
        half_life_days=3.0, surfaces="home,cart", killswitch_mode="absolute", alert_ctr_ratio=0.4
    )
    resources = resources_from_settings(settings)
    with_defaults = [
        f"{key}.{name}"
        for key, resource in resources.items()
        for name, field in type(resource).model_fields.items()
        if not field.is_required()
    ]
    assert with_defaults == []
    assert resources["warehouse"].parameters == settings.posterior_parameters()
    assert resources["candidate_pool"].parameters == settings.pool_parameters()
    assert resources["monitoring"].thresholds() == settings.alert_thresholds()
    assert resources["monitoring"].policy() == settings.killswitch_policy()
    assert resources["warehouse"].future_scan.total_seconds() == settings.max_clock_skew_seconds


def test_the_newest_rollup_run_is_an_aware_time_on_both_warehouses(engine):
    from bandit_pipeline.monitoring.rollups import materialise_metrics, newest_rollup_run

    reset(engine)
    assert newest_rollup_run(engine) is None
    load_events(engine, traffic(0, 0.1, 0.3) + traffic(1, 0.1, 0.3))
    materialise_metrics(engine, as_of(0), PARAMS, "default")
    materialise_metrics(engine, as_of(1), PARAMS, "default")
    assert newest_rollup_run(engine) == as_of(1)
    assert newest_rollup_run(engine).utcoffset().total_seconds() == 0


def test_a_spark_warehouse_defines_the_window_job_on_spark(tmp_path):
    """A spark:// warehouse URL selects the Spark engine: the job and its schedule over the
    same assets, tagged spark; nothing starts Spark until a run opens it."""
    settings = default_settings(
        warehouse_url=f"spark://local[2]?warehouse={tmp_path}/lake",
        partitions_start=PARTITIONS_START,
    )
    assert settings.warehouse_engine == "spark"
    definitions = build_definitions(settings)
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "bandit_rewards",
        "reward_aggregates",
        "bandit_posteriors",
        "bandit_explore_metrics",
        "item_catalog",
        "explore_candidate_pool",
        "online_posteriors",
    }
    assert graph.get(dg.AssetKey("explore_candidate_pool")).kinds == {"spark"}
    job = definitions.resolve_job_def("bandit_posterior_update")
    assert {n.name for n in job.nodes} == {
        "posterior_update",
        "explore_candidate_pool",
        "online_posteriors",
        "reward_aggregates_window_reward_rows_valid",
        "reward_aggregates_aggregates_within_bounds",
        "bandit_posteriors_posteriors_proper",
        "explore_candidate_pool_pool_items_sane",
    }
    schedule = definitions.resolve_schedule_def("bandit_posterior_update_every_15_minutes")
    assert schedule.job_name == "bandit_posterior_update"
    assert {s.name for s in definitions.sensors} == {
        "explore_ctr_alert",
        "exploration_killswitch",
        "online_store_restore",
        "retry_reason",
    }
    assert definitions.resolve_job_def("killswitch_reset").name == "killswitch_reset"
    checks = {k.name for k in definitions.resolve_asset_graph().asset_check_keys}
    assert checks == {
        "window_reward_rows_valid",
        "aggregates_within_bounds",
        "posteriors_proper",
        "pool_items_sane",
    }
    assert not (tmp_path / "lake").exists()
