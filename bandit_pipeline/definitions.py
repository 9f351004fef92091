"""The one Definitions object of the project (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from bandit_pipeline.defs.assets import (
    bandit_rewards,
    explore_candidate_pool,
    item_catalog,
    online_posteriors,
    posterior_update,
)
from bandit_pipeline.defs.checks import ASSET_CHECKS
from bandit_pipeline.defs.jobs import posterior_update_job, posterior_update_schedule
from bandit_pipeline.defs.monitoring import (
    bandit_explore_metrics,
    explore_ctr_alert_sensor,
    killswitch_reset_job,
    killswitch_sensor,
)
from bandit_pipeline.defs.resources import WarehouseResource, resources_from_settings
from bandit_pipeline.settings import Settings, get_settings


def build_definitions(
    settings: Settings | None = None, warehouse: WarehouseResource | None = None
) -> dg.Definitions:
    """All assets, jobs and schedules, with resources from ``settings`` (default: the
    BANDIT_* environment); ``warehouse`` overrides the warehouse resource."""
    settings = settings or get_settings()
    resources = resources_from_settings(settings)
    if warehouse is not None:
        resources["warehouse"] = warehouse
    return dg.Definitions(
        assets=[
            bandit_rewards,
            item_catalog,
            posterior_update,
            explore_candidate_pool,
            online_posteriors,
            bandit_explore_metrics,
        ],
        asset_checks=ASSET_CHECKS,
        jobs=[posterior_update_job, killswitch_reset_job],
        schedules=[posterior_update_schedule],
        sensors=[explore_ctr_alert_sensor, killswitch_sensor],
        resources=resources,
    )


defs = build_definitions()
