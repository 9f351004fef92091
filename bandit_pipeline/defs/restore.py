"""The sensor that restores an emptied online store from the warehouse's record
(``store_record.restore``): the snapshots, the flags and the kill-switch states."""

import dagster as dg

from bandit_pipeline.defs.resources import (
    CandidatePoolResource,
    OnlineStoreResource,
    WarehouseResource,
)
from bandit_pipeline.store_record import RestoreReport, restore


def restore_store(
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
) -> RestoreReport:
    """One restore of the code location's namespace (the sensor's, and the publish's)."""
    store = online_store.open()
    try:
        return restore(warehouse.target(), store, candidate_pool.namespace)
    finally:
        store.close()


@dg.sensor(
    name="online_store_restore",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Restores an emptied online store (a Redis restarted without persistence) "
    "from the warehouse's record: the newest published snapshots (bandit_publications), "
    "the flags (bandit_flag_events) and the kill switches (bandit_killswitch_events).",
)
def online_store_restore_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    candidate_pool: CandidatePoolResource,
    online_store: OnlineStoreResource,
) -> dg.SkipReason:
    """Requests no run: the tick's message says what was restored, if anything."""
    report = restore_store(warehouse, candidate_pool, online_store)
    if report.restored or report.unavailable:
        context.log.warning("online store restored: %s", report.summary())
    return dg.SkipReason(report.summary())


def restore_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[online_store_restore_sensor])
