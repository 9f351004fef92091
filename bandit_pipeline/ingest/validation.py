"""Field checks shared by the event and catalog validators.

Each checker returns the cleaned value or raises :class:`Rejected` with a reason an
operator can act on ("slot: must be >= 0, got -1").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from bandit_pipeline.identifiers import NAME_RULE, id_problem, is_name

EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class Rejected(ValueError):
    """A row failed validation; the message is the reason kept beside it."""


def required_id(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise Rejected(f"{name}: missing")
    return clean_id(name, value)


def clean_id(name: str, value: Any) -> str:
    # bool is an int subclass: refuse it explicitly
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected(f"{name}: expected a string, got {type(value).__name__}")
    text = str(value)
    problem = id_problem(text)
    if problem is not None:
        raise Rejected(f"{name}: {problem}")
    return text


def optional_text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    return clean_id(name, value)


def name_value(fields: dict[str, Any], name: str, default: str | None = None) -> str:
    value = fields.get(name)
    if value is None or value == "":
        if default is None:
            raise Rejected(f"{name}: missing")
        return default
    if not is_name(value):
        raise Rejected(f"{name}: expected {NAME_RULE}, got {value!r:.80}")
    return value


def boolean(fields: dict[str, Any], name: str, default: bool) -> bool:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Rejected(f"{name}: expected true or false, got {value!r:.80}")


def integer(fields: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Rejected(f"{name}: expected an integer, got a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise Rejected(f"{name}: expected an integer, got {value!r:.80}") from None
    if not isinstance(value, int):
        raise Rejected(f"{name}: expected an integer, got {type(value).__name__}")
    if value < low:
        raise Rejected(f"{name}: must be >= {low}, got {value}")
    if value > high:
        raise Rejected(f"{name}: must be <= {high}, got {value}")
    return value


def number(fields: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Rejected(f"{name}: expected a number, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Rejected(f"{name}: expected a number, got {value!r:.80}") from None
    if not isinstance(value, int | float):
        raise Rejected(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise Rejected(f"{name}: must be finite, got {value}")
    if not low <= value <= high:
        raise Rejected(f"{name}: must be between {low:g} and {high:g}, got {value:g}")
    return value


def timestamp(value: Any, name: str, latest: datetime) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (naive means UTC) or a datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Rejected(f"{name}: not an ISO 8601 timestamp: {value!r:.80}") from None
    elif value is None or value == "":
        raise Rejected(f"{name}: missing")
    else:
        raise Rejected(f"{name}: expected an ISO 8601 string, got {type(value).__name__}")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > latest:
        raise Rejected(
            f"{name}: {moment.isoformat()} is in the future (after {latest.isoformat()})"
        )
    if moment < EARLIEST_PLAUSIBLE:
        raise Rejected(f"{name}: {moment.isoformat()} is before {EARLIEST_PLAUSIBLE.year}")
    return moment


def warehouse_time(moment: datetime) -> str:
    """The canonical text of a UTC instant: ``YYYY-MM-DD HH:MM:SS.ffffff`` (no offset)."""
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
