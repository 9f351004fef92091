"""The online stores, on real Redis and on SQLite: atomic publish, flags, kill switch, guard."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from redis.crc import key_slot

from bandit_pipeline.online_store import (
    Exposure,
    KillSwitchState,
    Snapshot,
    StoreRejected,
    StoreUnavailable,
    open_store,
)
from bandit_pipeline.online_store import redis as redis_module
from bandit_pipeline.online_store import sqlite as sqlite_module
from bandit_pipeline.online_store.redis import RedisStore
from bandit_pipeline_tests.helpers import REDIS_URL

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def snapshot(version: str, n: int = 5, marker: float = 1.0, surface: str = "home") -> Snapshot:
    return Snapshot(
        namespace="default",
        surface=surface,
        version=version,
        published_at=NOW,
        as_of=NOW - timedelta(minutes=1),
        item_ids=tuple(f"item-{version}-{i}" for i in range(n)),
        alpha=np.full(n, marker),
        beta=np.arange(1, n + 1, dtype=float),
    )


def test_snapshot_encoding_round_trips():
    original = snapshot("v1", n=1000, marker=2.5)
    decoded = Snapshot.decode(original.encode())
    assert decoded.item_ids == original.item_ids
    assert np.array_equal(decoded.alpha, original.alpha)
    assert np.array_equal(decoded.beta, original.beta)
    assert (decoded.version, decoded.published_at, decoded.as_of) == ("v1", NOW, original.as_of)
    empty = Snapshot.decode(snapshot("v0", n=0).encode())
    assert len(empty) == 0


def test_snapshot_refuses_misaligned_or_improper_posteriors():
    with pytest.raises(ValueError, match="one value per item"):
        Snapshot("d", "home", "v", NOW, None, ("a", "b"), np.ones(1), np.ones(2))
    with pytest.raises(ValueError, match="> 0"):
        Snapshot("d", "home", "v", NOW, None, ("a",), np.zeros(1), np.ones(1))


def test_publish_then_load(store):
    assert store.load("default", "home") is None
    assert store.current_version("default", "home") is None
    store.publish(snapshot("v1"))
    store.publish(snapshot("v2", n=3, marker=4.0))
    loaded = store.load("default", "home")
    assert loaded is not None
    assert loaded.version == store.current_version("default", "home") == "v2"
    assert loaded.item_ids == ("item-v2-0", "item-v2-1", "item-v2-2")
    assert loaded.alpha.tolist() == [4.0, 4.0, 4.0]
    assert store.load("default", "cart") is None  # surfaces are separate


def test_publish_many_surfaces_at_once(store):
    """Several surfaces in one call (on Redis: each encoded as it is sent, behind the
    previous one in the same stream), each whole, with non-native byte order arrays too."""
    first = [snapshot("v1", n=50, marker=float(i + 1), surface=s) for i, s in enumerate("abcd")]
    store.publish_many(first)
    swapped = snapshot("v2", n=7, marker=9.0, surface="b")
    swapped = Snapshot(**{**vars(swapped), "beta": swapped.beta.astype(">f8")})
    store.publish_many([first[0], swapped])
    for marker, surface in enumerate("abcd", start=1):
        if surface != "b":
            loaded = store.load("default", surface)
            assert loaded.version == "v1"
            assert loaded.alpha.tolist() == [float(marker)] * 50
    loaded = store.load("default", "b")
    assert (loaded.version, loaded.item_ids[-1]) == ("v2", "item-v2-6")
    assert loaded.beta.tolist() == list(range(1, 8))
    assert store.load("default", "d").item_ids == first[3].item_ids


def test_replaced_snapshot_expires_after_the_grace_period(redis_store):
    redis_store.publish(snapshot("v1"))
    redis_store.publish(snapshot("v2"))
    client = redis_store.client
    old = redis_store.snapshot_key("default", "home", "v1")
    new = redis_store.snapshot_key("default", "home", "v2")
    assert 0 < client.ttl(old) <= 3600
    assert client.ttl(new) == -1  # the current one does not expire


def test_snapshot_keys_share_one_cluster_slot(redis_store):
    keys = [
        redis_store.snapshot_key("default", "home"),
        redis_store.snapshot_key("default", "home", "v9"),
    ]
    assert len({key_slot(k.encode()) for k in keys}) == 1


def test_readers_racing_a_publisher_never_see_a_mixed_snapshot(store):
    """Each version carries its number in every alpha and in its ids; a reader must see
    one version whole."""
    store.publish(snapshot("v0", n=2000, marker=1.0))
    stop = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def read() -> None:
        while not stop.is_set():
            got = store.load("default", "home")
            marker = float(got.version[1:]) + 1.0
            if not (
                np.all(got.alpha == marker) and got.item_ids[0].startswith(f"item-{got.version}-")
            ):
                problems.append(got.version)
            seen.add(got.version)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for number in range(1, 40):
        store.publish(snapshot(f"v{number}", n=2000, marker=float(number) + 1.0))
        time.sleep(0.002)
    stop.set()
    for reader in readers:
        reader.join()
    assert problems == []
    assert len(seen) > 1  # the readers did overlap with publishes


def test_flags(store):
    assert store.flags("default") == {}
    store.set_flag("default", "bandit_exploration_enabled", "true")
    store.set_flag("default", "bandit_explore_slots", "2")
    store.set_flag("other", "bandit_explore_slots", "1")
    assert store.flags("default") == {
        "bandit_exploration_enabled": "true",
        "bandit_explore_slots": "2",
    }
    store.set_flag("default", "bandit_explore_slots", None)
    assert store.flags("default") == {"bandit_exploration_enabled": "true"}


def test_killswitch_state(store):
    assert store.killswitch("default", "home") is None
    tripped = KillSwitchState(True, "reward 0.01 below 0.05", NOW, "sensor")
    store.set_killswitch("default", "home", tripped)
    assert store.killswitch("default", "home") == tripped
    assert store.killswitch("default", "cart") is None


def test_exposures_are_remembered_for_one_hour(store):
    store.write_exposures(
        [
            Exposure("default", "u1", ("a", "b"), NOW - timedelta(minutes=90)),
            Exposure("default", "u1", ("c",), NOW - timedelta(minutes=30)),
        ]
    )
    assert store.recent_exposures("default", "u1", NOW) == {"c"}
    assert store.recent_exposures("default", "u3", NOW) == set()
    store.write_exposures([Exposure("default", "u2", ("d",), NOW)])
    assert store.recent_exposures("default", "u2", NOW) == {"d"}
    assert store.recent_exposures("default", "u1", NOW) == {"c"}


def test_sqlite_reads_never_wait_for_a_writer(sqlite_store):
    """Another process holding the write lock (a publish, an exposure flush) does not
    hold up the serving path's reads, which see the last committed state."""
    sqlite_store.publish(snapshot("v1"))
    sqlite_store.set_flag("default", "bandit_exploration_enabled", "true")
    sqlite_store.write_exposures([Exposure("default", "u1", ("a",), NOW)])
    writer = sqlite3.connect(sqlite_store.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM exposures")
        started = time.monotonic()
        assert sqlite_store.recent_exposures("default", "u1", NOW) == {"a"}
        assert sqlite_store.load("default", "home").version == "v1"
        assert sqlite_store.flags("default") == {"bandit_exploration_enabled": "true"}
        assert sqlite_store.current_version("default", "home") == "v1"
        assert time.monotonic() - started < 1.0  # the busy timeout is 5 s
        writer.execute("COMMIT")
        assert sqlite_store.recent_exposures("default", "u1", NOW) == set()
    finally:
        writer.close()


def test_sqlite_drops_every_users_exposures_older_than_the_hour(sqlite_store, monkeypatch):
    """Users who never come back leave nothing behind: a trimming write removes every
    entry older than the hour before its latest exposure, whoever it belongs to."""
    monkeypatch.setattr(sqlite_module, "TRIM_EVERY_SECONDS", 0.0)
    sqlite_store.write_exposures(
        [
            Exposure("default", "gone", ("a",), NOW - timedelta(minutes=61)),
            Exposure("default", "recent", ("b",), NOW - timedelta(minutes=59)),
        ]
    )

    def stored() -> list[tuple[str, str]]:
        with closing(sqlite3.connect(sqlite_store.path)) as connection:
            return sorted(connection.execute("SELECT user_id, item_id FROM exposures").fetchall())

    assert stored() == [("gone", "a"), ("recent", "b")]  # the hour before 59 minutes ago
    sqlite_store.write_exposures([Exposure("default", "u2", ("c",), NOW)])
    assert stored() == [("recent", "b"), ("u2", "c")]
    monkeypatch.setattr(sqlite_module, "TRIM_EVERY_SECONDS", 3600.0)  # not due: kept
    sqlite_store.write_exposures([Exposure("default", "u3", ("d",), NOW + timedelta(hours=2))])
    assert stored() == [("recent", "b"), ("u2", "c"), ("u3", "d")]


def test_sqlite_trims_no_later_than_the_clock(sqlite_store, monkeypatch):
    """An exposure stamped in the future (a stepped clock, a caller's data) does not
    take every other user's last hour with it."""
    monkeypatch.setattr(sqlite_module, "TRIM_EVERY_SECONDS", 0.0)
    now = datetime.now(UTC)
    sqlite_store.write_exposures([Exposure("default", "u1", ("a",), now - timedelta(minutes=10))])
    sqlite_store.write_exposures([Exposure("default", "u2", ("b",), now + timedelta(hours=3))])
    assert sqlite_store.recent_exposures("default", "u1", now) == {"a"}


def test_sqlite_in_memory_and_empty_batches(tmp_path, monkeypatch):
    """``:memory:`` is one database per connection, so its writes and reads share one;
    a batch without items writes nothing, even when a trim is due."""
    monkeypatch.setattr(sqlite_module, "TRIM_EVERY_SECONDS", 0.0)
    store = sqlite_module.SqliteStore(":memory:")
    try:
        assert store.write_exposures([Exposure("default", "u1", (), NOW)]) == {}
        store.write_exposures([Exposure("default", "u1", ("a",), NOW)])
        assert store.recent_exposures("default", "u1", NOW) == {"a"}
    finally:
        store.close()


def test_a_failed_sqlite_commit_is_rolled_back(sqlite_store):
    """A COMMIT that fails must not leave its transaction open on the thread's
    connection, where the next single-statement read would see its writes."""

    class CommitFails:
        def __init__(self, connection: sqlite3.Connection) -> None:
            self.connection = connection

        def execute(self, sql: str, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self.connection.execute(sql, *args)

        @property
        def in_transaction(self) -> bool:
            return self.connection.in_transaction

    connection = sqlite_store._connection()
    failing = sqlite_module._Transaction(CommitFails(connection), forget=lambda: None)
    with pytest.raises(StoreUnavailable, match="disk I/O error"), failing as c:
        c.execute("INSERT INTO flags (namespace, name, value) VALUES ('default', 'x', '1')")
    assert not connection.in_transaction
    assert sqlite_store.flags("default") == {}


def test_sqlite_syncs_every_commit_except_the_exposure_guards(sqlite_store):
    """Flags, kill switches and snapshots keep synchronous=FULL; exposure writes (one
    hour of guard, rewritten constantly) use NORMAL on a connection of their own."""
    sqlite_store.write_exposures([Exposure("default", "u1", ("a",), NOW)])
    full, normal = 2, 1
    assert sqlite_store._connection().execute("PRAGMA synchronous").fetchone() == (full,)
    exposure_writes = sqlite_store._connection("exposure_writes")
    assert exposure_writes.execute("PRAGMA synchronous").fetchone() == (normal,)
    assert not sqlite_store.reads_carry_writes


def test_redis_trims_entries_older_than_the_hour_now_and_then(redis_store, monkeypatch):
    """Reads ignore entries older than the hour whether or not a write trimmed them;
    a trimming write removes them (each write trims with TRIM_PROBABILITY)."""
    key = redis_store.exposure_key("default", "u1")
    old = Exposure("default", "u1", ("old",), NOW - timedelta(hours=2))
    monkeypatch.setattr(redis_module, "TRIM_PROBABILITY", 0.0)
    redis_store.write_exposures([old, Exposure("default", "u1", ("a",), NOW)])
    assert redis_store.recent_exposures("default", "u1", NOW) == {"a"}
    assert redis_store.client.zcard(key) == 2  # "old" is still stored
    assert 0 < redis_store.client.ttl(key) <= 3600
    monkeypatch.setattr(redis_module, "TRIM_PROBABILITY", 1.0)
    redis_store.write_exposures([Exposure("default", "u1", ("b",), NOW)])
    assert redis_store.recent_exposures("default", "u1", NOW) == {"a", "b"}
    assert redis_store.client.zcard(key) == 2  # "old" is gone


def test_an_exchange_writes_first_then_reads(store):
    """The queued writes and the read go out together; the read sees the writes."""
    read = store.exchange_exposures(
        [Exposure("default", "u1", ("a",), NOW), Exposure("default", "u2", ("b",), NOW)],
        "default",
        "u1",
        NOW,
    )
    assert read.result() == {"a"}
    assert store.recent_exposures("default", "u2", NOW) == {"b"}
    assert store.exchange_exposures((), "default", "u3", NOW).result() == set()


def test_an_error_answer_fails_only_its_own_command(redis_store):
    """One user's key holding the wrong type: that user's write fails alone (the other
    write is made and the read answers), a read of that key is rejected without taking
    the connection out of step, and the next exchange gets its own answers."""
    key = redis_store.exposure_key("default", "broken")
    redis_store.client.set(key, "not a sorted set")
    writes = [Exposure("default", "broken", ("a",), NOW), Exposure("default", "ok", ("b",), NOW)]
    read = redis_store.exchange_exposures(writes, "default", "ok", NOW)
    assert read.result() == {"b"}
    assert list(read.write_errors) == [0]
    assert "WRONGTYPE" in str(read.write_errors[0])
    assert list(redis_store.write_exposures(writes)) == [0]  # the same through a pipeline
    rejected = redis_store.exchange_exposures((), "default", "broken", NOW)
    with pytest.raises(StoreRejected, match="WRONGTYPE"):
        rejected.result()
    with pytest.raises(StoreRejected):  # asking again gives the same outcome
        rejected.result()
    assert redis_store.exchange_exposures((), "default", "ok", NOW).result() == {"b"}


def test_a_forked_child_never_shares_the_exchange_connection(redis_store):
    """Parent and child exchanging at the same time each get their own answers: the
    child does not reuse the parent's per-thread connection (one socket for two)."""
    redis_store.write_exposures([Exposure("default", "parent", ("p",), NOW)])
    redis_store.write_exposures([Exposure("default", "child", ("c",), NOW)])
    assert redis_store.exchange_exposures((), "default", "parent", NOW).result() == {"p"}
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if every answer was its own
        answers = [
            redis_store.exchange_exposures((), "default", "child", NOW).result() for _ in range(300)
        ]
        os._exit(0 if all(answer == {"c"} for answer in answers) else 1)
    answers = [
        redis_store.exchange_exposures((), "default", "parent", NOW).result() for _ in range(300)
    ]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert all(answer == {"p"} for answer in answers)


def test_unreachable_redis_raises_store_unavailable():
    store = RedisStore.from_url("redis://127.0.0.1:1/0", timeout_seconds=0.05)
    with pytest.raises(StoreUnavailable):
        store.load("default", "home")
    with pytest.raises(StoreUnavailable):
        store.ping()
    for _ in range(2):  # the thread's exchange connection keeps failing cleanly
        with pytest.raises(StoreUnavailable):
            store.exchange_exposures((), "default", "u1", NOW).result()


def test_open_store_picks_the_implementation(tmp_path):
    assert type(open_store(f"sqlite:///{tmp_path}/s.db")).__name__ == "SqliteStore"
    assert type(open_store("redis://127.0.0.1:6379/0")).__name__ == "RedisStore"


@pytest.mark.parametrize("spin_seconds", [0.0, 0.0002, 0.5])
def test_the_exchange_answers_the_same_whether_it_polls_or_blocks(redis_prefix, spin_seconds):
    """Polling for the answer before the blocking read changes when the answer is read,
    never what is read: many exchanges in a row each get their own answer."""
    store = open_store(
        REDIS_URL, prefix=redis_prefix, timeout_seconds=2.0, spin_seconds=spin_seconds
    )
    try:
        assert store.spin_ns == int(spin_seconds * 1e9)
        for n in range(200):
            writes = [Exposure("default", f"u{n}", (f"item-{n}",), NOW)]
            assert store.exchange_exposures(writes, "default", f"u{n}", NOW).result() == {
                f"item-{n}"
            }
    finally:
        store.close()
