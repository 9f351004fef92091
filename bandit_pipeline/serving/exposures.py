"""Writes of the duplicate-exposure guard, off the request path.

A decision reads the user's recent exposures from the store (one command) and adds the
exposures this process has decided but not yet written; its own exposure is queued, and
a thread writes the queue every ``flush_seconds`` in one pipeline. So this process always
sees its own exposures, other processes see them within one flush interval, and a
decision costs one store command. When the store is down the queued writes are dropped
and counted: the worst outcome is an item explored twice for one user within the hour.
"""

from __future__ import annotations

import logging
import threading

from bandit_pipeline.online_store import Exposure, OnlineStore, StoreUnavailable
from bandit_pipeline.serving import metrics

log = logging.getLogger(__name__)
MAX_PENDING = 100_000
# Written in chunks: each chunk's round trip releases the interpreter lock, so a large
# backlog never holds up the request thread for long.
WRITE_CHUNK = 100

_Key = tuple[str, str]


class PendingExposures:
    def __init__(self, store: OnlineStore, flush_seconds: float = 0.2) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._queued: list[Exposure] = []
        self._unwritten: dict[_Key, set[str]] = {}  # queued or being written
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, exposure: Exposure) -> None:
        with self._lock:
            if len(self._queued) >= MAX_PENDING:
                metrics.EXPOSURE_WRITES_DROPPED.inc()
                return
            self._queued.append(exposure)
            key = (exposure.namespace, exposure.user_id)
            self._unwritten.setdefault(key, set()).update(exposure.item_ids)

    def unwritten(self, namespace: str, user_id: str) -> set[str]:
        """Items this process explored for the user that the store may not have yet."""
        with self._lock:
            return set(self._unwritten.get((namespace, user_id), ()))

    def flush(self) -> None:
        """Write everything queued in one call; drop it (counted) if the store is down."""
        with self._lock:
            batch, self._queued = self._queued, []
        if not batch:
            return
        try:
            for start in range(0, len(batch), WRITE_CHUNK):
                self.store.write_exposures(batch[start : start + WRITE_CHUNK])
        except StoreUnavailable as exc:
            metrics.EXPOSURE_WRITES_DROPPED.inc(len(batch))
            metrics.STORE_ERRORS.inc()
            log.warning("%d exposures not recorded: %s", len(batch), exc)
        finally:
            with self._lock:
                for exposure in batch:
                    key = (exposure.namespace, exposure.user_id)
                    remaining = self._unwritten.get(key)
                    if remaining is not None:
                        remaining.difference_update(exposure.item_ids)
                        if not remaining:
                            del self._unwritten[key]
                # Items queued again meanwhile stay unwritten.
                for exposure in self._queued:
                    key = (exposure.namespace, exposure.user_id)
                    self._unwritten.setdefault(key, set()).update(exposure.item_ids)

    def start(self) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.flush_seconds):
                self.flush()

        self._thread = threading.Thread(target=loop, name="exposure-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
