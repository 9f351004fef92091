"""The duplicate-exposure guard: an item explored for a user is not explored for them
again within the hour, while its writes stay off the request path's critical wait.

The whole protocol is in this module. ``ExplorationService`` drives it through
``ExposureGuard.begin``, which gives each decision a ``GuardedDecision`` (``recent``,
``claim``, ``end``); the store takes part only through ``OnlineStore.exchange_exposures``
(queued writes, then the user's read, in one exchange) and ``write_exposures``.

How it works. A decision's exposure is queued, not written. With a store on the other
side of a round trip (Redis: ``store.reads_carry_writes``) the next decision takes up to
``WRITE_CHUNK`` queued exposures and sends them in the same exchange as its own read of
the user's recent exposures (one round trip, which the decision's sampling overlaps); a
thread writes what is still queued every ``flush_seconds`` when traffic stops. With an
embedded store (SQLite) that thread makes every write, so no decision waits for a write
transaction. Until the store has confirmed an exposure it is *unconfirmed*, and every
decision of this process adds its user's unconfirmed items to what the store answered:
this process always sees its own exposures, and other processes see them within one
decision or one flush interval.

State. Any thread may call any method (deciding threads, the writer thread, the one
that closes); every field below is read and written only under ``_lock``, and no store
call is made under it.

- ``_queued``: exposures claimed and not yet taken for writing, oldest first, at most
  ``MAX_PENDING``.
- ``_unconfirmed``: per (namespace, user), each exposure queued or taken and not yet
  settled (a list: a user can have several at once, and each settles on its own).
- ``_deciding``: how many decisions are between ``begin`` and ``end``.
- ``_recently_settled``: the exposures claimed while another decision was in flight,
  and, for ``SETTLED_MEMORY_SECONDS`` after they settle, the same exposures by user.

Invariants.

I1. Every exposure in ``_queued`` or in a taken batch is in ``_unconfirmed``, once. A
    batch taken (``take``) belongs to the thread that took it, which settles it exactly
    once: ``settle`` when the store answered, ``write_failed`` when it did not. So no
    exposure stays unconfirmed forever.
I2. A decision reads its user's unconfirmed items before it sends its read to the store
    (in ``begin``, under the lock). An exposure no longer unconfirmed by then was
    written before the read was sent, so the read sees it (or was dropped, I4); the
    writes an exchange carries are made before its read (the store runs them in
    order). So a decision's ``recent()`` holds every exposure this process claimed for
    that user before the decision began, whether its write has landed yet or not.
I3. ``claim`` checks and queues under one lock, so two decisions of this process never
    claim one item for one user while the first claim is unconfirmed. A decision still
    in flight may have sent its read before a claim of another decision was written,
    and claim after that write settled: so an exposure claimed while other decisions
    were in flight is remembered until ``SETTLED_MEMORY_SECONDS`` after it settles (far
    longer than a decision takes from its read to its claim), and ``claim`` checks
    those too. With one decision at a time (the HTTP server's event loop) nothing needs
    remembering.
I4. Failed writes. The store unavailable: the batch goes back to the front of the queue
    (writing an exposure twice is harmless) and what no longer fits in ``MAX_PENDING``
    is dropped. The store refusing a write (bad data under that user's key), any other
    error, a full queue, or a shutdown with the store down: the exposure is dropped and
    counted (``bandit_exposure_writes_dropped_total``). A dropped exposure is the worst
    outcome: an item explored twice for one user within the hour.
I5. Order. Writes go out oldest first, at most ``WRITE_CHUNK`` per exchange or write;
    a batch put back goes in front of everything queued since it was taken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime

from bandit_pipeline.online_store import Exposure, ExposureRead, OnlineStore, StoreUnavailable
from bandit_pipeline.serving import metrics
from bandit_pipeline.serving.background import PeriodicFlusher

log = logging.getLogger(__name__)
MAX_PENDING = 100_000
# At most this many exposures go out in one exchange, so a backlog never makes one
# decision (or one flush step, which holds the interpreter lock while it packs) long.
WRITE_CHUNK = 100
# How long a settled exposure still counts for ``claim`` (I3): far longer than any
# decision takes between sending its read and claiming its items.
SETTLED_MEMORY_SECONDS = 2.0

_User = tuple[str, str]  # (namespace, user_id)


class ExposureGuard(PeriodicFlusher):
    """This process's half of the guard: the queue of exposure writes, what is still
    unconfirmed, and the thread that writes the queue (see the module docstring)."""

    thread_name = "exposure-writer"

    def __init__(self, store: OnlineStore, flush_seconds: float = 0.2) -> None:
        super().__init__(flush_seconds)
        self.store = store
        self._writes_per_read = WRITE_CHUNK if store.reads_carry_writes else 0
        self._lock = threading.Lock()
        self._queued: list[Exposure] = []
        self._unconfirmed: dict[_User, list[Exposure]] = {}
        self._deciding = 0
        self._recently_settled = _RecentlySettled()

    def begin(self, namespace: str, user_id: str, now: datetime) -> GuardedDecision:
        """Start a decision for the user: count it in flight, and send the queued writes
        it carries and its read of the user's recent exposures in one exchange (I2).
        Raises what the exchange raised; the decision has ended then."""
        user = (namespace, user_id)
        with self._lock:
            self._deciding += 1
            unconfirmed = self._unconfirmed_items(user)
            writes = self._take(self._writes_per_read)
        try:
            read = self.store.exchange_exposures(writes, namespace, user_id, now)
        except BaseException as exc:  # whatever happens, the writes are accounted for
            self.write_failed(writes, exc)
            self._decision_ended()
            raise
        return GuardedDecision(self, user, now, read, writes, unconfirmed)

    def take(self, limit: int = WRITE_CHUNK) -> list[Exposure]:
        """The oldest queued exposures, for the caller to write; they stay unconfirmed
        until the caller settles them (I1)."""
        with self._lock:
            return self._take(limit)

    def settle(
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
            recently_settled = self._recently_settled
            for exposure in batch:
                user = (exposure.namespace, exposure.user_id)
                pending = self._unconfirmed[user]
                pending.remove(exposure)
                if not pending:
                    del self._unconfirmed[user]
                if recently_settled.claimed and exposure in recently_settled.claimed:
                    recently_settled.settled(exposure, user, now)
            recently_settled.forget_settled_before(now - SETTLED_MEMORY_SECONDS)

    def write_failed(self, batch: list[Exposure], error: BaseException) -> None:
        """The exchange or write carrying ``batch`` failed (I4). After a store outage
        the writes go back to the front of the queue; after anything else they are
        dropped and counted, so that nothing stays unconfirmed forever."""
        if not batch:
            return
        if not isinstance(error, StoreUnavailable):
            self.settle(batch, error)
            return
        with self._lock:
            self._queued[:0] = batch
            overflow = len(self._queued) - MAX_PENDING
            dropped = self._queued[MAX_PENDING:] if overflow > 0 else []
            del self._queued[MAX_PENDING:]
        self.settle(dropped, error)

    def flush(self) -> None:
        """Write everything queued now, in chunks. While the store is down the writes
        wait in the queue (up to ``MAX_PENDING``) for the next try."""
        while batch := self.take():
            try:
                errors = self.store.write_exposures(batch)
            except StoreUnavailable as exc:
                metrics.STORE_ERRORS.inc()
                log.warning("exposure writes wait for the online store: %s", exc)
                self.write_failed(batch, exc)
                return
            except Exception as exc:  # bad data or a bug: dropped, never retried forever
                self.settle(batch, exc)
                continue
            self.settle(batch, errors)

    def close(self) -> None:
        """Stop the thread and write what is queued; what the store cannot take now is
        dropped and counted."""
        super().close()
        self.settle(self.take(MAX_PENDING), StoreUnavailable("closed before it was written"))

    def _claim(self, exposure: Exposure) -> set[str]:
        user = (exposure.namespace, exposure.user_id)
        with self._lock:
            mine = [*self._unconfirmed.get(user, ()), *self._recently_settled.by_user.get(user, ())]
            if mine:
                taken = {item for e in mine for item in e.item_ids}
                clash = taken.intersection(exposure.item_ids)
                if clash:
                    return clash
            if self._queue(exposure) and self._deciding > 1:
                self._recently_settled.claimed.add(exposure)
        return set()

    def _decision_ended(self) -> None:
        with self._lock:
            self._deciding -= 1

    def _queue(self, exposure: Exposure) -> bool:
        if len(self._queued) >= MAX_PENDING:
            metrics.EXPOSURE_WRITES_DROPPED.inc()
            return False
        self._queued.append(exposure)
        self._unconfirmed.setdefault((exposure.namespace, exposure.user_id), []).append(exposure)
        return True

    def _unconfirmed_items(self, user: _User) -> set[str]:
        pending = self._unconfirmed.get(user)
        return {item for e in pending for item in e.item_ids} if pending else set()

    def _take(self, limit: int) -> list[Exposure]:
        if not limit or not self._queued:
            return []
        batch, self._queued = self._queued[:limit], self._queued[limit:]
        return batch


class GuardedDecision:
    """One decision's part in the guard, from ``ExposureGuard.begin`` to ``end``: read
    the user's recent exposures, claim the items chosen, end (always, exactly once)."""

    __slots__ = ("_guard", "_now", "_read", "_unconfirmed", "_user", "_writes")

    def __init__(
        self,
        guard: ExposureGuard,
        user: _User,
        now: datetime,
        read: ExposureRead,
        writes: list[Exposure],
        unconfirmed: set[str],
    ) -> None:
        self._guard, self._user, self._now = guard, user, now
        self._read, self._writes, self._unconfirmed = read, writes, unconfirmed

    def recent(self) -> set[str]:
        """The items explored for the user in the last hour: the store's answer (waited
        for here) and this process's unconfirmed ones (I2). Settles the writes the
        exchange carried; raises what the read raised (StoreUnavailable, StoreRejected)."""
        writes, self._writes = self._writes, []
        try:
            recent = self._read.result()
        except BaseException as exc:
            self._guard.write_failed(writes, exc)
            raise
        self._guard.settle(writes, self._read.write_errors)
        return recent | self._unconfirmed

    def claim(self, item_ids: tuple[str, ...]) -> set[str]:
        """Queue the exposure of ``item_ids`` to the user, unless another decision of
        this process has meanwhile taken one of them for the same user (I3): then queue
        nothing and return those items (the caller chooses again without them)."""
        namespace, user_id = self._user
        return self._guard._claim(Exposure(namespace, user_id, item_ids, self._now))

    def end(self) -> None:
        """The decision will claim nothing more."""
        self._guard._decision_ended()


class _RecentlySettled:
    """The exposures claimed while other decisions were in flight (``claimed``), and
    for ``SETTLED_MEMORY_SECONDS`` after each settled, the same by user (``by_user``,
    which ``claim`` checks). Used under the guard's lock only (I3)."""

    __slots__ = ("_settled", "by_user", "claimed")

    def __init__(self) -> None:
        self.claimed: set[Exposure] = set()
        self.by_user: dict[_User, list[Exposure]] = {}
        self._settled: deque[tuple[float, Exposure]] = deque()

    def settled(self, exposure: Exposure, user: _User, now: float) -> None:
        self.claimed.discard(exposure)
        self._settled.append((now, exposure))
        self.by_user.setdefault(user, []).append(exposure)

    def forget_settled_before(self, cutoff: float) -> None:
        settled = self._settled
        while settled and settled[0][0] < cutoff:
            _, old = settled.popleft()
            user = (old.namespace, old.user_id)
            remembered = self.by_user[user]
            remembered.pop(0)  # the user's oldest: settled in order
            if not remembered:
                del self.by_user[user]
