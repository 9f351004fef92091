"""The online store: published snapshots, flags, kill switch, exposure guard.

``types`` holds the values and errors, ``interface`` what every store offers,
``snapshot`` the published snapshot and its encoding, ``redis`` and ``sqlite`` the two
stores (``redis_cluster`` the Redis store on a Redis Cluster), and ``factory`` chooses
one from a URL (``open_store``).
"""

from bandit_pipeline.online_store.factory import open_store
from bandit_pipeline.online_store.interface import ExposureRead, OnlineStore
from bandit_pipeline.online_store.snapshot import Snapshot
from bandit_pipeline.online_store.types import (
    Exposure,
    KillSwitchState,
    StoreRejected,
    StoreUnavailable,
)

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
