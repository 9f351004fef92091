"""Writes of the duplicate-exposure guard, without a round trip of their own.

A decision reads the user's recent exposures from the store (the guard needs them). Its
own exposure is queued here and written in the same round trip as the next decision's
read, before that read, so this process always sees its own exposures; the refresh
thread writes whatever is queued at every refresh, so other processes see them within
one refresh interval. When the store is down the queued writes are dropped and counted:
the worst outcome is an item explored twice for one user within the hour.
"""

from __future__ import annotations

import threading

from bandit_pipeline.online_store import Exposure, OnlineStore, StoreUnavailable
from bandit_pipeline.serving import metrics

MAX_PENDING = 10_000


class PendingExposures:
    def __init__(self) -> None:
        self._items: list[Exposure] = []
        self._lock = threading.Lock()

    def add(self, exposure: Exposure) -> None:
        with self._lock:
            if len(self._items) >= MAX_PENDING:
                metrics.EXPOSURE_WRITES_DROPPED.inc()
                return
            self._items.append(exposure)

    def take(self) -> list[Exposure]:
        """Everything queued, handing the responsibility to write it to the caller."""
        with self._lock:
            taken, self._items = self._items, []
        return taken

    def dropped(self, exposures: list[Exposure]) -> None:
        metrics.EXPOSURE_WRITES_DROPPED.inc(len(exposures))

    def flush(self, store: OnlineStore) -> None:
        """Write what is queued now (the refresh thread calls this)."""
        pending = self.take()
        if not pending:
            return
        try:
            store.write_exposures(pending)
        except StoreUnavailable:
            self.dropped(pending)
            raise
