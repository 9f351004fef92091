"""The warehouse's record of the online store and the restore of an emptied store from it,
on PostgreSQL and SQLite, to Redis and SQLite stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text

from bandit_pipeline.monitoring.killswitch import evaluate_killswitch, reset_killswitch
from bandit_pipeline.monitoring.rollups import materialise_metrics
from bandit_pipeline.online_store import KillSwitchState, OnlineStore, Snapshot, open_store
from bandit_pipeline.online_store.redis import RedisStore
from bandit_pipeline.pool import build_candidate_pool, publish_pools, snapshot_version
from bandit_pipeline.store_record import recorded_killswitches, restore, set_flag
from bandit_pipeline.timing import SUPERSEDED_GRACE_SECONDS
from bandit_pipeline_tests.helpers import (
    DEFAULTS,
    PARAMS,
    REDIS_URL,
    as_of,
    delete_redis_keys,
    load_events,
    reset,
    rows,
    traffic,
    unique_name,
)

SURFACES = ("home", "cart")
AS_OF = as_of(3)
VERSION = snapshot_version(AS_OF)
POOL = replace(DEFAULTS.pool_parameters(), surfaces=SURFACES)


@pytest.fixture(params=["redis", "sqlite"])
def new_store(request, tmp_path) -> Iterator[Callable[[], OnlineStore]]:
    """Opens empty stores of one kind: each call is a store that has never held anything,
    as a Redis restarted without persistence is."""
    opened: list[OnlineStore] = []
    prefixes: list[str] = []

    def make() -> OnlineStore:
        if request.param == "redis":
            prefixes.append(unique_name())
            store = open_store(REDIS_URL, prefix=prefixes[-1], timeout_seconds=2.0)
        else:
            store = open_store(f"sqlite:///{tmp_path}/store-{len(opened)}.db")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    for prefix in prefixes:
        delete_redis_keys(prefix)


def record_everything(engine: Engine, store: OnlineStore) -> None:
    """Through the product: a published pool per surface, flags set and unset, the kill
    switch tripped on home (by the sensor's evaluation) and reset on cart."""
    reset(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM item_catalog"))
        connection.execute(
            text(
                "INSERT INTO item_catalog (namespace, item_id, category, price, availability,"
                " freshness_index) VALUES ('default', :item, 'shoes', 50, 0.9, 0.9)"
            ),
            [{"item": f"item-{i}"} for i in range(12)],
        )
    build_candidate_pool(engine, AS_OF, "default", POOL, PARAMS)
    assert publish_pools(engine, store, AS_OF, "default", SURFACES) == {"home": 12, "cart": 12}
    set_flag(engine, store, "default", "bandit_exploration_enabled", "true", "ops")
    set_flag(engine, store, "default", "bandit_explore_slots", "2", "ops")
    set_flag(engine, store, "default", "bandit_explore_traffic_percent", "40", "ops")
    set_flag(engine, store, "default", "bandit_explore_traffic_percent", None, "ops")
    load_events(engine, traffic(0, 0.0, 0.3, n_explore=120))
    materialise_metrics(engine, as_of(0), PARAMS, "default")
    policy = DEFAULTS.model_copy(update={"killswitch_min_explore_impressions": 100})
    changes = evaluate_killswitch(engine, store, "default", as_of(0), policy.killswitch_policy())
    assert [(c.surface, c.action) for c in changes] == [("home", "trip")]
    reset_killswitch(engine, store, "default", "cart", "checked", actor="ops")


RECORDED_FLAGS = {"bandit_exploration_enabled": "true", "bandit_explore_slots": "2"}


def test_an_emptied_store_gets_its_snapshots_flags_and_kill_switches_back_once(engine, new_store):
    live = new_store()
    record_everything(engine, live)
    first = restore(engine, live, "default")  # the store lost nothing: only the marker
    assert (first.emptied, first.restored) == (True, False)
    assert live.restore_marker("default") is not None
    assert not restore(engine, live, "default").emptied

    emptied = new_store()
    report = restore(engine, emptied, "default")
    assert report.emptied
    assert report.snapshots == {"home": VERSION, "cart": VERSION}
    assert report.flags == RECORDED_FLAGS
    assert report.killswitches == {"home": True, "cart": False}
    assert report.unavailable == {}
    for surface in SURFACES:
        before, after = live.load("default", surface), emptied.load("default", surface)
        assert after.version == before.version == VERSION
        assert after.as_of == before.as_of == AS_OF
        assert after.item_ids == before.item_ids
        np.testing.assert_array_equal(after.alpha, before.alpha)
        np.testing.assert_array_equal(after.beta, before.beta)
        assert emptied.killswitch("default", surface) == live.killswitch("default", surface)
    assert emptied.flags("default") == live.flags("default") == RECORDED_FLAGS
    assert emptied.killswitch("default", "home").tripped
    assert emptied.restore_marker("default") is not None

    again = restore(engine, emptied, "default")  # idempotent: nothing more to write
    assert (again.emptied, again.restored, again.snapshots) == (False, False, {})
    assert again.summary() == "default: the online store holds what the warehouse recorded"
    assert restore(engine, emptied, "other").restored is False  # nothing recorded there


def test_the_restore_never_overwrites_what_the_store_got_since(engine, new_store):
    record_everything(engine, new_store())
    emptied = new_store()
    # Written after the loss, before the restore: a newer snapshot, a flag set and a
    # kill switch reset by hand.
    newer = snapshot_version(AS_OF + timedelta(minutes=15))
    emptied.publish(Snapshot("default", "home", newer, datetime.now(UTC), None, ("x",),
                             np.ones(1), np.ones(1)))  # fmt: skip
    emptied.set_flag("default", "bandit_explore_slots", "1")
    by_hand = KillSwitchState(False, "re-armed by hand", datetime.now(UTC), "ops")
    emptied.set_killswitch("default", "home", by_hand)

    report = restore(engine, emptied, "default")
    assert report.snapshots == {"cart": VERSION}
    assert report.flags == {"bandit_exploration_enabled": "true"}
    assert report.killswitches == {"cart": False}
    assert emptied.current_version("default", "home") == newer
    assert emptied.flags("default") == {**RECORDED_FLAGS, "bandit_explore_slots": "1"}
    assert emptied.killswitch("default", "home") == by_hand
    assert not restore(engine, emptied, "default").restored


class Contested:
    """The emptied store as the restore sees it, with another writer (a second connection
    to the same store) that writes each key the restore is about to write, between the
    restore's look and its write: the worst moment of a race with a publish, `flags set`
    or the kill-switch sensor. Everything else passes through."""

    def __init__(self, store: OnlineStore, other: OnlineStore, newer: Snapshot) -> None:
        self.store, self.other, self.newer = store, other, newer
        self.by_hand = KillSwitchState(False, "re-armed by hand", datetime.now(UTC), "ops")

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def _snapshots_first(self, snapshots: list[Snapshot]) -> None:
        if any(s.surface == self.newer.surface for s in snapshots):
            self.other.publish(self.newer)

    def publish_many(self, snapshots: list[Snapshot]) -> None:
        self._snapshots_first(snapshots)
        self.store.publish_many(snapshots)

    def publish_unless_newer(self, snapshots: list[Snapshot]) -> list[bool]:
        self._snapshots_first(snapshots)
        return self.store.publish_unless_newer(snapshots)

    def _flag_first(self, name: str) -> None:
        if name == "bandit_explore_slots":
            self.other.set_flag("default", name, "1")

    def set_flag(self, namespace: str, name: str, value: str | None) -> None:
        self._flag_first(name)
        self.store.set_flag(namespace, name, value)

    def set_flag_if_absent(self, namespace: str, name: str, value: str) -> bool:
        self._flag_first(name)
        return self.store.set_flag_if_absent(namespace, name, value)

    def _killswitch_first(self, surface: str) -> None:
        if surface == "home":
            self.other.set_killswitch("default", "home", self.by_hand)

    def set_killswitch(self, namespace: str, surface: str, state: KillSwitchState) -> None:
        self._killswitch_first(surface)
        self.store.set_killswitch(namespace, surface, state)

    def set_killswitch_if_absent(
        self, namespace: str, surface: str, state: KillSwitchState
    ) -> bool:
        self._killswitch_first(surface)
        return self.store.set_killswitch_if_absent(namespace, surface, state)


@pytest.fixture
def same_store() -> Iterator[Callable[[OnlineStore], OnlineStore]]:
    """A second connection to the store given (same Redis prefix, same SQLite file)."""
    opened: list[OnlineStore] = []

    def reopen(store: OnlineStore) -> OnlineStore:
        if isinstance(store, RedisStore):
            opened.append(open_store(REDIS_URL, prefix=store.prefix, timeout_seconds=2.0))
        else:
            opened.append(open_store(f"sqlite:///{store.path}"))
        return opened[-1]

    yield reopen
    for store in opened:
        store.close()


def test_a_write_made_between_the_restores_look_and_its_write_is_kept(
    engine, new_store, same_store
):
    record_everything(engine, new_store())
    emptied = new_store()
    newer = Snapshot("default", "home", snapshot_version(AS_OF + timedelta(minutes=15)),
                     datetime.now(UTC), None, ("x",), np.ones(1), np.ones(1))  # fmt: skip
    contested = Contested(emptied, same_store(emptied), newer)

    report = restore(engine, contested, "default")
    assert emptied.current_version("default", "home") == newer.version
    assert emptied.load("default", "home").item_ids == ("x",)
    assert emptied.current_version("default", "cart") == VERSION
    assert emptied.flags("default") == {**RECORDED_FLAGS, "bandit_explore_slots": "1"}
    assert emptied.killswitch("default", "home") == contested.by_hand
    assert emptied.killswitch("default", "cart").tripped is False
    # The report and the warehouse's record name only what the restore wrote.
    assert report.snapshots == {"cart": VERSION}
    assert report.flags == {"bandit_exploration_enabled": "true"}
    assert report.killswitches == {"cart": False}
    published = rows(engine, "SELECT surface, version FROM bandit_publications ORDER BY surface")
    assert [tuple(row) for row in published] == [("cart", VERSION), ("home", VERSION)]
    assert not restore(engine, emptied, "default").restored


def test_the_conditional_writes_of_each_store(new_store):
    store = new_store()
    state = KillSwitchState(True, "ctr", datetime.now(UTC), "sensor")
    assert store.set_flag_if_absent("default", "bandit_explore_slots", "2") is True
    assert store.set_flag_if_absent("default", "bandit_explore_slots", "1") is False
    assert store.flags("default") == {"bandit_explore_slots": "2"}
    assert store.set_killswitch_if_absent("default", "home", state) is True
    later = KillSwitchState(False, "reset", datetime.now(UTC), "ops")
    assert store.set_killswitch_if_absent("default", "home", later) is False
    assert store.killswitch("default", "home") == state

    def snapshot(minutes: int, item: str) -> Snapshot:
        version = snapshot_version(AS_OF + timedelta(minutes=minutes))
        return Snapshot("default", "home", version, datetime.now(UTC), None, (item,),
                        np.ones(1), np.ones(1))  # fmt: skip

    assert store.publish_unless_newer([snapshot(15, "a")]) == [True]
    assert store.publish_unless_newer([snapshot(0, "old"), snapshot(30, "b")]) == [False, True]
    assert store.load("default", "home").item_ids == ("b",)
    assert store.publish_unless_newer([snapshot(30, "b2")]) == [True]  # the same version
    assert store.load("default", "home").item_ids == ("b2",)
    if isinstance(store, RedisStore):
        # The refused snapshot left no blob; the replaced one expires as after a publish.
        refused = store.snapshot_key("default", "home", snapshot(0, "old").version)
        assert store.client.exists(refused) == 0
        replaced = store.snapshot_key("default", "home", snapshot(15, "a").version)
        assert 0 < store.client.ttl(replaced) <= SUPERSEDED_GRACE_SECONDS


def test_a_store_behind_the_record_gets_the_newer_snapshot_and_keeps_its_flags(engine, new_store):
    """A store that kept its marker (restarted from an old persistence file, say) is not
    emptied: only its snapshots are brought forward; a flag removed from it stays so."""
    behind = new_store()
    record_everything(engine, behind)
    restore(engine, behind, "default")
    behind.set_flag("default", "bandit_explore_slots", None)
    later = AS_OF + timedelta(minutes=15)
    build_candidate_pool(engine, later, "default", POOL, PARAMS)
    publish_pools(engine, new_store(), later, "default", SURFACES)  # the store of another host

    report = restore(engine, behind, "default")
    assert not report.emptied
    assert report.snapshots == {"home": snapshot_version(later), "cart": snapshot_version(later)}
    assert (report.flags, report.killswitches) == ({}, {})
    assert "bandit_explore_slots" not in behind.flags("default")


def test_a_pruned_pool_is_reported_and_not_published(engine, new_store):
    record_everything(engine, new_store())
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM bandit_candidate_pool WHERE surface = 'cart'"))
    emptied = new_store()
    report = restore(engine, emptied, "default")
    assert report.snapshots == {"home": VERSION}
    assert report.unavailable == {"cart": f"the pool of {VERSION} no longer holds its 12 items"}
    assert emptied.current_version("default", "cart") is None
    assert report.flags == RECORDED_FLAGS  # the rest is restored all the same
    assert "snapshot cart not restored" in report.summary()


def test_publishing_records_each_snapshot_and_the_kill_switch_record_reads_back(engine, new_store):
    store = new_store()
    record_everything(engine, store)
    published = rows(
        engine,
        "SELECT surface, version, items FROM bandit_publications ORDER BY surface",
    )
    assert [tuple(row) for row in published] == [("cart", VERSION, 12), ("home", VERSION, 12)]
    states = recorded_killswitches(engine, "default")
    assert states == {
        "home": store.killswitch("default", "home"),
        "cart": store.killswitch("default", "cart"),
    }
