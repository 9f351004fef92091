"""The online store on a real Redis Cluster: three primaries on loopback, made for this
module. The key layout keeps every multi-key step in one slot; publishes, exposure
writes, serving, flags, the kill switch and the restore work through the cluster; a
primary killed mid-traffic fails only its own slots and serving explores there again
once it is back; a primary that fails over to its replica is found without a restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.cluster import ClusterNode
from redis.crc import key_slot

from bandit_pipeline.online_store import (
    Exposure,
    KillSwitchState,
    Snapshot,
    StoreUnavailable,
    open_store,
)
from bandit_pipeline.online_store.redis_cluster import RedisClusterStore, cluster_url
from bandit_pipeline.redact import redact_url
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.settings import SettingsError, load_settings
from bandit_pipeline.store_record import restore
from bandit_pipeline_tests.helpers import free_port, stop_process, unique_name
from bandit_pipeline_tests.test_redis_wire import holds
from bandit_pipeline_tests.test_store_record import (
    RECORDED_FLAGS,
    SURFACES,
    VERSION,
    record_everything,
)

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
# A primary that stops answering is marked failed by the others after this long (and its
# replica, if any, takes over): short, so that the tests see it happen.
NODE_TIMEOUT_MS = 1000
RANKED = [f"ranked-{i}" for i in range(8)]
POOL = tuple(f"new-{i}" for i in range(40))
# Surfaces whose snapshots fall on every primary of a three-primary cluster.
MANY_SURFACES = ("home", "cart", "pdp", "search", "email", "push")


class Cluster:
    """redis-server processes in cluster mode on loopback, each on a port and a bus port
    of its own, with its nodes.conf in ``directory`` (a restart reads it again)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[int, subprocess.Popen] = {}
        self.bus_ports: dict[int, int] = {}

    def new_port(self) -> int:
        taken = {*self.bus_ports, *self.bus_ports.values()}
        while True:
            port, bus = free_port(), free_port()
            if len({port, bus}) == 2 and not {port, bus} & taken:
                self.bus_ports[port] = bus
                return port

    @property
    def ports(self) -> list[int]:
        return [port for port, process in self.processes.items() if process.poll() is None]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.processes) + "/"

    def start(self, port: int) -> None:
        """Start (or restart) the node of ``port``; returns once it answers."""
        self.processes[port] = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(port), "--cluster-port", str(self.bus_ports[port]),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # One primary down leaves the other primaries' slots answering.
                "--cluster-require-full-coverage", "no",
                "--repl-diskless-sync-delay", "0",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                "--bind", "127.0.0.1", "--logfile", str(self.directory / f"redis-{port}.log"),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: self.answers(port), f"redis-server on port {port} to answer")

    def kill(self, port: int) -> None:
        """SIGKILL, by process id: no shutdown, no goodbye to the other nodes."""
        process = self.processes[port]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2.0)

    def answers(self, port: int) -> bool:
        try:
            with self.node(port) as node:
                return bool(node.ping())
        except redis.ConnectionError:
            return False

    def cluster_ok(self, *, failed_nodes_allowed: bool = False) -> bool:
        """Every running node says cluster_state:ok and (unless allowed) sees no node as
        failed or suspected to be."""
        for port in self.ports:
            with self.node(port) as node:
                if node.cluster("info")["cluster_state"] != "ok":
                    return False
                nodes = node.execute_command("CLUSTER", "NODES").decode()
                flags = [line.split()[2] for line in nodes.splitlines()]
                if not failed_nodes_allowed and any("fail" in f for f in flags):
                    return False
        return True

    def cli(self, *args: str) -> None:
        subprocess.run([REDIS_CLI, "--cluster", *args], check=True, capture_output=True,
                       timeout=60)  # fmt: skip

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                stop_process(process)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Three primaries, no replicas, on free loopback ports; every process stopped and
    every file removed at the end."""
    assert REDIS_SERVER, "redis-server is needed (make test installs it)"
    assert REDIS_CLI, "redis-cli is needed (it comes with redis-server)"
    directory = tmp_path_factory.mktemp("redis-cluster")
    made = Cluster(directory)
    try:
        for port in [made.new_port() for _ in range(3)]:
            made.start(port)
        made.cli("create", *(f"127.0.0.1:{port}" for port in made.ports),
                 "--cluster-replicas", "0", "--cluster-yes")  # fmt: skip
        wait_for(made.cluster_ok, "cluster_state:ok on every node")
        yield made
    finally:
        made.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def store(cluster: Cluster) -> Iterator[RedisClusterStore]:
    """A cluster store under a key prefix of this test alone."""
    opened = open_store(cluster.url, prefix=unique_name(), timeout_seconds=0.5)
    assert isinstance(opened, RedisClusterStore)
    yield opened
    opened.close()


def snapshot(version: str, surface: str = "home", n: int = 5, marker: float = 1.0) -> Snapshot:
    return Snapshot(
        "default", surface, version, datetime.now(UTC), None,
        tuple(f"item-{version}-{i}" for i in range(n)), np.full(n, marker),
        np.arange(1, n + 1, dtype=float),
    )  # fmt: skip


def publish(store, version: str = "v1", surface: str = "home") -> None:
    n = len(POOL)
    store.publish(Snapshot("default", surface, version, datetime.now(UTC), None, POOL,
                           np.linspace(1, 3, n), np.linspace(3, 1, n)))  # fmt: skip


def enable(store) -> None:
    store.set_flag("default", "bandit_exploration_enabled", "true")
    store.set_flag("default", "bandit_explore_slots", "2")
    publish(store)


def make_service(store, *, background: bool = False, **overrides) -> ExplorationService:
    settings = load_settings(
        online_store_url="sqlite:///unused.db", snapshot_refresh_seconds=0.05, **overrides
    )
    service = ExplorationService(
        settings, store, seed_source=np.random.default_rng(7), background=background
    )
    service.state.store_backoff_seconds = 0.1
    return service


def request(user: str = "u1", request_id: str = "r1", surface: str = "home") -> DecisionRequest:
    return DecisionRequest("default", surface, user, request_id, list(RANKED))


def primary_port(store: RedisClusterStore, key: str) -> int:
    return store.client.get_node_from_key(key).port


def users_by_primary(store: RedisClusterStore, count: int = 90) -> dict[int, list[str]]:
    users: dict[int, list[str]] = {}
    for number in range(count):
        user = f"user-{number}"
        users.setdefault(primary_port(store, store.exposure_key("default", user)), []).append(user)
    return users


# --- The URL, the settings and what is printed.


def test_the_cluster_url_names_its_nodes_and_keeps_its_options():
    assert cluster_url("redis+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3/") == (
        "redis://app:s3cret@10.0.0.1:7000/",
        [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379)],
    )
    assert cluster_url("rediss+cluster://[::1]:7000,h:7001/0?ssl_cert_reqs=none") == (
        "rediss://[::1]:7000/?ssl_cert_reqs=none",
        [("::1", 7000), ("h", 7001)],
    )
    with pytest.raises(ValueError, match="one database"):
        cluster_url("redis+cluster://h:7000/1")
    with pytest.raises(ValueError, match="no host"):
        cluster_url("redis+cluster://h:7000,/")
    with pytest.raises(ValueError, match="expected"):
        cluster_url("redis://h:7000/")


def test_the_settings_take_a_cluster_url_and_never_show_its_password():
    url = "rediss+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001/"
    settings = load_settings(online_store_url=url)
    assert settings.online_store_url == url
    assert "s3cret" not in str(settings)
    assert "s3cret" not in repr(settings)
    assert redact_url(url) == "rediss+cluster://app:***@10.0.0.1:7000,10.0.0.2:7001/"
    assert redact_url("redis+cluster://:s3cret@h:1,h:2/") == "redis+cluster://:***@h:1,h:2/"
    with pytest.raises(SettingsError, match="redis\\+cluster://"):
        load_settings(online_store_url="cluster://10.0.0.1:7000")


def test_a_store_opened_while_the_cluster_is_down_waits_for_it():
    port = free_port()  # nothing listens there
    store = open_store(f"redis+cluster://127.0.0.1:{port}/", timeout_seconds=0.2)
    with pytest.raises(StoreUnavailable):
        store.current_version("default", "home")
    with pytest.raises(StoreUnavailable):
        store.recent_exposures("default", "u1", datetime.now(UTC))
    store.close()


# --- What redis_wire.py assumes about redis-py's cluster client (A8 to A10).


def test_a8_to_a10_the_slot_map_the_wire_code_uses(cluster, store):
    client = store.client
    key = store.exposure_key("default", "someone")
    node = client.get_node_from_key(key)
    with cluster.node(node.port) as direct:
        try:
            # Answered MOVED if the node does not serve the key's slot.
            direct.zadd(key, {"item": datetime.now(UTC).timestamp()})
        except redis.ResponseError as exc:
            holds("A8", False, f"{node.name} does not serve {key}: {exc}")
    holds("A8", node.name == f"127.0.0.1:{node.port}", node.name)

    pool = client.get_redis_connection(node).connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command("CLUSTER", "MYID")
        with cluster.node(node.port) as direct:
            holds("A9", connection.read_response() == direct.execute_command("CLUSTER", "MYID"))
    finally:
        pool.release(connection)

    slot = key_slot(key.encode())
    wrong = next(n for n in client.get_primaries() if n.name != node.name)
    client.nodes_manager.slots_cache[slot] = [wrong]  # a map from before a failover
    holds("A8", client.get_node_from_key(key).name == wrong.name, "not read from the map")
    client.nodes_manager.initialize(last_failed_node_name=wrong.name)
    holds("A10", client.get_node_from_key(key).name == node.name, "the map was not read again")

    # The store's exchange, sent to a primary that no longer serves the slot, is answered
    # MOVED: the store reads the map again and asks the right one.
    client.nodes_manager.slots_cache[slot] = [wrong]
    assert store.recent_exposures("default", "someone", datetime.now(UTC)) == {"item"}
    assert client.get_node_from_key(key).name == node.name


# --- The key layout: every step that must be one stays in one slot.


def test_every_multi_key_step_stays_in_one_slot_and_surfaces_spread(store):
    for surface in MANY_SURFACES:
        pointer = store.snapshot_key("default", surface)
        blobs = [store.snapshot_key("default", surface, v) for v in ("v1", "20261128T121500Z")]
        assert {key_slot(k.encode()) for k in (pointer, *blobs)} == {key_slot(pointer.encode())}
    namespace_keys = [store.flags_key("ns-1"), store.killswitch_key("ns-1"),
                      store.restore_marker_key("ns-1")]  # fmt: skip
    assert len({key_slot(k.encode()) for k in namespace_keys}) == 1
    for user in ("u1", "a}b", "{", "}{x}", "user with {braces}"):
        key = store.exposure_key("default", user)
        assert key_slot(key.encode()) == key_slot(store.exposure_key("default", user).encode())
    primaries = {primary_port(store, store.snapshot_key("default", s)) for s in MANY_SURFACES}
    assert len(primaries) == 3  # the publishes below span every primary


# --- Publishing and reading.


def test_publish_many_across_primaries_then_load(store):
    store.publish_many([snapshot("v1", s, marker=i + 1.0) for i, s in enumerate(MANY_SURFACES)])
    store.publish_many([snapshot("v2", s, n=3, marker=9.0) for s in MANY_SURFACES[::2]])
    for i, surface in enumerate(MANY_SURFACES):
        loaded = store.load("default", surface)
        version = "v2" if i % 2 == 0 else "v1"
        assert loaded.version == store.current_version("default", surface) == version
        assert loaded.alpha.tolist() == [9.0 if version == "v2" else float(i + 1)] * len(loaded)
    replaced = store.snapshot_key("default", "home", "v1")
    assert 0 < store.client.ttl(replaced) <= 3600
    assert store.client.ttl(store.snapshot_key("default", "home", "v2")) == -1
    assert store.load("default", "never-published") is None


def test_readers_racing_publishes_on_every_primary_never_see_a_partial_snapshot(store):
    """Each version carries its number in every alpha and in its ids; a reader must see
    one version whole, and once published a surface never reads as missing."""
    store.publish_many([snapshot("v0", s, n=2000, marker=1.0) for s in MANY_SURFACES])
    stop = threading.Event()
    seen: dict[str, set[str]] = {s: set() for s in MANY_SURFACES}
    problems: list[str] = []

    def read(surface: str) -> None:
        last = -1
        while not stop.is_set():
            got = store.load("default", surface)
            if got is None:
                problems.append(f"{surface}: nothing")
                continue
            number = int(got.version[1:])
            whole = np.all(got.alpha == number + 1.0) and all(
                item.startswith(f"item-{got.version}-") for item in got.item_ids[::500]
            )
            if not whole or len(got) != 2000 or number < last:
                problems.append(f"{surface}: {got.version}")
            last = number
            seen[surface].add(got.version)

    readers = [threading.Thread(target=read, args=(s,)) for s in MANY_SURFACES[:3]]
    for reader in readers:
        reader.start()
    for number in range(1, 25):
        store.publish_many(
            [snapshot(f"v{number}", s, n=2000, marker=number + 1.0) for s in MANY_SURFACES]
        )
        time.sleep(0.002)
    stop.set()
    for reader in readers:
        reader.join()
    assert problems == []
    assert all(len(seen[s]) > 1 for s in MANY_SURFACES[:3])  # the reads overlapped


def test_the_restores_conditional_writes(store):
    store.publish(snapshot("v2", "home"))
    done = store.publish_unless_newer(
        [snapshot("v1", "home"), snapshot("v3", "cart"), snapshot("v3", "home")]
    )
    assert done == [False, True, True]
    assert store.load("default", "home").version == "v3"
    assert store.client.ttl(store.snapshot_key("default", "home", "v2")) > 0
    assert store.set_flag_if_absent("default", "bandit_explore_slots", "1")
    assert not store.set_flag_if_absent("default", "bandit_explore_slots", "2")
    state = KillSwitchState(True, "tripped", datetime.now(UTC))
    assert store.set_killswitch_if_absent("default", "home", state)
    assert not store.set_killswitch_if_absent("default", "home", state)
    assert store.killswitch("default", "home") == state


def test_the_restore_brings_an_emptied_cluster_store_back(cluster, store, sqlite_engine):
    record_everything(sqlite_engine, store)
    restore(sqlite_engine, store, "default")
    emptied = open_store(cluster.url, prefix=unique_name(), timeout_seconds=0.5)
    try:
        report = restore(sqlite_engine, emptied, "default")
        assert report.emptied
        assert report.snapshots == dict.fromkeys(SURFACES, VERSION)
        assert report.flags == RECORDED_FLAGS
        assert report.killswitches == {"home": True, "cart": False}
        for surface in SURFACES:
            before, after = store.load("default", surface), emptied.load("default", surface)
            assert (after.version, after.item_ids) == (before.version, before.item_ids)
            np.testing.assert_array_equal(after.alpha, before.alpha)
            assert emptied.killswitch("default", surface) == store.killswitch("default", surface)
        assert emptied.flags("default") == RECORDED_FLAGS
        assert emptied.restore_marker("default") is not None
        assert not restore(sqlite_engine, emptied, "default").restored
    finally:
        emptied.close()


# --- Serving on the cluster.


def test_serving_explores_and_obeys_flags_and_the_kill_switch(store):
    enable(store)
    service = make_service(store)
    try:
        trace = service.decide(request()).trace
        assert (trace.explored, trace.slots, trace.snapshot_version) == (True, 2, "v1")
        store.set_flag("default", "bandit_explore_slots", "1")
        service.state.refresh()
        assert service.decide(request(request_id="r2")).trace.slots == 1
        store.set_flag("default", "bandit_exploration_enabled", "false")
        service.state.refresh()
        assert service.decide(request(request_id="r3")).trace.reason == "exploration_disabled"
        store.set_flag("default", "bandit_exploration_enabled", "true")
        now = datetime.now(UTC)
        store.set_killswitch("default", "home", KillSwitchState(True, "reward too low", now))
        service.state.refresh()
        trace = service.decide(request(request_id="r4")).trace
        assert (trace.explored, trace.reason) == (False, "kill_switch")
        assert trace.detail == "reward too low"
        store.set_killswitch("default", "home", KillSwitchState(False, "reset", now))
        publish(store, version="v2")
        service.state.refresh()
        trace = service.decide(request(request_id="r5")).trace
        assert (trace.explored, trace.snapshot_version) == (True, "v2")
        service.store.ping()  # every node answers
    finally:
        service.close()


def test_exposures_on_every_primary_keep_items_from_coming_back(cluster, store):
    enable(store)
    by_primary = users_by_primary(store)
    assert len(by_primary) == 3
    users = [u for group in by_primary.values() for u in group[:4]] + ["a}b", "{x}", "}{"]
    first = make_service(store)
    chosen: dict[str, set[str]] = {}
    try:
        for user in users:
            one = first.decide(request(user, f"{user}-1")).trace
            two = first.decide(request(user, f"{user}-2")).trace  # before any write is made
            assert one.explored
            assert two.explored
            assert not set(one.chosen) & set(two.chosen)
            chosen[user] = {*one.chosen, *two.chosen}
        first.flush_exposures()  # one pipeline per primary
        now = datetime.now(UTC)
        for user in users:
            assert store.recent_exposures("default", user, now) == chosen[user]
    finally:
        first.close()

    # Another serving process reads them from the cluster.
    other = open_store(cluster.url, prefix=store.prefix, timeout_seconds=0.5)
    second = make_service(other)
    try:
        for user in users:
            trace = second.decide(request(user, f"{user}-3")).trace
            assert trace.explored
            assert set(trace.skipped_recent) == chosen[user]
            assert not set(trace.chosen) & chosen[user]
    finally:
        second.close()


def test_writes_for_a_primary_that_does_not_answer_are_refused_alone(store):
    """A slot map naming a primary that does not answer (as when it died): its users'
    exposures are refused with StoreUnavailable, the others are written, and the failed
    call has the map read again."""
    by_primary = list(users_by_primary(store).values())
    live, lost = by_primary[0][0], by_primary[1][0]
    slot = key_slot(store.exposure_key("default", lost).encode())
    nowhere = ClusterNode("127.0.0.1", free_port())

    def lose_the_slot() -> None:
        store.client.nodes_manager.slots_cache[slot] = [nowhere]

    now = datetime.now(UTC)
    lose_the_slot()
    refused = store.write_exposures(
        [Exposure("default", live, ("a",), now), Exposure("default", lost, ("b",), now)]
    )
    assert list(refused) == [1]
    assert isinstance(refused[1], StoreUnavailable)
    assert store.recent_exposures("default", live, now) == {"a"}
    assert store.recent_exposures("default", lost, now) == set()  # the map was read again

    lose_the_slot()
    read = store.exchange_exposures([Exposure("default", lost, ("c",), now)], "default", live, now)
    assert read.result() == {"a"}
    assert isinstance(read.write_errors[0], StoreUnavailable)

    lose_the_slot()
    with pytest.raises(StoreUnavailable):  # nothing could be written: all of it again later
        store.write_exposures([Exposure("default", lost, ("d",), now)])
    lose_the_slot()
    with pytest.raises(StoreUnavailable):  # the read's own primary
        store.exchange_exposures((), "default", lost, now).result()
    assert store.recent_exposures("default", lost, now) == set()


# --- A primary lost: killed and restarted, then failed over to a replica.


def test_a_primary_killed_mid_traffic_fails_only_its_slots_and_comes_back(cluster, store):
    enable(store)
    victim = primary_port(store, store.snapshot_key("default", "home"))
    # Enough users that none sees the 40 candidates twice over (each decision shows two,
    # and the guard keeps them from the same user for an hour).
    by_primary = users_by_primary(store, count=3_000)
    dead_users = by_primary[victim]
    live_users = [u for port, group in by_primary.items() if port != victim for u in group]
    service = make_service(store, background=True, exploration_enabled=True, explore_slots=2)
    try:
        for user in dead_users[:3] + live_users[:3]:
            assert service.decide(request(user, "warm-up")).trace.explored

        decided: list[tuple[float, str, object]] = []
        failures: list[BaseException] = []
        stop = threading.Event()
        users = [u for pair in zip(dead_users, live_users, strict=False) for u in pair]

        def traffic(offset: int) -> None:
            number = offset
            while not stop.is_set():
                user, number = users[number % len(users)], number + 1
                started = time.monotonic()
                try:
                    decided.append((started, user, service.decide(request(user, f"t{number}"))))
                except BaseException as exc:
                    failures.append(exc)
                time.sleep(0.001)

        threads = [threading.Thread(target=traffic, args=(k * 7,)) for k in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        cluster.kill(victim)
        killed_at = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()

        assert failures == []
        after = [(user, response) for started, user, response in decided if started > killed_at]
        assert after, "no traffic after the kill"
        for user, response in after:
            trace = response.trace
            assert len(response.items) == len(RANKED)
            if not trace.explored:
                assert trace.reason == "store_unavailable"
                assert [item.item_id for item in response.items] == RANKED
            assert user in live_users or not trace.explored
        # The breaker opens per primary: the other primaries' users keep exploring.
        live_after = [r.trace.explored for u, r in after if u in live_users]
        assert sum(live_after) >= 0.9 * len(live_after), (sum(live_after), len(live_after))

        # Once the others have marked it failed: its slots fall back to the ranker's
        # items, every other slot explores with the snapshot and flags in memory.
        wait_for(lambda: failed_in_view_of_others(cluster, victim), "the primary marked failed")
        time.sleep(service.state.store_backoff_seconds)
        for user in live_users[:6]:
            assert service.decide(request(user, "outage")).trace.explored
        response = service.decide(request(dead_users[0], "outage"))
        assert (response.trace.explored, response.trace.reason) == (False, "store_unavailable")
        assert [item.item_id for item in response.items] == RANKED

        # Restarted on its port with its nodes.conf: its slots are served again, empty
        # (no persistence), and serving explores there again with the snapshot it holds.
        cluster.start(victim)
        wait_for(cluster.cluster_ok, "the cluster ok again")
        time.sleep(service.state.store_backoff_seconds)
        assert store.current_version("default", "home") is None
        for user in dead_users[:6]:
            trace = service.decide(request(user, "back")).trace
            assert (trace.explored, trace.snapshot_version) == (True, "v1")
        publish(store, version="v2")
        wait_for(
            lambda: service.decide(request(dead_users[1], "v2")).trace.snapshot_version == "v2",
            "serving to load v2 from the restarted primary",
        )
    finally:
        service.close()
        if not cluster.answers(victim):  # a failure above: leave the cluster whole
            cluster.start(victim)
            wait_for(cluster.cluster_ok, "the cluster ok again")


def failed_in_view_of_others(cluster: Cluster, port: int) -> bool:
    for other in cluster.ports:
        with cluster.node(other) as node:
            for line in node.execute_command("CLUSTER", "NODES").decode().splitlines():
                fields = line.split()
                failed = "fail" in fields[2].split(",")  # not just suspected ("fail?")
                if fields[1].startswith(f"127.0.0.1:{port}@") and not failed:
                    return False
    return True


def test_a_primary_failed_over_to_its_replica_is_found_without_a_restart(cluster, store):
    enable(store)
    victim = primary_port(store, store.snapshot_key("default", "home"))
    replica = cluster.new_port()
    cluster.start(replica)
    with cluster.node(victim) as primary:
        primary_id = primary.execute_command("CLUSTER", "MYID").decode()
    cluster.cli("add-node", f"127.0.0.1:{replica}", f"127.0.0.1:{victim}",
                "--cluster-slave", "--cluster-master-id", primary_id)  # fmt: skip
    with cluster.node(replica) as node:
        wait_for(lambda: node.info("replication")["master_link_status"] == "up", "the replica")
    users = users_by_primary(store)[victim][:6]
    service = make_service(store)
    try:
        for user in users:
            assert service.decide(request(user, "before")).trace.explored
        service.flush_exposures()
        with cluster.node(victim) as primary:  # everything so far has reached the replica
            probe = store.snapshot_key("default", "home") + ":probe"
            primary.set(probe, "1")
            assert primary.execute_command("WAIT", 1, 5000) == 1

        cluster.kill(victim)
        with cluster.node(replica) as node:
            wait_for(lambda: node.info("replication")["role"] == "master", "the failover")
        wait_for(lambda: cluster.cluster_ok(failed_nodes_allowed=True), "the cluster ok again")

        def explores_again() -> bool:
            time.sleep(service.state.store_backoff_seconds)
            return service.decide(request(users[0], "after")).trace.explored

        wait_for(explores_again, "serving to find the new primary")
        assert primary_port(store, store.snapshot_key("default", "home")) == replica
        assert store.load("default", "home").version == "v1"  # replicated before the kill
        for user in users[1:]:
            trace = service.decide(request(user, "after")).trace
            assert trace.explored
            assert trace.skipped_recent  # its exposures were replicated
    finally:
        service.close()
