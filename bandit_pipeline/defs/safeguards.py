"""What guards the core metrics: the CTR alert and kill-switch sensors over the metric
rollups (which the posterior step writes, defs/posteriors.py), and the job that
deliberately resets a tripped kill switch."""

from datetime import datetime

import dagster as dg

from bandit_pipeline.defs.failures import explain_failures
from bandit_pipeline.defs.resources import (
    CandidatePoolResource,
    MonitoringResource,
    OnlineStoreResource,
    WarehouseResource,
)
from bandit_pipeline.monitoring.alerts import evaluate_ctr_alerts, webhook_notifier
from bandit_pipeline.monitoring.killswitch import evaluate_killswitch, reset_killswitch
from bandit_pipeline.monitoring.rollups import newest_rollup_run
from bandit_pipeline.settings import Settings


def _new_run(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> datetime | dg.SkipReason:
    """The newest rollup run, unless the sensor's cursor says it was evaluated already."""
    newest = newest_rollup_run(warehouse.target())
    if newest is None:
        return dg.SkipReason("no metric rollups yet")
    if context.cursor == newest.isoformat():
        return dg.SkipReason(f"already evaluated the run of {newest.isoformat()}")
    return newest


@dg.sensor(
    name="explore_ctr_alert",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Opens, notifies and resolves exploration-CTR alert episodes (bandit_alerts).",
)
def explore_ctr_alert_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    monitoring: MonitoringResource,
) -> dg.SensorResult | dg.SkipReason:
    newest = _new_run(context, warehouse)
    if isinstance(newest, dg.SkipReason):
        return newest
    notify = webhook_notifier(monitoring.webhook_url) if monitoring.webhook_url else None
    changes = evaluate_ctr_alerts(
        warehouse.target(), candidate_pool.namespace, newest, monitoring.thresholds(), notify
    )
    for change in changes:
        context.log.warning("alert %s on %s: %s", change.action, change.surface, change.figures)
    return dg.SensorResult(cursor=newest.isoformat())


@dg.sensor(
    name="exploration_killswitch",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Trips the kill switch of a surface whose exploration reward falls below the "
    "threshold (bandit_killswitch_events); only a deliberate reset re-arms it.",
)
def killswitch_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
    monitoring: MonitoringResource,
) -> dg.SensorResult | dg.SkipReason:
    newest = _new_run(context, warehouse)
    if isinstance(newest, dg.SkipReason):
        return newest
    store = online_store.open()
    try:
        changes = evaluate_killswitch(
            warehouse.target(), store, candidate_pool.namespace, newest, monitoring.policy()
        )
    finally:
        store.close()
    for change in changes:
        context.log.warning(
            "kill switch %s on %s: %s", change.action, change.surface, change.reason
        )
    return dg.SensorResult(cursor=newest.isoformat())


class KillSwitchResetConfig(dg.Config):
    surface: str
    reason: str
    namespace: str | None = None  # None: the code location's namespace (BANDIT_NAMESPACE)


@dg.op(description="Re-arm exploration on a surface, recording who and why.")
@explain_failures
def reset_killswitch_op(
    context: dg.OpExecutionContext,
    config: KillSwitchResetConfig,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
) -> None:
    namespace = config.namespace or candidate_pool.namespace
    store = online_store.open()
    try:
        reset_killswitch(
            warehouse.target(), store, namespace, config.surface, config.reason,
            actor=f"dagster run {context.run_id}",
        )  # fmt: skip
    finally:
        store.close()


@dg.job(name="killswitch_reset", description="Deliberately reset a tripped kill switch.")
def killswitch_reset_job() -> None:
    reset_killswitch_op()


def safeguard_definitions(settings: Settings) -> dg.Definitions:
    """The two sensors over the metric rollups (written by the posterior step,
    defs/posteriors.py) and the reset job."""
    return dg.Definitions(
        sensors=[explore_ctr_alert_sensor, killswitch_sensor],
        jobs=[killswitch_reset_job],
    )
