"""The online store: published snapshots, flags, kill switch, exposure guard."""

from bandit_pipeline.online_store.base import (
    Exposure,
    ExposureRead,
    KillSwitchState,
    OnlineStore,
    StoreRejected,
    StoreUnavailable,
    open_store,
)
from bandit_pipeline.online_store.snapshot import Snapshot

__all__ = [
    "Exposure",
    "ExposureRead",
    "KillSwitchState",
    "OnlineStore",
    "Snapshot",
    "StoreRejected",
    "StoreUnavailable",
    "open_store",
]
