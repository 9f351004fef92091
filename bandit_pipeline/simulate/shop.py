"""The synthetic shop of the dry run: a catalog with hidden true rates, returning users
in sessions, a stand-in ranker, and the outcomes its shoppers produce.

Pure model, no I/O: ``dry_run`` drives it through the real serving, ingestion and job.
Deterministic for a given seed. Every probability here is hidden from the product; only
the events it emits reach the warehouse.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bandit_pipeline.simulate.traffic import CATEGORIES

SCENARIOS = ("steady", "collapse")
SURFACE_CLICK_FACTOR = {"home": 0.8, "pdp": 1.2, "cart": 1.0}
RESPONSE_LENGTH = 8
COLLAPSE_FACTOR = 0.05  # what is left of a fresh item's click rate once exploration collapses


@dataclass(frozen=True)
class ShopOptions:
    """What a dry run simulates (the CLI's ``demo`` options)."""

    seed: int = 7
    days: float = 2.0
    users: int = 10_000
    requests_per_hour: int = 900
    established_items: int = 120
    fresh_items: int = 60
    drift_per_day: float = (
        0.0  # log-rate change per day of half the fresh items (+) and the rest (-)
    )
    scenario: str = "steady"
    collapse_after: float = 0.5  # share of the run after which the collapse scenario starts
    duplicate_share: float = 0.01
    late_share: float = 0.02
    malformed_share: float = 0.002

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario: {self.scenario!r} is not one of {', '.join(SCENARIOS)}")
        if self.days <= 0 or self.users < 1 or self.requests_per_hour < 1:
            raise ValueError("days, users and requests_per_hour must be positive")
        if self.fresh_items < 2 or self.established_items < RESPONSE_LENGTH:
            raise ValueError(
                f"the shop needs at least 2 fresh and {RESPONSE_LENGTH} established items"
            )


@dataclass(frozen=True)
class Item:
    item_id: str
    category: str
    price: float
    availability: float
    freshness: float
    fresh: bool
    appeal: float  # base click rate
    cart_rate: float  # add-to-cart given a click
    buy_rate: float  # purchase given an add-to-cart
    trend: int  # drift direction of a fresh item: +1, -1 (0: none)
    explorable: bool  # in stock and sensibly priced: what the candidate pool should keep

    def catalog_row(self, namespace: str, now: datetime) -> dict[str, Any]:
        age_days = (1.0 - self.freshness) * 60.0
        return {
            "namespace": namespace,
            "item_id": self.item_id,
            "title": f"{self.category.title()} {self.item_id}",
            "category": self.category,
            "price": self.price,
            "availability": self.availability,
            "freshness_index": self.freshness,
            "first_seen_at": (now - timedelta(days=age_days)).isoformat(),
        }


@dataclass(frozen=True)
class Request:
    """One recommendation request of a session."""

    at: datetime
    surface: str
    user_id: str
    request_id: str
    ranked: list[str]


@dataclass(frozen=True)
class Outcome:
    event_type: str
    occurred_at: datetime


@dataclass
class Shop:
    """The world of one dry run: catalog, users and the hidden rates."""

    options: ShopOptions
    start: datetime
    weights: dict[str, float]
    items: list[Item] = field(init=False)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.options.seed)
        self.items = self._catalog()
        self._established = [i for i in self.items if not i.fresh]
        self._by_id = {i.item_id: i for i in self.items}
        popularity = [self.rng.paretovariate(1.5) for _ in self._established]
        self._popularity = popularity
        # Returning users: a few come back often, most now and then.
        self._user_weights = [
            1.0 / (rank + 1 + self.options.users / 4) for rank in range(self.options.users)
        ]
        self._serial = 0

    # The catalog ------------------------------------------------------------------------

    def _catalog(self) -> list[Item]:
        rng, options = self.rng, self.options
        medians = {category: 20.0 + 15.0 * i for i, category in enumerate(CATEGORIES)}
        items = []
        for i in range(options.established_items + options.fresh_items):
            fresh = i >= options.established_items
            category = CATEGORIES[i % len(CATEGORIES)]
            price = round(medians[category] * rng.uniform(0.6, 1.6), 2)
            availability = round(rng.uniform(0.4, 1.0), 3)
            explorable = True
            if fresh and i % 12 == 0:
                availability, explorable = 0.0, False  # out of stock
            elif fresh and i % 12 == 6:
                price, explorable = round(medians[category] * 40, 2), False  # absurd price
            items.append(
                Item(
                    item_id=f"{'new' if fresh else 'item'}-{i:05d}",
                    category=category,
                    price=price,
                    availability=availability,
                    freshness=round(rng.uniform(0.8, 1.0) if fresh else rng.uniform(0.0, 0.4), 4),
                    fresh=fresh,
                    appeal=rng.betavariate(1.5, 20.0) if fresh else rng.betavariate(3.0, 40.0),
                    cart_rate=rng.uniform(0.15, 0.45),
                    buy_rate=rng.uniform(0.2, 0.6),
                    trend=(1 if i % 2 else -1) if fresh else 0,
                    explorable=explorable,
                )
            )
        return items

    def catalog_rows(self, namespace: str) -> list[dict[str, Any]]:
        return [item.catalog_row(namespace, self.start) for item in self.items]

    def item(self, item_id: str) -> Item:
        return self._by_id[item_id]

    @property
    def fresh_items(self) -> list[Item]:
        return [i for i in self.items if i.fresh and i.explorable]

    # The hidden rates ---------------------------------------------------------------------

    @property
    def collapse_at(self) -> datetime | None:
        if self.options.scenario != "collapse":
            return None
        return self.start + timedelta(days=self.options.days * self.options.collapse_after)

    def click_rate(self, item_id: str, surface: str, at: datetime) -> float:
        item = self._by_id.get(item_id)
        if item is None:
            return 0.0
        rate = item.appeal * SURFACE_CLICK_FACTOR.get(surface, 1.0)
        if item.fresh:
            days = (at - self.start).total_seconds() / 86_400
            rate *= math.exp(self.options.drift_per_day * item.trend * days)
            collapse = self.collapse_at
            if collapse is not None and at >= collapse:
                rate *= COLLAPSE_FACTOR
        return min(rate, 0.95)

    def expected_reward(self, item_id: str, surface: str, at: datetime) -> float:
        """E[max weight of the outcomes of one impression] / w_max: the quantity the
        posterior of (surface, item) estimates."""
        item = self._by_id.get(item_id)
        if item is None:
            return 0.0
        w = self.weights
        click = self.click_rate(item_id, surface, at)
        cart, buy = item.cart_rate, item.buy_rate
        best = (
            (1 - cart) * w["click"]
            + cart * (1 - buy) * max(w["click"], w["add_to_cart"])
            + cart * buy * max(w["click"], w["add_to_cart"], w["purchase"])
        )
        return click * best / max(w.values())

    # Traffic ------------------------------------------------------------------------------

    def requests(self, window_start: datetime, window: timedelta) -> list[Request]:
        """The requests of the sessions that start in the window, in time order."""
        rng, options = self.rng, self.options
        hour = (window_start.hour + window_start.minute / 60) / 24
        daily = 1.0 + 0.4 * math.sin(2 * math.pi * (hour - 0.375))  # peak mid-afternoon
        sessions = _poisson(
            rng, options.requests_per_hour / 2.2 * daily * window / timedelta(hours=1)
        )
        requests = []
        for _ in range(sessions):
            user = f"user-{rng.choices(range(options.users), self._user_weights)[0]:05d}"
            at = window_start + window * rng.random()
            pages = ["home"] + ["pdp"] * rng.choice((0, 1, 1, 2)) + ["cart"] * (rng.random() < 0.3)
            for page in pages:
                if at >= window_start + window:
                    break
                self._serial += 1
                requests.append(
                    Request(at, page, user, f"sim-{options.seed}-{self._serial}", self._rank(page))
                )
                at += timedelta(seconds=rng.uniform(5, 90))
        requests.sort(key=lambda r: r.at)
        return requests

    def _rank(self, surface: str) -> list[str]:
        """The stand-in ranker: popular established items, a little shuffled."""
        picked = self.rng.choices(self._established, self._popularity, k=RESPONSE_LENGTH * 2)
        return list(dict.fromkeys(i.item_id for i in picked))[:RESPONSE_LENGTH] or [
            self._established[0].item_id
        ]

    def outcomes(self, item_id: str, surface: str, at: datetime) -> list[Outcome]:
        """What one impression leads to: a click, then maybe an add-to-cart, then maybe a
        purchase (which can come hours later)."""
        rng = self.rng
        if rng.random() >= self.click_rate(item_id, surface, at):
            return []
        item = self._by_id[item_id]
        when = at + timedelta(seconds=rng.uniform(2, 120))
        outcomes = [Outcome("click", when)]
        if rng.random() < item.cart_rate:
            when += timedelta(seconds=rng.uniform(30, 1_800))
            outcomes.append(Outcome("add_to_cart", when))
            if rng.random() < item.buy_rate:
                when += timedelta(seconds=rng.expovariate(1 / 5_400))  # about 1.5 h, often more
                outcomes.append(Outcome("purchase", min(when, at + timedelta(hours=20))))
        return outcomes

    def arrival(self, occurred: datetime) -> datetime:
        """When an event reaches the warehouse: seconds later, or now and then much later."""
        if self.rng.random() < self.options.late_share:
            return occurred + timedelta(minutes=self.rng.uniform(30, 180))
        return occurred + timedelta(seconds=self.rng.uniform(1, 40))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation above 50, where it is exact enough here)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
