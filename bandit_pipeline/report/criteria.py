"""The success criteria for widening the rollout: pure pass/fail lines over what the
report read, with thresholds from the settings (``BANDIT_WIDEN_*``, docs/report.md).

Missing evidence never passes: a range without experiment traffic cannot show that the
core metrics are safe, so its lines fail and say why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bandit_pipeline.report.stats import CORE_METRICS, Comparison


@dataclass(frozen=True)
class WideningThresholds:
    """When the report calls a range good enough to widen the rollout
    (from ``Settings.widening_thresholds()``)."""

    min_hours: int
    min_explore_impressions: int
    min_srm_p_value: float
    max_core_metric_drop: float


@dataclass(frozen=True)
class Evidence:
    """What the criteria look at, gathered over the report's range."""

    open_alert_surfaces: Sequence[str]  # surfaces with an alert open at the range's end
    tripped_surfaces: Sequence[str]  # surfaces whose kill switch was tripped in the range
    srm_p_values: Mapping[str, float | None]  # surface -> p-value (None: no holdout known)
    comparisons: Sequence[Comparison]
    explore_hours: int  # hours of the range with explore impressions
    explore_impressions: int


@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    passed: bool
    detail: str


def evaluate(evidence: Evidence, thresholds: WideningThresholds) -> list[Criterion]:
    """Every criterion, in the order the page lists them."""
    lines = [
        _no_open_alert(evidence),
        _not_tripped(evidence),
        _srm(evidence, thresholds),
        *(_metric(evidence, thresholds, metric) for metric in CORE_METRICS),
        Criterion(
            "explore_hours",
            f"at least {thresholds.min_hours} hours with exploration",
            evidence.explore_hours >= thresholds.min_hours,
            f"{evidence.explore_hours} hours",
        ),
        Criterion(
            "explore_impressions",
            f"at least {thresholds.min_explore_impressions:,} explore impressions",
            evidence.explore_impressions >= thresholds.min_explore_impressions,
            f"{evidence.explore_impressions:,} explore impressions",
        ),
    ]
    return lines


def all_passed(criteria: Sequence[Criterion]) -> bool:
    """The verdict: widen only when every line passes."""
    return bool(criteria) and all(line.passed for line in criteria)


def _no_open_alert(evidence: Evidence) -> Criterion:
    surfaces = sorted(evidence.open_alert_surfaces)
    return Criterion(
        "no_open_alert",
        "no exploration-CTR alert open at the end of the range",
        not surfaces,
        f"open on {', '.join(surfaces)}" if surfaces else "none open",
    )


def _not_tripped(evidence: Evidence) -> Criterion:
    surfaces = sorted(evidence.tripped_surfaces)
    return Criterion(
        "killswitch_not_tripped",
        "kill switch not tripped on any surface during the range",
        not surfaces,
        f"tripped on {', '.join(surfaces)}" if surfaces else "never tripped",
    )


def _srm(evidence: Evidence, thresholds: WideningThresholds) -> Criterion:
    label = (
        f"sample-ratio-mismatch p-value at least {thresholds.min_srm_p_value:g} on every surface"
    )
    values = evidence.srm_p_values
    if not values:
        return Criterion("srm", label, False, "no experiment traffic in the range")
    unknown = sorted(s for s, p in values.items() if p is None)
    low = sorted(s for s, p in values.items() if p is not None and p < thresholds.min_srm_p_value)
    detail = ", ".join(
        f"{s}: {'no holdout recorded' if p is None else f'p={p:.3g}'}"
        for s, p in sorted(values.items())
    )
    return Criterion("srm", label, not unknown and not low, detail)


def _metric(evidence: Evidence, thresholds: WideningThresholds, metric: str) -> Criterion:
    """Fails only when the whole 95% interval of treatment / control - 1 lies below
    -margin: a treatment that is clearly worse by more than the margin."""
    margin = thresholds.max_core_metric_drop
    label = f"{CORE_METRICS[metric]}: treatment not worse than control by more than {margin:.0%}"
    rows = sorted(
        (c for c in evidence.comparisons if c.metric == metric),
        key=lambda c: (c.surface, c.experiment),
    )
    if not rows:
        return Criterion(f"core_{metric}", label, False, "no experiment traffic in the range")
    worse = [c for c in rows if c.ci_high is not None and c.ci_high < -margin]
    unknown = [c for c in rows if c.ci_high is None]
    parts = []
    for c in rows:
        if c.ci_high is None:
            parts.append(f"{c.surface}: no interval (no events in a variant)")
        else:
            parts.append(
                f"{c.surface}: {c.relative_difference:+.1%} [{c.ci_low:+.1%}, {c.ci_high:+.1%}]"
            )
    return Criterion(f"core_{metric}", label, not worse and not unknown, "; ".join(parts))


class _SwitchEvent(Protocol):
    surface: str
    action: str
    at: datetime


class _Episode(Protocol):
    surface: str
    opened_at: datetime
    resolved_at: datetime | None


def open_at(episodes: Iterable[_Episode], moment: datetime) -> list[str]:
    """Surfaces with an alert episode open at ``moment``."""
    return sorted(
        {
            e.surface
            for e in episodes
            if e.opened_at <= moment and (e.resolved_at is None or e.resolved_at > moment)
        }
    )


def tripped_in_range(events: Iterable[_SwitchEvent], since: datetime, until: datetime) -> list[str]:
    """Surfaces whose kill switch tripped in [since, until], or was still tripped at
    ``since`` from an earlier trip (``events`` in time order)."""
    state: dict[str, bool] = {}
    tripped: set[str] = set()
    for event in events:
        if event.at > until:
            break
        if event.at < since:
            state[event.surface] = event.action == "trip"
        elif event.action == "trip":
            tripped.add(event.surface)
    return sorted(tripped | {surface for surface, on in state.items() if on})
