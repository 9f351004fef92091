"""Prometheus metrics of the serving process (``/metrics``).

The names match the warehouse rollups and the Dagster metadata: ``bandit_explore_impressions``
counts exploration items served (exported as ``bandit_explore_impressions_total``).

Label values are bounded: a namespace or surface that the settings do not name is
counted under ``other``, so a client cannot create series at will (request values come
from outside). The reasons are the decision path's fixed set.
"""

from __future__ import annotations

import contextlib
import time
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry()

EXPLORE_IMPRESSIONS = Counter(
    "bandit_explore_impressions",
    "Exploration items injected into responses.",
    ["namespace", "surface"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "bandit_decisions",
    "Serving decisions by outcome (explored / not_explored) and reason.",
    ["namespace", "surface", "outcome", "reason"],
    registry=REGISTRY,
)
SNAPSHOT_AGE = Gauge(
    "bandit_snapshot_age_seconds",
    "Seconds since the snapshot in use was published.",
    ["namespace", "surface"],
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "bandit_store_errors",
    "Online store calls that failed or timed out on the serving path.",
    registry=REGISTRY,
)
EXPOSURE_WRITES_DROPPED = Counter(
    "bandit_exposure_writes_dropped",
    "Exposure-guard writes lost because the store was down or the queue full.",
    registry=REGISTRY,
)
DECISION_ROWS_DROPPED = Counter(
    "bandit_decision_rows_dropped",
    "Decision traces not written to bandit_decisions (warehouse down or queue full).",
    registry=REGISTRY,
)


OTHER = "other"


class LabelBounds:
    """The namespaces and surfaces that may become label values; any other is ``other``."""

    def __init__(self, namespaces: frozenset[str], surfaces: frozenset[str]) -> None:
        self.namespaces, self.surfaces = namespaces, surfaces

    def __call__(self, namespace: str, surface: str) -> tuple[str, str]:
        return (
            namespace if namespace in self.namespaces else OTHER,
            surface if surface in self.surfaces else OTHER,
        )


# Looking a labelled child up costs a few microseconds a call; a decision needs two, so
# they are remembered (the label values are namespaces, surfaces and fixed reasons).
@lru_cache(maxsize=4096)
def decisions(namespace: str, surface: str, outcome: str, reason: str) -> Counter:
    return DECISIONS.labels(namespace, surface, outcome, reason)


@lru_cache(maxsize=4096)
def explore_impressions(namespace: str, surface: str) -> Counter:
    return EXPLORE_IMPRESSIONS.labels(namespace, surface)


def track_snapshot_age(namespace: str, surface: str, published_at: float | None) -> None:
    """Report the age of the snapshot in use, computed when scraped; None removes it."""
    if published_at is None:
        with contextlib.suppress(KeyError):
            SNAPSHOT_AGE.remove(namespace, surface)
        return
    SNAPSHOT_AGE.labels(namespace, surface).set_function(lambda: time.time() - published_at)
