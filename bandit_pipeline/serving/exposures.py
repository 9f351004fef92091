"""Writes of the duplicate-exposure guard, off the request path's critical wait.

A decision's exposure is queued. The next decision takes whatever is queued and sends it
to the store in the same exchange as its own read of the user's recent exposures (one
round trip, which the decision's sampling overlaps); a thread writes what is still
queued every ``flush_seconds`` when traffic stops. Until an exposure's write is
confirmed it counts as "unwritten" and every decision of this process adds it to what
the store returned, so this process always sees its own exposures and other processes
see them within one decision or one flush interval. When the store is down the writes
are dropped and counted: the worst outcome is an item explored twice for one user
within the hour.
"""

from __future__ import annotations

import logging
import threading

from bandit_pipeline.online_store import Exposure, OnlineStore, StoreUnavailable
from bandit_pipeline.serving import metrics
from bandit_pipeline.serving.background import PeriodicFlusher

log = logging.getLogger(__name__)
MAX_PENDING = 100_000
# At most this many exposures go out in one exchange, so a backlog never makes one
# decision (or one flush step, which holds the interpreter lock while it packs) long.
WRITE_CHUNK = 100

_Key = tuple[str, str]


class PendingExposures(PeriodicFlusher):
    thread_name = "exposure-writer"

    def __init__(self, store: OnlineStore, flush_seconds: float = 0.2) -> None:
        super().__init__(flush_seconds)
        self.store = store
        self._queued: list[Exposure] = []
        # Queued or in flight, per user; a list, not a set of items: two decisions can be
        # writing the same user's item at once, and the first confirmation must not hide
        # the second.
        self._unwritten: dict[_Key, list[Exposure]] = {}
        self._lock = threading.Lock()

    def add(self, exposure: Exposure) -> None:
        with self._lock:
            if len(self._queued) >= MAX_PENDING:
                metrics.EXPOSURE_WRITES_DROPPED.inc()
                return
            self._queued.append(exposure)
            key = (exposure.namespace, exposure.user_id)
            self._unwritten.setdefault(key, []).append(exposure)

    def unwritten(self, namespace: str, user_id: str) -> set[str]:
        """Items this process explored for the user that the store may not have yet.

        Ask before sending the read these complement: an item no longer unwritten then
        was confirmed before the read was sent, so the read sees it."""
        with self._lock:
            return self._unwritten_items(namespace, user_id)

    def take(self, limit: int = WRITE_CHUNK) -> list[Exposure]:
        """The oldest queued exposures, to write; they stay unwritten until ``finished``."""
        with self._lock:
            return self._take(limit)

    def unwritten_and_queued(
        self, namespace: str, user_id: str, limit: int = WRITE_CHUNK
    ) -> tuple[set[str], list[Exposure]]:
        """``unwritten`` and ``take`` under one lock: what a decision needs before it
        sends its exchange."""
        with self._lock:
            return self._unwritten_items(namespace, user_id), self._take(limit)

    def _unwritten_items(self, namespace: str, user_id: str) -> set[str]:
        pending = self._unwritten.get((namespace, user_id))
        return {item for e in pending for item in e.item_ids} if pending else set()

    def _take(self, limit: int) -> list[Exposure]:
        batch, self._queued = self._queued[:limit], self._queued[limit:]
        return batch

    def finished(self, batch: list[Exposure], error: Exception | None = None) -> None:
        """The store confirmed ``batch`` (or failed it: then it is dropped and counted)."""
        if not batch:
            return
        if error is not None:
            metrics.EXPOSURE_WRITES_DROPPED.inc(len(batch))
            metrics.STORE_ERRORS.inc()
            log.warning("%d exposures not recorded: %s", len(batch), error)
        with self._lock:
            for exposure in batch:
                key = (exposure.namespace, exposure.user_id)
                pending = self._unwritten[key]
                pending.remove(exposure)
                if not pending:
                    del self._unwritten[key]

    def flush(self) -> None:
        """Write everything queued now, in chunks; drop (and count) it if the store is down."""
        while batch := self.take():
            try:
                self.store.write_exposures(batch)
            except StoreUnavailable as exc:
                self.finished(batch, exc)
                self.finished(self.take(MAX_PENDING), exc)
                return
            self.finished(batch)
