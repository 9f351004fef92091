"""Synthetic shop traffic: a catalog and the telemetry events it would produce.

Used by ``make demo``, the benchmarks and the tests. Deterministic for a given seed. Each
item has a hidden click-through rate; an impression may lead to a click, then an
add-to-cart, then a purchase, a few seconds to minutes later.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

SURFACES = ("home", "pdp", "cart")
CATEGORIES = ("shoes", "shirts", "bags", "hats", "socks", "jackets")


def generate_catalog(
    n_items: int, *, namespace: str = "default", now: datetime, seed: int = 7
) -> list[dict[str, Any]]:
    """``n_items`` catalog rows with prices around a per-category median."""
    rng = random.Random(seed)
    medians = {category: 20.0 + 15.0 * i for i, category in enumerate(CATEGORIES)}
    items = []
    for i in range(n_items):
        category = CATEGORIES[i % len(CATEGORIES)]
        age_days = rng.uniform(0, 60)
        items.append(
            {
                "namespace": namespace,
                "item_id": f"item-{i:06d}",
                "title": f"{category.title()} #{i}",
                "category": category,
                "price": round(medians[category] * rng.uniform(0.5, 1.8), 2),
                "availability": round(rng.uniform(0.2, 1.0), 3),
                "freshness_index": round(max(0.0, 1.0 - age_days / 60.0), 4),
                "first_seen_at": (now - timedelta(days=age_days)).isoformat(),
            }
        )
    return items


def generate_events(
    item_ids: list[str],
    n_impressions: int,
    *,
    start: datetime,
    end: datetime,
    surfaces: tuple[str, ...] = SURFACES,
    namespace: str = "default",
    seed: int = 11,
    explore_share: float = 0.2,
    experiment: str | None = None,
    holdout_percent: float = 10.0,
    id_prefix: str = "ev",
) -> Iterator[dict[str, Any]]:
    """Impressions spread uniformly over [start, end), each followed by its outcomes."""
    rng = random.Random(seed)
    ctr = {item: rng.betavariate(1.2, 25.0) for item in item_ids}
    span = (end - start).total_seconds()
    serial = 0
    for i in range(n_impressions):
        item = item_ids[rng.randrange(len(item_ids))]
        surface = surfaces[i % len(surfaces)]
        user = f"user-{rng.randrange(50_000)}"
        occurred = start + timedelta(seconds=rng.random() * span)
        variant = None
        if experiment is not None:
            variant = "control" if rng.random() * 100 < holdout_percent else "treatment"
        explore = variant != "control" and rng.random() < explore_share
        base = {
            "namespace": namespace,
            "surface": surface,
            "user_id": user,
            "request_id": f"req-{seed}-{i}",
            "item_id": item,
            "slot": rng.randrange(10),
            "explore": explore,
            "bandit_policy_id": "ts-v1" if explore else None,
            "experiment": experiment,
            "variant": variant,
        }
        serial += 1
        yield {
            **base,
            "event_id": f"{id_prefix}-{seed}-{serial}",
            "event_type": "impression",
            "occurred_at": occurred.isoformat(),
        }
        if rng.random() >= ctr[item]:
            continue
        when = occurred
        for event_type, carry_on in (("click", 0.35), ("add_to_cart", 0.4), ("purchase", 0.0)):
            when = when + timedelta(seconds=rng.uniform(1, 300))
            serial += 1
            yield {
                **base,
                "event_id": f"{id_prefix}-{seed}-{serial}",
                "event_type": event_type,
                "occurred_at": min(when, end - timedelta(microseconds=1)).isoformat(),
            }
            if rng.random() >= carry_on:
                break


def write_jsonl(path: str | Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Write rows as JSON Lines; returns how many."""
    count = 0
    with open(path, "wb") as handle:
        for row in rows:
            handle.write(orjson.dumps({k: v for k, v in row.items() if v is not None}))
            handle.write(b"\n")
            count += 1
    return count
