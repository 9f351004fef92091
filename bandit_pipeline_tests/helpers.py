"""Small helpers shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from bandit_pipeline.defs.resources import WarehouseResource
from bandit_pipeline.settings import Settings


def event(event_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid impression event, a few minutes old, with ``overrides`` applied."""
    row = {
        "event_id": event_id,
        "event_type": "impression",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "namespace": "default",
        "surface": "home",
        "user_id": "u1",
        "request_id": f"r-{event_id}",
        "item_id": "item-1",
        "slot": 2,
        "explore": True,
        "bandit_policy_id": "ts-v1",
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).all()


def warehouse_resource(engine: Engine, settings: Settings) -> WarehouseResource:
    """The warehouse resource of ``settings``, on ``engine``'s database: for the jobs and
    sensors the tests run through Dagster."""
    url = engine.url.render_as_string(hide_password=False)
    return WarehouseResource.from_settings(settings.model_copy(update={"warehouse_url": url}))
