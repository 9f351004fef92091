"""The 15-minute job over the assets of every domain, and the schedule that runs it.

The job takes its partitions from its assets, so it is defined once, without settings.
"""

from __future__ import annotations

import dagster as dg

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

posterior_update_schedule = dg.build_schedule_from_partitioned_job(
    posterior_update_job,
    name="bandit_posterior_update_every_15_minutes",
    description="Runs the latest complete 15-minute window (run key = partition key).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def schedule_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[posterior_update_job], schedules=[posterior_update_schedule])
