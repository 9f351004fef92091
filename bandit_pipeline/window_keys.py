"""The impression keys a 15-minute window touches, staged once per window in the
warehouse (``sql/posteriors/window_keys.sql``): the aggregates, the posteriors and the
metric rollups of the window are all read from them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from bandit_pipeline.policy import PosteriorParameters, decay_factor
from bandit_pipeline.warehouse.sql import sql_file


def evidence_params(
    params: PosteriorParameters, window_start: datetime, as_of: datetime, future_scan: timedelta
) -> dict[str, Any]:
    """Bind values of the window statements (``window_keys.sql``, ``window_evidence.sql``)
    for the window [window_start, as_of)."""
    elapsed = (as_of - window_start).total_seconds()
    return {
        "window_start": window_start,
        "as_of": as_of,
        "future_scan_start": window_start - future_scan,
        "window_start_epoch": window_start.timestamp(),
        "as_of_epoch": as_of.timestamp(),
        "window_decay": decay_factor(elapsed, params.half_life_seconds),
        "half_life_seconds": params.half_life_seconds,
        "attribution_seconds": params.attribution_seconds,
        "w_click": params.weight_click,
        "w_add_to_cart": params.weight_add_to_cart,
        "w_purchase": params.weight_purchase,
        "w_max": params.max_weight,
        "train_all": params.train_on_all_impressions,
    }


def stage_window_keys(
    connection: Connection,
    params: PosteriorParameters,
    window_start: datetime,
    as_of: datetime,
    future_scan: timedelta,
) -> None:
    """Stage the impression keys the window [window_start, as_of) touches, with their
    times (``sql/posteriors/stage_window_keys.sql``), for the rest of the transaction."""
    bind = evidence_params(params, window_start, as_of, future_scan)
    for statement in sql_file("posteriors/stage_window_keys", connection.dialect.name).clauses():
        connection.execute(statement, bind)
