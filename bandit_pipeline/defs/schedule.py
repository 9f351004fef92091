"""The 15-minute job over the assets of every domain, and the schedule that runs it.

The job takes its partitions from its assets, so it is defined once, without settings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from bandit_pipeline.timing import PARTITION_CRON, PARTITION_FORMAT, WINDOW, WINDOW_SECONDS

JOB_NAME = "bandit_posterior_update"
# What the job materialises on PostgreSQL and SQLite; a Spark warehouse has no candidate
# pool and publication yet (defs/posteriors.py, docs/spark.md).
JOB_ASSETS = (
    "reward_aggregates",
    "bandit_posteriors",
    "explore_candidate_pool",
    "online_posteriors",
    "bandit_explore_metrics",
)
SPARK_JOB_ASSETS = ("reward_aggregates", "bandit_posteriors", "bandit_explore_metrics")


def update_job(assets: tuple[str, ...] = JOB_ASSETS) -> dg.UnresolvedAssetJobDefinition:
    """The 15-minute job over ``assets``: the unit for backfills and reruns."""
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*assets),
        description="Aggregate the window's reward events, update the posteriors, rebuild "
        "the candidate pool and publish it, and roll the metrics up (on Spark: all "
        "but the pool and its publication). The unit for backfills and reruns.",
        # The steps run one after the other in the run's process: the work is SQL in the
        # warehouse, and a process per step would import Dagster and Great Expectations
        # again for each of its nine steps (about 25 s a run on two cores instead of a few).
        executor_def=dg.in_process_executor,
    )


posterior_update_job = update_job()


def update_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """The schedule that runs ``job`` on each window as it closes."""
    return dg.schedule(
        name="bandit_posterior_update_every_15_minutes",
        cron_schedule=PARTITION_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs the latest complete 15-minute window (run key = partition key).",
    )(latest_window)


def latest_window(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At each quarter hour, the window that just closed: its start is one window back."""
    tick = context.scheduled_execution_time.astimezone(UTC)
    key = last_complete_window(tick)
    return dg.RunRequest(run_key=key, partition_key=key)


def last_complete_window(moment: datetime) -> str:
    """The partition key of the newest window that ended at or before ``moment``."""
    seconds = int(moment.timestamp()) // int(WINDOW_SECONDS) * int(WINDOW_SECONDS)
    return (datetime.fromtimestamp(seconds, UTC) - WINDOW).strftime(PARTITION_FORMAT)


posterior_update_schedule = update_schedule(posterior_update_job)


def schedule_definitions(spark: bool = False) -> dg.Definitions:
    """The job and its schedule; ``spark``: the job of a Spark warehouse."""
    if not spark:
        return dg.Definitions(jobs=[posterior_update_job], schedules=[posterior_update_schedule])
    job = update_job(SPARK_JOB_ASSETS)
    return dg.Definitions(jobs=[job], schedules=[update_schedule(job)])
