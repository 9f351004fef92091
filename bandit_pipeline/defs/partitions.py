"""15-minute time windows in UTC; a partition key is the window's start."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from bandit_pipeline.settings import get_settings
from bandit_pipeline.timing import PARTITION_CRON, PARTITION_FORMAT

fifteen_minute_partitions = dg.TimeWindowPartitionsDefinition(
    start=get_settings().partitions_start,
    fmt=PARTITION_FORMAT,
    cron_schedule=PARTITION_CRON,
    timezone="UTC",
)


def window_end(partition_key: str) -> datetime:
    """The as-of time T of a partition: its window's end."""
    window = fifteen_minute_partitions.time_window_for_partition_key(partition_key)
    return window.end.astimezone(UTC)
