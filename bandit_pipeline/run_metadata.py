"""The figures each step of the 15-minute job reports, from what the step did.

Dagster shows these as the metadata of a materialisation or a check (plotted over time
in its UI); they are plain dictionaries here, so that they can be tested without running
Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bandit_pipeline.monitoring.rollups import SurfaceFigures
from bandit_pipeline.pool import PoolResult, snapshot_version
from bandit_pipeline.store_record import RestoreReport
from bandit_pipeline.window_update import WindowResult

# The figures of the newest window plotted per surface.
SURFACE_FIGURES = (
    "bandit_explore_impressions",
    "bandit_explore_reward_sum",
    "bandit_explore_ctr",
    "baseline_ctr",
    "impressions",
    "ctr",
)


def aggregates_metadata(windows: Sequence[WindowResult]) -> dict[str, Any]:
    """``reward_aggregates`` over the windows of one run (in time order): sums, and the
    items the newest window touched."""
    return {
        "partitions": len(windows),
        "rows": sum(w.items_touched for w in windows),
        "items_touched": windows[-1].items_touched,
        "impressions": sum(w.impressions for w in windows),
        "clicks": sum(w.clicks for w in windows),
        "add_to_carts": sum(w.add_to_carts for w in windows),
        "purchases": sum(w.purchases for w in windows),
        "reward_evidence": sum(w.reward_evidence for w in windows),
        "late_corrections": sum(w.late_corrections for w in windows),
        "sql_seconds": round(sum(w.aggregate_seconds for w in windows), 4),
    }


def posteriors_metadata(windows: Sequence[WindowResult]) -> dict[str, Any]:
    """``bandit_posteriors`` over the windows of one run (in time order): how each window
    was computed, and the newest window's figures."""
    return {
        "partitions": len(windows),
        "rows": sum(w.posterior_rows for w in windows),
        "incremental_windows": sum(w.mode == "incremental" for w in windows),
        "from_scratch_windows": sum(w.mode == "from_scratch" for w in windows),
        "sql_seconds": round(sum(w.posterior_seconds for w in windows), 4),
        "last_window": windows[-1].metadata(),
    }


def pool_metadata(result: PoolResult) -> dict[str, Any]:
    """Eligible items per surface, and the exclusions per reason over all surfaces."""
    metadata: dict[str, Any] = {"as_of": result.as_of.isoformat(), "skipped": result.skipped}
    for surface, count in result.eligible.items():
        metadata[f"eligible_{surface}"] = count
    excluded: dict[str, int] = {}
    for counts in result.excluded.values():
        for reason, count in counts.items():
            excluded[reason] = excluded.get(reason, 0) + count
    metadata.update({f"excluded_{reason}": count for reason, count in sorted(excluded.items())})
    return metadata


def publish_metadata(
    as_of: datetime, published: dict[str, int | None], restored: RestoreReport | None = None
) -> dict[str, Any]:
    """The snapshot version and the items published per surface; -1 where a newer pool or
    snapshot kept the surface from being published. With the restore that followed: what
    it found and wrote (``restore``), and how many values it wrote (``restored``)."""
    metadata: dict[str, Any] = {"version": snapshot_version(as_of)}
    for surface, count in published.items():
        metadata[f"published_{surface}"] = -1 if count is None else count
    if restored is not None:
        metadata["restore"] = restored.summary()
        metadata["restored"] = (
            len(restored.snapshots) + len(restored.flags) + len(restored.killswitches)
        )
    return metadata


def metrics_metadata(partitions: int, newest: Sequence[SurfaceFigures]) -> dict[str, Any]:
    """The number of windows rolled up, and the newest window's figures per surface, as
    floats (``bandit_explore_ctr/home``); a figure without a value is left out."""
    metadata: dict[str, Any] = {"partitions": partitions}
    for surface in newest:
        for name in SURFACE_FIGURES:
            value = getattr(surface, name)
            if value is not None:
                metadata[f"{name}/{surface.surface}"] = float(value)
    return metadata
