"""Validation of telemetry events against the ``bandit_rewards`` schema (docs/warehouse.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bandit_pipeline.identifiers import is_id, is_name
from bandit_pipeline.ingest.validation import (
    Rejected,
    boolean,
    clean_id,
    integer,
    name_value,
    timestamp,
    warehouse_time,
)

EVENT_TYPES = frozenset({"impression", "click", "add_to_cart", "purchase"})
VARIANTS = frozenset({"treatment", "control"})
MAX_SLOT = 10_000

# Column order of a validated row, as staged into the warehouse.
EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "occurred_at",
    "ingested_at",
    "namespace",
    "surface",
    "user_id",
    "request_id",
    "item_id",
    "slot",
    "explore",
    "bandit_policy_id",
    "experiment",
    "variant",
)

EventRow = tuple[Any, ...]

if TYPE_CHECKING:
    from bandit_pipeline.settings import Settings


@dataclass(frozen=True, slots=True)
class EventValidator:
    """Turns a raw mapping into a row in :data:`EVENT_COLUMNS` order, or raises Rejected.

    ``historical`` keeps the producer's time as the ingestion time (``ingested_at`` when
    the row carries one, else ``occurred_at``), for replaying logged history. Otherwise
    ``ingested_at`` is left to the warehouse and a value in the row is ignored.
    """

    now: datetime
    max_clock_skew: timedelta
    default_namespace: str
    historical: bool = False

    @classmethod
    def from_settings(
        cls, settings: Settings, now: datetime, *, historical: bool = False
    ) -> EventValidator:
        return cls(
            now=now,
            max_clock_skew=settings.max_clock_skew,
            default_namespace=settings.namespace,
            historical=historical,
        )

    @property
    def latest_allowed(self) -> datetime:
        return self.now + self.max_clock_skew

    def __call__(self, fields: dict[str, Any]) -> EventRow:
        get = fields.get
        event_type = get("event_type")
        if type(event_type) is not str or event_type not in EVENT_TYPES:
            if event_type is None or event_type == "":
                raise Rejected("event_type: missing")
            raise Rejected(
                f"event_type: unknown {event_type!r:.80}; expected one of {sorted(EVENT_TYPES)}"
            )
        latest = self.latest_allowed
        occurred = timestamp(get("occurred_at"), "occurred_at", latest)
        ingested = None
        if self.historical:
            ingested = warehouse_time(self._historical_ingested_at(get("ingested_at"), occurred))
        experiment = _text(get("experiment"), "experiment")
        variant = _text(get("variant"), "variant")
        if variant is not None:
            if variant not in VARIANTS:
                raise Rejected(f"variant: expected treatment or control, got {variant!r:.80}")
            if experiment is None:
                raise Rejected("experiment: missing while variant is set")
        slot = get("slot")
        if type(slot) is not int or not 0 <= slot <= MAX_SLOT:
            slot = integer(fields, "slot", 0, MAX_SLOT)
        explore = get("explore")
        if type(explore) is not bool:
            explore = boolean(fields, "explore", False)
        namespace = get("namespace")
        if not is_name(namespace):
            namespace = name_value(fields, "namespace", self.default_namespace)
        surface = get("surface")
        if not is_name(surface):
            surface = name_value(fields, "surface")
        return (
            _id(get("event_id"), "event_id"),
            event_type,
            warehouse_time(occurred),
            ingested,
            namespace,
            surface,
            _id(get("user_id"), "user_id"),
            _id(get("request_id"), "request_id"),
            _id(get("item_id"), "item_id"),
            slot,
            explore,
            _text(get("bandit_policy_id"), "bandit_policy_id"),
            experiment,
            variant,
        )

    def _historical_ingested_at(self, raw: Any, occurred: datetime) -> datetime:
        if raw is None or raw == "":
            return occurred
        moment = timestamp(raw, "ingested_at", self.latest_allowed)
        if moment < occurred:
            raise Rejected("ingested_at: earlier than occurred_at")
        return moment


def _id(value: Any, name: str) -> str:
    """A required id; the common well-formed case returns without further calls."""
    if is_id(value):
        return value
    if value is None or value == "":
        raise Rejected(f"{name}: missing")
    return clean_id(name, value)


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    return _id(value, name)


def utc_now() -> datetime:
    return datetime.now(UTC)
