"""The Dagster code location: every domain's definitions, merged (workspace.yaml loads
``defs``).

Nothing is read or built at import: Dagster calls ``defs`` when it loads the code
location, and only then are the BANDIT_* settings read.
"""

from __future__ import annotations

import dagster as dg

from bandit_pipeline.defs.checks import quality_check_definitions
from bandit_pipeline.defs.evaluation import evaluation_definitions
from bandit_pipeline.defs.posteriors import posterior_definitions
from bandit_pipeline.defs.publishing import publishing_definitions
from bandit_pipeline.defs.resources import WarehouseResource, resources_from_settings
from bandit_pipeline.defs.restore import restore_definitions
from bandit_pipeline.defs.retries import retry_definitions
from bandit_pipeline.defs.safeguards import safeguard_definitions
from bandit_pipeline.defs.schedule import schedule_definitions
from bandit_pipeline.settings import Settings, get_settings


def build_definitions(
    settings: Settings, warehouse: WarehouseResource | None = None
) -> dg.Definitions:
    """All assets, checks, jobs, the schedule and the sensors, with resources from
    ``settings``; ``warehouse`` replaces the warehouse resource."""
    resources = resources_from_settings(settings)
    if warehouse is not None:
        resources["warehouse"] = warehouse
    if settings.warehouse_engine == "spark":
        # All but the propensities and their evaluation (docs/spark.md).
        return dg.Definitions.merge(
            posterior_definitions(settings),
            publishing_definitions(settings),
            safeguard_definitions(settings),
            quality_check_definitions(settings),
            restore_definitions(),
            schedule_definitions(),
            retry_definitions(),
            dg.Definitions(resources=resources),
        )
    return dg.Definitions.merge(
        posterior_definitions(settings),
        publishing_definitions(settings),
        safeguard_definitions(settings),
        quality_check_definitions(settings),
        schedule_definitions(),
        evaluation_definitions(settings),
        restore_definitions(),
        retry_definitions(),
        dg.Definitions(resources=resources),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, from the BANDIT_* environment."""
    return build_definitions(get_settings())
