"""The exploration-CTR alert (docs/monitoring.md).

An alert opens on a surface when exploration CTR stays below ``alert_ctr_ratio`` of the
baseline CTR through the last hour: every one of its four windows has exploration and is
below, and the hour has at least ``alert_min_explore_impressions`` explore impressions (so
noise does not page anyone). It resolves when the hour, with enough impressions, is back
at or above the ratio. Each episode is one row of ``bandit_alerts``; its webhook message
is sent once (retried at the next evaluations until the webhook accepts it).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bandit_pipeline.monitoring.hour import HourFigures, last_hour
from bandit_pipeline.redact import redact_webhook
from bandit_pipeline.timing import WINDOWS_PER_HOUR
from bandit_pipeline.warehouse.sql import query_rows, sql_statement

if TYPE_CHECKING:
    from bandit_pipeline.warehouse.spark import SparkWarehouse

log = logging.getLogger(__name__)
KIND = "explore_ctr_low"

Notifier = Callable[[dict], bool]


@dataclass(frozen=True)
class AlertThresholds:
    """When the exploration-CTR alert opens (from ``Settings.alert_thresholds()``)."""

    ctr_ratio: float
    min_explore_impressions: int


@dataclass(frozen=True)
class AlertChange:
    surface: str
    action: str  # opened, resolved, notified
    figures: dict


def is_low(hour: HourFigures, thresholds: AlertThresholds) -> bool:
    """Every window of the hour has exploration with CTR below the ratio of baseline."""
    if hour.explore_impressions < thresholds.min_explore_impressions:
        return False
    if len(hour.windows) < WINDOWS_PER_HOUR:
        return False
    return all(
        baseline is not None and explore < thresholds.ctr_ratio * baseline
        for explore, baseline in hour.windows
    )


def has_recovered(hour: HourFigures, thresholds: AlertThresholds) -> bool:
    if hour.explore_impressions < thresholds.min_explore_impressions:
        return False  # not enough evidence either way: keep the episode open
    explore, baseline = hour.explore_ctr, hour.baseline_ctr
    return (
        explore is not None and baseline is not None and explore >= thresholds.ctr_ratio * baseline
    )


def evaluate_ctr_alerts(
    engine: Engine | SparkWarehouse,
    namespace: str,
    as_of: datetime,
    thresholds: AlertThresholds,
    notify: Notifier | None = None,
) -> list[AlertChange]:
    """Open, resolve and notify alert episodes as of ``as_of``; safe to repeat."""
    changes: list[AlertChange] = []
    hours = last_hour(engine, namespace, as_of)
    open_alerts = {
        row.surface: row
        for row in query_rows(engine, "alerts/open_alerts", {"namespace": namespace})
        if row.kind == KIND
    }
    for surface, hour in sorted(hours.items()):
        figures = {
            "namespace": namespace,
            "surface": surface,
            "as_of": as_of.isoformat(),
            **hour.as_dict(),
        }
        current = open_alerts.get(surface)
        if current is None and is_low(hour, thresholds):
            try:
                _write(
                    engine,
                    "alerts/open_alert",
                    {
                        "kind": KIND,
                        "namespace": namespace,
                        "surface": surface,
                        "as_of": as_of,
                        "explore_impressions": hour.explore_impressions,
                        "explore_ctr": hour.explore_ctr,
                        "baseline_ctr": hour.baseline_ctr,
                        "details": json.dumps(figures),
                    },
                )
            except IntegrityError:
                continue  # another evaluation opened it first
            changes.append(AlertChange(surface, "opened", figures))
        elif current is not None and has_recovered(hour, thresholds):
            _write(engine, "alerts/resolve_alert", {"alert_id": current.alert_id, "as_of": as_of})
            changes.append(AlertChange(surface, "resolved", figures))
    if notify is not None:
        changes += _notify_pending(engine, namespace, as_of, notify)
    return changes


def _write(warehouse: Engine | SparkWarehouse, name: str, params: dict) -> None:
    """One statement in a transaction of its own; on Spark an appended event, the new
    episode's id made here."""
    if isinstance(warehouse, Engine):
        with warehouse.begin() as connection:
            connection.execute(sql_statement(name), params)
        return
    warehouse.execute(name, {"alert_id": uuid.uuid4().hex, **params})


def _notify_pending(
    engine: Engine | SparkWarehouse, namespace: str, as_of: datetime, notify: Notifier
) -> list[AlertChange]:
    """Send each open, not yet delivered episode once."""
    sent = []
    pending = [
        row
        for row in query_rows(engine, "alerts/open_alerts", {"namespace": namespace})
        if row.kind == KIND and row.notified_at is None
    ]
    for row in pending:
        message = {
            "text": (
                f":warning: bandit exploration CTR low on {namespace}/{row.surface}: below "
                f"the alert ratio of baseline CTR for the hour before {as_of.isoformat()}"
            ),
            "alert_id": row.alert_id,
            "namespace": namespace,
            "surface": row.surface,
        }
        if notify(message):
            _write(engine, "alerts/mark_notified", {"alert_id": row.alert_id, "as_of": as_of})
            sent.append(AlertChange(row.surface, "notified", message))
    return sent


def webhook_notifier(url: str, attempts: int = 3, timeout: float = 5.0) -> Notifier:
    """POST a Slack-compatible JSON body; retried with backoff, failures logged, never raised."""

    def send(message: dict) -> bool:
        body = json.dumps(message).encode()
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    if 200 <= response.status < 300:
                        return True
                    problem = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                problem = str(exc)
            log.warning(
                "alert webhook %s failed (attempt %d/%d): %s",
                redact_webhook(url), attempt, attempts, problem,
            )  # fmt: skip
            if attempt < attempts:
                time.sleep(0.5 * 2 ** (attempt - 1))
        return False

    return send
