"""The 15-minute job over the assets of every domain, and the schedule that runs it.

The job takes its partitions from its assets, so it is defined once, without settings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from bandit_pipeline.timing import PARTITION_CRON, PARTITION_FORMAT, WINDOW, WINDOW_SECONDS

posterior_update_job = dg.define_asset_job(
    "bandit_posterior_update",
    selection=dg.AssetSelection.assets(
        "reward_aggregates",
        "bandit_posteriors",
        "explore_candidate_pool",
        "online_posteriors",
        "bandit_explore_metrics",
    ),
    description="Aggregate the window's reward events, update the posteriors, rebuild the "
    "candidate pool and publish it, and roll the metrics up. The unit for backfills and "
    "reruns.",
    # The steps run one after the other in the run's process: the work is SQL in the
    # warehouse, and a process per step would import Dagster and Great Expectations again
    # for each of its nine steps (about 25 s a run on two cores instead of a few).
    executor_def=dg.in_process_executor,
)


@dg.schedule(
    name="bandit_posterior_update_every_15_minutes",
    cron_schedule=PARTITION_CRON,
    execution_timezone="UTC",
    job=posterior_update_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the latest complete 15-minute window (run key = partition key).",
)
def posterior_update_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At each quarter hour, the window that just closed: its start is one window back."""
    tick = context.scheduled_execution_time.astimezone(UTC)
    key = last_complete_window(tick)
    return dg.RunRequest(run_key=key, partition_key=key)


def last_complete_window(moment: datetime) -> str:
    """The partition key of the newest window that ended at or before ``moment``."""
    seconds = int(moment.timestamp()) // int(WINDOW_SECONDS) * int(WINDOW_SECONDS)
    return (datetime.fromtimestamp(seconds, UTC) - WINDOW).strftime(PARTITION_FORMAT)


def schedule_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[posterior_update_job], schedules=[posterior_update_schedule])
