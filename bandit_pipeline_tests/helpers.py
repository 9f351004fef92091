"""Small helpers shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text


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
