"""Off-policy evaluation's record, kept by Dagster: the served policy's propensity of each
logged exploration choice (``bandit_decision_propensities``), updated every hour.

Hourly because a decision's snapshot is copied from the job's candidate pools, which are
kept for two hours (``pool.KEEP_POOLS``): a decision left longer would lose its snapshot.
The asset is the ``bandit-pipeline propensities update`` command, run by the daemon.
"""

import dagster as dg

from bandit_pipeline.defs.failures import explain_failures
from bandit_pipeline.defs.resources import WarehouseResource, warehouse_kind
from bandit_pipeline.evaluation.propensities import update_propensities
from bandit_pipeline.settings import Settings

EVALUATION_GROUP = "bandit_evaluation"
PROPENSITIES_CRON = "5 * * * *"  # five minutes past each hour, clear of the quarter hours


@explain_failures
def decision_propensities(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Record the propensities of every explored decision that has none yet."""
    report = update_propensities(warehouse.engine())
    context.log.info("propensities: %s", report.summary())
    return dg.MaterializeResult(
        metadata={
            "decisions": report.decisions,
            "snapshots_copied": report.snapshots_copied,
            **{f"status_{status}": n for status, n in sorted(report.statuses.items())},
        }
    )


propensities_job = dg.define_asset_job(
    "bandit_propensities_update",
    selection=dg.AssetSelection.assets("bandit_decision_propensities"),
    description="Record the served policy's propensity of each logged exploration choice "
    "(off-policy evaluation; docs/data-science.md).",
    executor_def=dg.in_process_executor,
)


@dg.schedule(
    name="bandit_propensities_hourly",
    cron_schedule=PROPENSITIES_CRON,
    execution_timezone="UTC",
    job=propensities_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour: the decisions logged since the last run, while their "
    "candidate pools are still kept.",
)
def propensities_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.scheduled_execution_time.isoformat())


def evaluation_definitions(settings: Settings) -> dg.Definitions:
    asset = dg.asset(
        name="bandit_decision_propensities",
        group_name=EVALUATION_GROUP,
        kinds={warehouse_kind(settings)},
        description="The served policy's propensity of each logged exploration choice "
        "(table bandit_decision_propensities; its snapshots in bandit_decision_snapshots).",
    )(decision_propensities)
    return dg.Definitions(
        assets=[asset], jobs=[propensities_job], schedules=[propensities_schedule]
    )
