"""The product's fixed time constants, in one place.

These are part of the design, not settings: the 15-minute window is the unit of the
job, the partitions and the metric rollups; the hour is the look-back of the alert and
the kill switch and the memory of the duplicate-exposure guard. SQL receives them as
bind parameters (``:window_seconds``), never as literals.
"""

from __future__ import annotations

from datetime import timedelta

WINDOW = timedelta(minutes=15)
WINDOW_SECONDS = WINDOW.total_seconds()
WINDOWS_PER_HOUR = 4
# Dagster partitions: one per window, keyed by the window's start in UTC.
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"
PARTITION_CRON = "*/15 * * * *"

HOUR = timedelta(hours=1)
SECONDS_PER_HOUR = 3_600.0
SECONDS_PER_DAY = 86_400.0

# The duplicate-exposure guard remembers an item explored for a user this long.
EXPOSURE_TTL_SECONDS = 3_600
# A replaced snapshot stays readable this long, for readers that fetched the old pointer.
SUPERSEDED_GRACE_SECONDS = 3_600
