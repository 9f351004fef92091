"""15-minute time windows in UTC; a partition key is the window's start."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from bandit_pipeline.settings import Settings
from bandit_pipeline.timing import PARTITION_CRON, PARTITION_FORMAT, WINDOW

# Every asset of the 15-minute chain takes this concurrency pool. The instance limits it to
# one run at a time (dagster.yaml: concurrency.pools, granularity run), so two windows
# never run at once, however their runs were launched: schedule, backfill, by hand or
# re-executed. Each window builds on the one before it.
POSTERIOR_CHAIN_POOL = "bandit_posterior_chain"


def fifteen_minute_partitions(settings: Settings) -> dg.TimeWindowPartitionsDefinition:
    """The partitions of every asset, from the first window on (``first_partition``).

    Built from the settings, so that importing the project reads no environment."""
    return dg.TimeWindowPartitionsDefinition(
        start=settings.first_partition(),
        fmt=PARTITION_FORMAT,
        cron_schedule=PARTITION_CRON,
        timezone="UTC",
    )


def window_end(partition_key: str) -> datetime:
    """The as-of time T of a partition: its window's end."""
    return datetime.strptime(partition_key, PARTITION_FORMAT).replace(tzinfo=UTC) + WINDOW
