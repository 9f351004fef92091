"""Writes of the duplicate-exposure guard, off the request path's critical wait.

A decision's exposure is queued. With a store on the other side of a round trip (Redis),
the next decision takes whatever is queued and sends it to the store in the same
exchange as its own read of the user's recent exposures (one round trip, which the
decision's sampling overlaps); a thread writes what is still queued every
``flush_seconds`` when traffic stops. With an embedded store (SQLite) the thread makes
every write, so no decision waits for a write transaction. Until an exposure's write is
confirmed it counts as "unwritten" and every decision of this process adds it to what
the store returned, so this process always sees its own exposures and other processes
see them within one decision or one flush interval. While the store is down the writes
wait in the queue (up to ``MAX_PENDING``) and go out when it is back; a write the store
refuses, a full queue, or a shutdown with the store down drops writes and counts them
(``bandit_exposure_writes_dropped_total``): the worst outcome is an item explored twice
for one user within the hour.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping

from bandit_pipeline.online_store import Exposure, OnlineStore, StoreUnavailable
from bandit_pipeline.serving import metrics
from bandit_pipeline.serving.background import PeriodicFlusher

log = logging.getLogger(__name__)
MAX_PENDING = 100_000
# At most this many exposures go out in one exchange, so a backlog never makes one
# decision (or one flush step, which holds the interpreter lock while it packs) long.
WRITE_CHUNK = 100
# How long a settled exposure still counts for ``claim``: far longer than any decision
# takes between sending its read and claiming its items.
SETTLED_MEMORY_SECONDS = 2.0

_Key = tuple[str, str]


class PendingExposures(PeriodicFlusher):
    thread_name = "exposure-writer"

    def __init__(self, store: OnlineStore, flush_seconds: float = 0.2) -> None:
        super().__init__(flush_seconds)
        self.store = store
        self._writes_per_read = WRITE_CHUNK if store.reads_carry_writes else 0
        self._queued: list[Exposure] = []
        # Queued or in flight, per user; a list, not a set of items: two decisions can be
        # writing the same user's item at once, and the first confirmation must not hide
        # the second.
        self._unwritten: dict[_Key, list[Exposure]] = {}
        # For ``claim``: an exposure claimed while other decisions were in flight is
        # remembered for SETTLED_MEMORY_SECONDS after it settles, since one of them may
        # have sent its read before the write landed. With one decision at a time (the
        # HTTP server's event loop) nothing needs remembering.
        self._deciding = 0
        self._remember: set[Exposure] = set()
        self._settled: deque[tuple[float, Exposure]] = deque()
        self._settled_by_user: dict[_Key, list[Exposure]] = {}
        self._lock = threading.Lock()

    def add(self, exposure: Exposure) -> None:
        """Queue ``exposure`` for writing."""
        with self._lock:
            self._queue(exposure)

    def claim(self, exposure: Exposure) -> set[str]:
        """Queue ``exposure``, unless another decision of this process has meanwhile
        taken one of its items for the same user: then queue nothing and return those
        items (the caller chooses again without them)."""
        key = (exposure.namespace, exposure.user_id)
        with self._lock:
            mine = [*self._unwritten.get(key, ()), *self._settled_by_user.get(key, ())]
            if mine:
                taken = {item for e in mine for item in e.item_ids}
                clash = taken.intersection(exposure.item_ids)
                if clash:
                    return clash
            if self._queue(exposure) and self._deciding > 1:
                self._remember.add(exposure)
        return set()

    def decision_started(self) -> None:
        """A decision's exchange, choice and claim begin (``claim`` counts those)."""
        with self._lock:
            self._deciding += 1

    def decision_ended(self) -> None:
        with self._lock:
            self._deciding -= 1

    def _queue(self, exposure: Exposure) -> bool:
        if len(self._queued) >= MAX_PENDING:
            metrics.EXPOSURE_WRITES_DROPPED.inc()
            return False
        self._queued.append(exposure)
        self._unwritten.setdefault((exposure.namespace, exposure.user_id), []).append(exposure)
        return True

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

    def unwritten_and_queued(self, namespace: str, user_id: str) -> tuple[set[str], list[Exposure]]:
        """``unwritten`` and ``take`` under one lock: what a decision needs before it
        sends its exchange (no writes for a store whose reads do not carry them)."""
        with self._lock:
            return self._unwritten_items(namespace, user_id), self._take(self._writes_per_read)

    def _unwritten_items(self, namespace: str, user_id: str) -> set[str]:
        pending = self._unwritten.get((namespace, user_id))
        return {item for e in pending for item in e.item_ids} if pending else set()

    def _take(self, limit: int) -> list[Exposure]:
        if not limit or not self._queued:
            return []
        batch, self._queued = self._queued[:limit], self._queued[limit:]
        return batch

    def finished(
        self,
        batch: list[Exposure],
        errors: Mapping[int, BaseException] | BaseException | None = None,
    ) -> None:
        """The store answered for ``batch``: each write was made except those in
        ``errors`` (by index; one exception fails them all), which are dropped and
        counted. Either way none of them is unconfirmed any more."""
        if not batch:
            return
        if isinstance(errors, BaseException):
            errors = dict.fromkeys(range(len(batch)), errors)
        if errors:
            metrics.EXPOSURE_WRITES_DROPPED.inc(len(errors))
            log.warning("%d exposures not recorded: %s", len(errors), next(iter(errors.values())))
        now = time.monotonic()
        with self._lock:
            for exposure in batch:
                key = (exposure.namespace, exposure.user_id)
                pending = self._unwritten[key]
                pending.remove(exposure)
                if not pending:
                    del self._unwritten[key]
                if self._remember and exposure in self._remember:
                    self._remember.discard(exposure)
                    self._settled.append((now, exposure))
                    self._settled_by_user.setdefault(key, []).append(exposure)
            while self._settled and self._settled[0][0] < now - SETTLED_MEMORY_SECONDS:
                _, old = self._settled.popleft()
                key = (old.namespace, old.user_id)
                remembered = self._settled_by_user[key]
                remembered.pop(0)  # the user's oldest: settled in order
                if not remembered:
                    del self._settled_by_user[key]

    def unsent(self, batch: list[Exposure], error: BaseException) -> None:
        """The exchange carrying ``batch`` failed. After a store outage the writes go
        back to the front of the queue (making them twice is harmless); after anything
        else they are dropped and counted, so that nothing stays unconfirmed forever."""
        if not batch:
            return
        if not isinstance(error, StoreUnavailable):
            self.finished(batch, error)
            return
        with self._lock:
            self._queued[:0] = batch
            overflow = len(self._queued) - MAX_PENDING
            dropped = self._queued[MAX_PENDING:] if overflow > 0 else []
            del self._queued[MAX_PENDING:]
        self.finished(dropped, error)

    def flush(self) -> None:
        """Write everything queued now, in chunks. While the store is down the writes
        wait in the queue (up to ``MAX_PENDING``) for the next try."""
        while batch := self.take():
            try:
                errors = self.store.write_exposures(batch)
            except StoreUnavailable as exc:
                metrics.STORE_ERRORS.inc()
                log.warning("exposure writes wait for the online store: %s", exc)
                self.unsent(batch, exc)
                return
            except Exception as exc:  # bad data or a bug: dropped, never retried forever
                self.finished(batch, exc)
                continue
            self.finished(batch, errors)

    def close(self) -> None:
        """Stop the thread and write what is queued; what the store cannot take now is
        dropped and counted."""
        super().close()
        self.finished(self.take(MAX_PENDING), StoreUnavailable("closed before it was written"))
