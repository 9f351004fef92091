"""An independent, plain-Python evaluation of DESIGN.md section 3, for the tests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from bandit_pipeline.policy import PosteriorParameters

# Test events in an experiment carry this name (set when they are loaded).
EXPERIMENT = "x"


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    occurred_at: datetime
    ingested_at: datetime
    surface: str
    request_id: str
    item_id: str
    explore: bool
    variant: str | None
    namespace: str = "default"
    user_id: str = "u"


def timed_event(
    event_id: str,
    event_type: str,
    start: datetime,
    minute: float,
    lag_minutes: float = 0.0,
    *,
    surface: str = "home",
    request_id: str = "r1",
    item_id: str = "i1",
    explore: bool = True,
    variant: str | None = None,
) -> Event:
    """An event ``minute`` minutes after ``start``, ingested ``lag_minutes`` later."""
    occurred = start + timedelta(minutes=minute)
    return Event(
        event_id,
        event_type,
        occurred,
        occurred + timedelta(minutes=lag_minutes),
        surface,
        request_id,
        item_id,
        explore,
        variant,
    )


def reference_posteriors(
    events: list[Event], as_of: datetime, params: PosteriorParameters
) -> dict[tuple[str, str, str], tuple[float, float]]:
    """alpha, beta per (namespace, surface, item) as of ``as_of``, straight from the definition."""
    weights = {
        "click": params.weight_click,
        "add_to_cart": params.weight_add_to_cart,
        "purchase": params.weight_purchase,
    }
    w_max = max(weights.values())
    visible = [e for e in events if e.ingested_at < as_of]
    first_impression: dict[tuple, datetime] = {}
    for e in visible:
        trained = e.explore or params.train_on_all_impressions
        if e.event_type == "impression" and trained and e.variant != "control":
            key = (e.namespace, e.surface, e.request_id, e.item_id)
            if key not in first_impression or e.occurred_at < first_impression[key]:
                first_impression[key] = e.occurred_at
    outcomes: dict[tuple, list[Event]] = defaultdict(list)
    for e in visible:
        if e.event_type != "impression":
            outcomes[(e.namespace, e.surface, e.request_id, e.item_id)].append(e)

    evidence: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    h = params.half_life_days * 86400.0
    window = params.attribution_window_hours * 3600.0
    for key, t_i in first_impression.items():
        counted = [
            weights[o.event_type]
            for o in outcomes[key]
            if (o.occurred_at - t_i).total_seconds() <= window
        ]
        reward = max(counted, default=0.0) / w_max
        decay = min(1.0, 0.5 ** ((as_of - t_i).total_seconds() / h))
        item = (key[0], key[1], key[3])
        evidence[item][0] += decay * reward
        evidence[item][1] += decay * (1.0 - reward)
    return {
        item: (params.prior_alpha + a, params.prior_beta + b) for item, (a, b) in evidence.items()
    }


def reference_rollups(
    events: list[Event], as_of: datetime, params: PosteriorParameters
) -> dict[tuple, tuple[int, int, int, int, float, float]]:
    """Metric rollups straight from their definition: per (window of the impression's first
    ingestion, namespace, surface, experiment, variant, explore): impressions, impressions
    with a click / add-to-cart / purchase within the attribution window, reward sum and
    sum of squared rewards (weights unnormalised)."""
    weights = {
        "click": params.weight_click,
        "add_to_cart": params.weight_add_to_cart,
        "purchase": params.weight_purchase,
    }
    visible = [e for e in events if e.ingested_at < as_of]
    impressions: dict[tuple, list[Event]] = defaultdict(list)
    outcomes: dict[tuple, list[Event]] = defaultdict(list)
    for e in visible:
        key = (e.namespace, e.surface, e.request_id, e.item_id)
        (impressions if e.event_type == "impression" else outcomes)[key].append(e)
    window = params.attribution_window_hours * 3600.0
    totals: dict[tuple, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0.0])
    for key, rows in impressions.items():
        t_i = min(r.occurred_at for r in rows)
        first = min(r.ingested_at for r in rows).timestamp()
        window_start = datetime.fromtimestamp(first // 900 * 900, tz=t_i.tzinfo)
        group = (
            window_start,
            key[0],
            key[1],
            max(EXPERIMENT if r.variant else "" for r in rows),
            max(r.variant or "" for r in rows),
            int(any(r.explore for r in rows)),
        )
        counted = [o for o in outcomes[key] if (o.occurred_at - t_i).total_seconds() <= window]
        kinds = {o.event_type for o in counted}
        reward = max((weights[o.event_type] for o in counted), default=0.0)
        total = totals[group]
        total[0] += 1
        total[1] += "click" in kinds
        total[2] += "add_to_cart" in kinds
        total[3] += "purchase" in kinds
        total[4] += reward
        total[5] += reward * reward
    return {group: tuple(values) for group, values in totals.items()}
