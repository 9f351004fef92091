"""The one Definitions object of the project (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from bandit_pipeline.defs.assets import bandit_rewards, item_catalog, posterior_update
from bandit_pipeline.defs.jobs import posterior_update_job, posterior_update_schedule
from bandit_pipeline.defs.resources import WarehouseResource
from bandit_pipeline.settings import get_settings


def build_definitions(warehouse: WarehouseResource | None = None) -> dg.Definitions:
    """All assets, jobs and schedules; ``warehouse`` defaults to the BANDIT_* settings."""
    return dg.Definitions(
        assets=[bandit_rewards, item_catalog, posterior_update],
        jobs=[posterior_update_job],
        schedules=[posterior_update_schedule],
        resources={"warehouse": warehouse or WarehouseResource.from_settings(get_settings())},
    )


defs = build_definitions()
