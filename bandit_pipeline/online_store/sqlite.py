"""The SQLite online store: the embedded default, same interface as Redis.

A publish writes the snapshot row and moves the pointer in one transaction; replaced
snapshots are deleted once they are older than the grace period. The database is in WAL
mode and every read is one statement outside any write transaction, so reads (the
serving path's) never wait for a writer (a publish, the exposure writer) and always see
a whole committed state. Exposure writes go through a connection of their own with
``synchronous=NORMAL``: they skip the per-commit fsync, so a power loss can lose the
last moments of the one-hour guard (an item may be explored twice for a user), never
flags, kill switches or snapshots, which keep SQLite's default ``FULL``. The statements
are in ``sql/online_store/*.sqlite.sql``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bandit_pipeline.online_store.interface import OnlineStore
from bandit_pipeline.online_store.snapshot import Snapshot
from bandit_pipeline.online_store.types import Exposure, KillSwitchState, StoreUnavailable
from bandit_pipeline.timing import EXPOSURE_TTL_SECONDS, SUPERSEDED_GRACE_SECONDS
from bandit_pipeline.warehouse.sql import sql_file


def _statements(name: str) -> tuple[str, ...]:
    """The statements of ``sql/online_store/NAME.sqlite.sql``."""
    return sql_file(f"online_store/{name}", "sqlite").statements


def _sql(name: str) -> str:
    """The one statement of ``sql/online_store/NAME.sqlite.sql``."""
    return _statements(name)[0]


# Reads ask for the last hour only, so older exposures are dropped in bulk now and then
# (by the exposure writer, within one of its transactions) rather than on every write.
TRIM_EVERY_SECONDS = 60.0


class SqliteStore(OnlineStore):
    """The online store in one SQLite file, shared by the processes of one host."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._trimmed_at = float("-inf")
        with self._transaction() as connection:
            for statement in _statements("schema"):
                connection.execute(statement)

    # A decision's exposure read finds the store in this process: nothing to gain by
    # carrying the queued writes, which the exposure writer makes off the request path.
    reads_carry_writes = False

    def _connection(self, purpose: str = "connection") -> sqlite3.Connection:
        """This thread's connection for ``purpose`` ("connection", or "exposure_writes"
        with relaxed syncing), opened on first use."""
        if self.path == ":memory:":
            purpose = "connection"  # another connection would be another, empty database
        connection = getattr(self._local, purpose, None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.path, timeout=5, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                if purpose == "exposure_writes":
                    connection.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreUnavailable(str(exc)) from exc
            setattr(self._local, purpose, connection)
        return connection

    def _transaction(self, purpose: str = "connection") -> _Transaction:
        """A write transaction (BEGIN IMMEDIATE) on this thread's connection."""
        connection = self._connection(purpose)

        def forget() -> None:
            for name in ("connection", "exposure_writes"):
                if getattr(self._local, name, None) is connection:
                    setattr(self._local, name, None)

        return _Transaction(connection, forget)

    def _query(self, name: str, parameters: Mapping[str, object]) -> list[tuple]:
        """The rows of the read statement ``sql/online_store/NAME.sqlite.sql``: its own
        read transaction in WAL mode, so it takes no lock a writer holds and sees one
        committed state."""
        try:
            return self._connection().execute(_sql(name), parameters).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc

    def publish(self, snapshot: Snapshot) -> None:
        parameters = _publish_parameters(snapshot)
        with self._transaction() as connection:
            for statement in _statements("publish"):
                connection.execute(statement, parameters)

    def publish_unless_newer(self, snapshots: Sequence[Snapshot]) -> list[bool]:
        """Each snapshot in a write transaction of its own that reads the pointer first:
        BEGIN IMMEDIATE holds the write lock from the start, so no writer comes between
        the check and the publish."""
        published: list[bool] = []
        for snapshot in snapshots:
            parameters = _publish_parameters(snapshot)
            with self._transaction() as connection:
                current = connection.execute(_sql("current_version"), parameters).fetchone()
                # Versions sort by time (pool.snapshot_version), as text.
                newer = current is not None and current[0] > snapshot.version
                if not newer:
                    for statement in _statements("publish"):
                        connection.execute(statement, parameters)
            published.append(not newer)
        return published

    def current_version(self, namespace: str, surface: str) -> str | None:
        rows = self._query("current_version", {"namespace": namespace, "surface": surface})
        return rows[0][0] if rows else None

    def load(self, namespace: str, surface: str) -> Snapshot | None:
        rows = self._query("load_snapshot", {"namespace": namespace, "surface": surface})
        return Snapshot.decode(rows[0][0]) if rows else None

    def flags(self, namespace: str) -> dict[str, str]:
        return dict(self._query("flags", {"namespace": namespace}))

    def set_flag(self, namespace: str, name: str, value: str | None) -> None:
        parameters = {"namespace": namespace, "name": name, "value": value}
        with self._transaction() as connection:
            connection.execute(_sql("unset_flag" if value is None else "set_flag"), parameters)

    def set_flag_if_absent(self, namespace: str, name: str, value: str) -> bool:
        parameters = {"namespace": namespace, "name": name, "value": value}
        with self._transaction() as connection:
            return connection.execute(_sql("set_flag_if_absent"), parameters).rowcount == 1

    def killswitch(self, namespace: str, surface: str) -> KillSwitchState | None:
        rows = self._query("killswitch", {"namespace": namespace, "surface": surface})
        return KillSwitchState.from_json(rows[0][0]) if rows else None

    def set_killswitch(self, namespace: str, surface: str, state: KillSwitchState) -> None:
        parameters = {"namespace": namespace, "surface": surface, "state": state.to_json()}
        with self._transaction() as connection:
            connection.execute(_sql("set_killswitch"), parameters)

    def set_killswitch_if_absent(
        self, namespace: str, surface: str, state: KillSwitchState
    ) -> bool:
        parameters = {"namespace": namespace, "surface": surface, "state": state.to_json()}
        with self._transaction() as connection:
            return connection.execute(_sql("set_killswitch_if_absent"), parameters).rowcount == 1

    def restore_marker(self, namespace: str) -> datetime | None:
        rows = self._query("restore_marker", {"namespace": namespace})
        return datetime.fromtimestamp(rows[0][0], UTC) if rows else None

    def set_restore_marker(self, namespace: str, at: datetime) -> None:
        parameters = {"namespace": namespace, "restored_at": at.timestamp()}
        with self._transaction() as connection:
            connection.execute(_sql("set_restore_marker"), parameters)

    def write_exposures(self, exposures: Sequence[Exposure]) -> dict[int, Exception]:
        """All in one transaction: every write is made, or StoreUnavailable. Every
        ``TRIM_EVERY_SECONDS`` the same transaction also drops all entries older than the
        hour before the batch's latest write (or the clock, if that is earlier), users
        who never came back included."""
        rows = [
            {"namespace": e.namespace, "user_id": e.user_id, "item_id": item,
             "exposed_at": e.at.timestamp()}
            for e in exposures
            for item in e.item_ids
        ]  # fmt: skip
        if not rows:
            return {}
        with self._transaction("exposure_writes") as connection:
            connection.executemany(_sql("write_exposure"), rows)
            if time.monotonic() - self._trimmed_at >= TRIM_EVERY_SECONDS:
                # Never past the clock: one exposure stamped in the future must not
                # take every user's last hour with it.
                latest = min(max(row["exposed_at"] for row in rows), time.time())
                connection.execute(
                    _sql("trim_exposures"), {"cutoff": latest - EXPOSURE_TTL_SECONDS}
                )
                self._trimmed_at = time.monotonic()
        return {}

    def recent_exposures(self, namespace: str, user_id: str, now: datetime) -> set[str]:
        since = now.timestamp() - EXPOSURE_TTL_SECONDS
        rows = self._query(
            "recent_exposures", {"namespace": namespace, "user_id": user_id, "since": since}
        )
        return {row[0] for row in rows}

    def ping(self) -> None:
        try:
            self._connection().execute("SELECT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc

    def close(self) -> None:
        """Close this thread's connections (others close with their threads)."""
        for purpose in ("connection", "exposure_writes"):
            connection = getattr(self._local, purpose, None)
            if connection is not None:
                connection.close()
                setattr(self._local, purpose, None)


def _publish_parameters(snapshot: Snapshot) -> dict[str, object]:
    """The bind parameters of ``sql/online_store/publish.sqlite.sql``."""
    return {
        "namespace": snapshot.namespace,
        "surface": snapshot.surface,
        "version": snapshot.version,
        "published_at": snapshot.published_at.timestamp(),
        "blob": snapshot.encode(),
        "grace_cutoff": snapshot.published_at.timestamp() - SUPERSEDED_GRACE_SECONDS,
    }


class _Transaction:
    """``with`` block = one IMMEDIATE transaction; sqlite errors become StoreUnavailable."""

    def __init__(self, connection: sqlite3.Connection, forget: Callable[[], None]) -> None:
        self.connection = connection
        self.forget = forget

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc
        return self.connection

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.connection.execute("COMMIT")
                return
            except sqlite3.Error as error:
                exc = error  # never leave it open: the next read would see its writes
        self._roll_back()
        if isinstance(exc, sqlite3.Error):
            raise StoreUnavailable(str(exc)) from exc

    def _roll_back(self) -> None:
        if self.connection.in_transaction:
            try:
                self.connection.execute("ROLLBACK")
            except sqlite3.Error:
                # Closing rolls it back; this thread opens a new connection next time.
                self.connection.close()
                self.forget()
