"""The online store interface that the publisher, the sensors and serving share.

Per (namespace, surface): the current snapshot (candidate pool + posteriors), published
atomically behind a version pointer. Per namespace: feature flags and the kill-switch
state of each surface. Per user: the items explored for them recently (duplicate-exposure
guard). Per namespace, too, the restore marker: when the store was last seeded from the
warehouse's record, gone with everything else when the store loses its data. Redis is
the production store; SQLite the embedded default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime

from bandit_pipeline.online_store.snapshot import Snapshot
from bandit_pipeline.online_store.types import Exposure, KillSwitchState


class ExposureRead:
    """A read of recent exposures that may still be on its way (``exchange_exposures``),
    with the outcome of the writes that went with it."""

    def __init__(self, receive: Callable[[], tuple[set[str], dict[int, Exception]]]) -> None:
        self._receive = receive
        self._outcome: tuple[set[str], dict[int, Exception]] | BaseException | None = None

    @classmethod
    def ready(
        cls, items: set[str], write_errors: dict[int, Exception] | None = None
    ) -> ExposureRead:
        """A read whose answer is already known (stores that answer at once)."""
        return cls(lambda: (items, write_errors or {}))

    def result(self) -> set[str]:
        """The items; waits for the store's answer (bounded by the store timeout). Raises
        StoreUnavailable when the read failed; asking again gives the same outcome."""
        if self._outcome is None:
            try:
                self._outcome = self._receive()
            except BaseException as exc:
                self._outcome = exc
                raise
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome[0]

    @property
    def write_errors(self) -> dict[int, Exception]:
        """After ``result()``: the writes (by index) the store answered with an error;
        the others were made."""
        self.result()
        return self._outcome[1]  # type: ignore[index]


class OnlineStore(ABC):
    """What every online store implementation offers."""

    # Whether a decision's exposure read carries the queued exposure writes with it
    # (``exchange_exposures``): worth it where the read is a round trip to a server
    # anyway. Otherwise the writes are left to the serving process's writer thread.
    reads_carry_writes: bool = True

    @abstractmethod
    def publish(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the current one of its (namespace, surface), atomically:
        readers see the whole previous snapshot or the whole new one."""

    def publish_many(self, snapshots: Sequence[Snapshot]) -> None:
        """Publish several snapshots (one per surface); each is atomic on its own."""
        for snapshot in snapshots:
            self.publish(snapshot)

    @abstractmethod
    def publish_unless_newer(self, snapshots: Sequence[Snapshot]) -> list[bool]:
        """Publish each snapshot (atomically, as ``publish``) unless its surface already
        holds a newer version, the check and the write one step of the store: a snapshot
        another writer published after the caller looked is never replaced by an older
        one. Per snapshot, whether it was published. (The restore's write; an ordinary
        publish needs no such step, since runs of the job never overlap.)"""

    @abstractmethod
    def current_version(self, namespace: str, surface: str) -> str | None:
        """The version of the current snapshot (cheap: the serving cache polls it)."""

    @abstractmethod
    def load(self, namespace: str, surface: str) -> Snapshot | None:
        """The current snapshot, or None when nothing was published."""

    @abstractmethod
    def flags(self, namespace: str) -> dict[str, str]:
        """The namespace's feature flags as stored (values are strings)."""

    @abstractmethod
    def set_flag(self, namespace: str, name: str, value: str | None) -> None:
        """Set a flag, or remove it with None (then settings decide)."""

    @abstractmethod
    def set_flag_if_absent(self, namespace: str, name: str, value: str) -> bool:
        """Set a flag only where the store holds none, in one step: a flag set by
        someone else after the caller looked is kept. Whether it was set."""

    @abstractmethod
    def killswitch(self, namespace: str, surface: str) -> KillSwitchState | None:
        """The kill-switch state of a surface; None means never tripped."""

    @abstractmethod
    def set_killswitch(self, namespace: str, surface: str, state: KillSwitchState) -> None:
        """Record the kill-switch state of a surface (tripped or reset)."""

    @abstractmethod
    def set_killswitch_if_absent(
        self, namespace: str, surface: str, state: KillSwitchState
    ) -> bool:
        """Record a surface's kill-switch state only where the store holds none, in one
        step (as ``set_flag_if_absent``). Whether it was recorded."""

    @abstractmethod
    def restore_marker(self, namespace: str) -> datetime | None:
        """When the namespace was last seeded from the warehouse's record; None for a
        store that is new or has lost its data since (``store_record.restore``)."""

    @abstractmethod
    def set_restore_marker(self, namespace: str, at: datetime) -> None:
        """Record that the namespace was seeded from the warehouse's record at ``at``."""

    @abstractmethod
    def write_exposures(self, exposures: Sequence[Exposure]) -> dict[int, Exception]:
        """Remember that these items were explored for these users (kept one hour).
        Returns the exposures (by index) the store refused, with why; raises
        StoreUnavailable when the store cannot be reached. (A Redis Cluster with one
        primary down refuses that primary's exposures, with StoreUnavailable, and makes
        the others.)"""

    @abstractmethod
    def recent_exposures(self, namespace: str, user_id: str, now: datetime) -> set[str]:
        """Items explored for the user in the hour before ``now`` (one command)."""

    def exchange_exposures(
        self, writes: Sequence[Exposure], namespace: str, user_id: str, now: datetime
    ) -> ExposureRead:
        """Write ``writes``, then start reading the user's recent exposures, in one
        exchange with the store; ``result()`` of the returned read gives the items.

        Stores that can (Redis) return before the answer arrives, so the caller's work
        until ``result()`` overlaps the round trip. Either step raises StoreUnavailable;
        after that the writes may or may not have been made (writing them again is
        harmless). ``write_errors`` says which writes the store refused.
        """
        errors = self.write_exposures(writes)
        return ExposureRead.ready(self.recent_exposures(namespace, user_id, now), errors)

    def failure_domain(self, namespace: str, user_id: str) -> str:
        """What fails together with the user's exposure key: serving's circuit breaker
        opens per domain. One server is one domain; a cluster has one per primary."""
        return ""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable when the store does not answer."""

    def close(self) -> None:  # noqa: B027 - optional for implementations
        """Release connections."""
