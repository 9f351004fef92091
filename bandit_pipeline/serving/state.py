"""What the serving process keeps in memory: per (namespace, surface) the current
snapshot with its sampling arrays, per namespace the flags, per surface the kill switch.

A background thread polls the store every ``refresh_seconds`` and swaps in a new
snapshot only when its version changed, so requests never wait for a refresh and the
arrays are built once per version, not per request. When the store is down the last
good state keeps serving and the failure is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bandit_pipeline.online_store import KillSwitchState, OnlineStore, Snapshot, StoreUnavailable
from bandit_pipeline.policy.thompson import QuantileBounds
from bandit_pipeline.serving import metrics
from bandit_pipeline.serving.background import Periodic

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ServingSnapshot:
    """A snapshot ready for sampling: item -> position lookup and the draws' quantile
    bounds, built once per version."""

    snapshot: Snapshot
    position: dict[str, int]
    bounds: QuantileBounds
    loaded_at: float

    @classmethod
    def build(cls, snapshot: Snapshot) -> ServingSnapshot:
        position = {item: i for i, item in enumerate(snapshot.item_ids)}
        bounds = QuantileBounds.build(snapshot.alpha, snapshot.beta)
        return cls(snapshot, position, bounds, time.time())


@dataclass
class _Surface:
    snapshot: ServingSnapshot | None = None
    killswitch: KillSwitchState | None = None
    loaded: bool = False  # the first load has been tried
    store_emptied: bool = False  # the store lost the snapshot this process still serves
    first_load: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ServingState:
    """In-memory view of the online store, refreshed in the background."""

    store: OnlineStore
    refresh_seconds: float = 1.0
    _surfaces: dict[tuple[str, str], _Surface] = field(default_factory=dict)
    _flags: dict[str, dict[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refresher: Periodic | None = None
    last_error: str | None = None
    # After a failed store call the request path skips the store for this long, so an
    # outage costs each request nothing instead of a timeout (a circuit breaker), per
    # failure domain of the store (a Redis Cluster primary; one server is one domain).
    store_backoff_seconds: float = 1.0
    _store_down_until: dict[str, float] = field(default_factory=dict)
    # Which (namespace, surface) may label the snapshot-age gauge (others: "other").
    labels: Callable[[str, str], tuple[str, str]] = lambda namespace, surface: (
        namespace,
        surface,
    )

    def surface(
        self, namespace: str, surface: str
    ) -> tuple[ServingSnapshot | None, KillSwitchState | None]:
        """The cached snapshot and kill switch; the first call for a surface loads it."""
        key = (namespace, surface)
        entry = self._surfaces.get(key)
        if entry is None or not entry.loaded:
            with self._lock:
                entry = self._surfaces.setdefault(key, _Surface())
            with entry.first_load:  # requests arriving meanwhile wait for it, once
                if not entry.loaded:
                    self._refresh_surface(key, entry)
                    entry.loaded = True
        return entry.snapshot, entry.killswitch

    def flags(self, namespace: str) -> dict[str, str] | None:
        """The namespace's stored flags; None while they could not be read."""
        if namespace not in self._flags:
            self._refresh_flags(namespace)
        return self._flags.get(namespace)

    def refresh(self) -> None:
        """One pass over everything in use (the background thread calls this)."""
        for key, entry in list(self._surfaces.items()):
            self._refresh_surface(key, entry)
        for namespace in list(self._flags):
            self._refresh_flags(namespace)

    def _refresh_surface(self, key: tuple[str, str], entry: _Surface) -> None:
        namespace, surface = key
        try:
            version = self.store.current_version(namespace, surface)
            current = entry.snapshot.snapshot.version if entry.snapshot else None
            if version is not None and version != current:
                loaded = self.store.load(namespace, surface)
                if loaded is not None:
                    entry.snapshot = ServingSnapshot.build(loaded)
                    metrics.track_snapshot_age(
                        *self.labels(namespace, surface), loaded.published_at.timestamp()
                    )
            elif version is None and entry.snapshot is not None:
                # The store lost what it held (a Redis restarted without persistence):
                # keep serving the last good snapshot until the next publish replaces it;
                # its age keeps growing in bandit_snapshot_age_seconds.
                if not entry.store_emptied:
                    entry.store_emptied = True
                    log.warning("the online store holds no snapshot of %s/%s any more; "
                                "serving the last one, %s, until the next publish",
                                namespace, surface, current)  # fmt: skip
            elif version is None and entry.snapshot is None:
                metrics.track_snapshot_age(*self.labels(namespace, surface), None)
            if version is not None:
                entry.store_emptied = False
            entry.killswitch = self.store.killswitch(namespace, surface)
            self.last_error = None
        except StoreUnavailable as exc:
            self._failed(exc)

    def _refresh_flags(self, namespace: str) -> None:
        try:
            self._flags[namespace] = self.store.flags(namespace)
        except StoreUnavailable as exc:
            self._failed(exc)

    def store_down(self, domain: str = "") -> bool:
        """True while the breaker of ``domain`` is open after a store failure."""
        return time.monotonic() < self._store_down_until.get(domain, 0.0)

    def mark_store_down(self, exc: Exception, domain: str = "") -> None:
        """Open the breaker of ``domain`` for ``store_backoff_seconds`` and record the
        failure."""
        self._store_down_until[domain] = time.monotonic() + self.store_backoff_seconds
        self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        metrics.STORE_ERRORS.inc()
        self.last_error = str(exc) or type(exc).__name__
        log.warning("online store unavailable: %s", self.last_error)

    def start(self) -> None:
        """Start the refresh thread (every ``refresh_seconds``)."""
        if self._refresher is None:
            self._refresher = Periodic("snapshot-refresh", self.refresh_seconds, self.refresh)
        self._refresher.start()

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()
