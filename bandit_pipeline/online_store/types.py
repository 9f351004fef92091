"""The values the online store keeps and the errors it raises, shared by its interface,
its implementations and their callers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime


class StoreUnavailable(RuntimeError):
    """The online store cannot be reached or did not answer in time."""


class StoreRejected(StoreUnavailable):
    """The store answered this request with an error (bad data under one key, say):
    this request cannot use the store, but the store itself is up."""


@dataclass(frozen=True)
class Exposure:
    """Items explored for a user at a time (the duplicate-exposure guard's memory)."""

    namespace: str
    user_id: str
    item_ids: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class KillSwitchState:
    """Whether exploration is stopped on a surface, why, and since when."""

    tripped: bool
    reason: str
    changed_at: datetime
    changed_by: str = "unknown"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "changed_at": self.changed_at.isoformat()})

    @classmethod
    def from_json(cls, text: str | bytes) -> KillSwitchState:
        data = json.loads(text)
        return cls(**{**data, "changed_at": datetime.fromisoformat(data["changed_at"])})
