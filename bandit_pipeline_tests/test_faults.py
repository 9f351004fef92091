"""Faults against a PostgreSQL server of these tests alone, restarted on purpose (never
the shared one): what an ingest leaves when the warehouse goes away under it, and that
running it again completes the load exactly once."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import text

from bandit_pipeline.cli import main
from bandit_pipeline.defs.resources import resources_from_settings
from bandit_pipeline.defs.restore import online_store_restore_sensor
from bandit_pipeline.defs.safeguards import killswitch_sensor
from bandit_pipeline.monitoring.rollups import materialise_metrics
from bandit_pipeline.online_store import open_store
from bandit_pipeline.pool import build_candidate_pool, publish_pools, snapshot_version
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline_tests import helpers
from bandit_pipeline_tests.helpers import (
    PARAMS,
    PARTITIONS_START,
    free_port,
    load_events,
    scalar,
    traffic,
    warehouse_resource,
)

PG_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


class PrivatePostgres:
    """initdb'd into a folder of the test, on a free loopback port; stopped by its pid."""

    def __init__(self, folder: Path) -> None:
        self.bin = PG_BINARIES[-1]
        self.data, self.port = folder / "data", free_port()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [*self.as_owner, str(self.bin / program), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", *args, action)

    def start(self) -> None:
        self._ctl("start", "-l", str(self.data / "server.log"))

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast", "-l", str(self.data / "server.log"))

    def stop(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                self._ctl("stop", "-m", "immediate")
            except subprocess.CalledProcessError:
                os.kill(pid, 9)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    assert PG_BINARIES, "PostgreSQL's server binaries are needed (make test installs them)"
    # Not under pytest's folder: that is private to its user, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="bandit_test_postgres_"))
    server = PrivatePostgres(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _ingest(path: Path, url: str, batch_size: int) -> subprocess.Popen:
    env = {**os.environ, "BANDIT_WAREHOUSE_URL": url, "BANDIT_INGEST_BATCH_SIZE": str(batch_size)}
    command = [str(Path(sys.executable).parent / "bandit-pipeline"), "ingest", str(path)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def test_postgres_restarted_mid_ingest_leaves_whole_batches_and_a_rerun_completes(
    private_postgres, tmp_path
):
    engine = make_engine(private_postgres.url)
    upgrade(engine)
    events = list(generate_events([f"item-{i}" for i in range(500)], 150_000,
                                  start=_hours_ago(2), end=_hours_ago(0)))  # fmt: skip
    path = tmp_path / "events.jsonl"
    write_jsonl(path, events)
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines("not json\n" for _ in range(7))
    batch = 5_000

    loading = _ingest(path, private_postgres.url, batch)
    deadline = time.monotonic() + 120
    while scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == 0:
        assert loading.poll() is None, loading.communicate()
        assert time.monotonic() < deadline, "the ingest wrote nothing"
        time.sleep(0.05)
    engine.dispose()
    private_postgres.restart()  # the server goes away under the running ingest
    out, err = loading.communicate(timeout=120)
    assert loading.returncode == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one clear line, no traceback
    assert lines[0].startswith("error: warehouse error at postgresql+psycopg://postgres@127.0")
    assert any(kind in lines[0] for kind in ("connection lost", "unreachable")), lines[0]

    landed = scalar(engine, "SELECT COUNT(*) FROM bandit_rewards")
    rejected = scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected")
    assert 0 < landed < len(events)
    assert (landed + rejected) % batch == 0  # whole batches only

    rerun = _ingest(path, private_postgres.url, batch)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"duplicate={landed}" in out
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == len(events)
    assert scalar(engine, "SELECT COUNT(DISTINCT event_id) FROM bandit_rewards") == len(events)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == 1  # kept once
    engine.dispose()


def _hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def _job_run(url: str, first: str, last: str, start: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BANDIT_WAREHOUSE_URL": url, "BANDIT_PARTITIONS_START": start,
           "BANDIT_ONLINE_STORE_URL": f"sqlite:///{tempfile.mkdtemp()}/store.db"}  # fmt: skip
    env.pop("DAGSTER_HOME", None)
    command = [str(Path(sys.executable).parent / "bandit-pipeline"), "job", "run",
               "--from", first, "--to", last]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


POSTERIOR_TABLES = ("bandit_reward_aggregates", "bandit_posteriors")
WINDOWS = 40  # ten hours of windows, two Dagster runs: the restart lands inside the first


def test_postgres_restarted_mid_job_leaves_whole_windows_and_a_rerun_equals_a_clean_run(
    private_postgres, tmp_path
):
    from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW
    from bandit_pipeline_tests.helpers import rows

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15) - WINDOW * 4
    start = end - WINDOW * WINDOWS
    events = list(generate_events([f"item-{i}" for i in range(300)], 25_000, start=start,
                                  end=end))  # fmt: skip
    path = tmp_path / "events.jsonl"
    write_jsonl(path, events)
    first, last = start.strftime(PARTITION_FORMAT), (end - WINDOW).strftime(PARTITION_FORMAT)
    urls = {}
    for name in ("faulted", "clean"):
        admin = make_engine(private_postgres.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        urls[name] = private_postgres.url.rsplit("/", 1)[0] + f"/{name}"
        engine = make_engine(urls[name])
        upgrade(engine)
        engine.dispose()
        env = {**os.environ, "BANDIT_WAREHOUSE_URL": urls[name]}
        subprocess.run([str(Path(sys.executable).parent / "bandit-pipeline"), "ingest",
                        "--historical", str(path)], env=env, check=True,
                       capture_output=True)  # fmt: skip

    faulted = _job_run(urls["faulted"], first, last, first)
    engine = make_engine(urls["faulted"])
    deadline = time.monotonic() + 180
    while scalar(engine, "SELECT COUNT(*) FROM bandit_posterior_runs") < 3:
        assert faulted.poll() is None, faulted.communicate()
        assert time.monotonic() < deadline, "the job materialised nothing"
        time.sleep(0.05)
    engine.dispose()
    private_postgres.restart()
    out, err = faulted.communicate(timeout=300)
    clean = _job_run(urls["clean"], first, last, first)  # the same windows, undisturbed
    assert clean.wait(timeout=300) == 0, clean.communicate()
    assert faulted.returncode == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if not line.startswith("  ")]
    assert lines[-1].startswith("error: the run of windows"), err
    assert "posterior_update: warehouse" in lines[-1]
    assert any(kind in lines[-1] for kind in ("connection lost", "unreachable")), lines[-1]
    assert "Traceback" not in err

    # Every window that landed landed whole: its run row, its aggregates and posteriors.
    for as_of, posterior_rows in rows(
        engine, "SELECT as_of, posterior_rows FROM bandit_posterior_runs ORDER BY as_of"
    ):
        stored = scalar(engine, "SELECT COUNT(*) FROM bandit_posteriors WHERE as_of = :t",
                        t=as_of)  # fmt: skip
        assert stored == posterior_rows, as_of
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_posterior_runs") < WINDOWS

    rerun = _job_run(urls["faulted"], first, last, first)
    assert rerun.wait(timeout=300) == 0, rerun.communicate()
    clean_engine = make_engine(urls["clean"])
    for table in POSTERIOR_TABLES:
        query = f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4"
        assert rows(engine, query) == rows(clean_engine, query), table
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_posterior_runs") == WINDOWS
    engine.dispose()
    clean_engine.dispose()


class PrivateRedis:
    """A redis-server of this test alone, on a free loopback port, stopped by its pid.
    ``persistent``: it keeps its data (append-only file, fsync at every write), so a kill
    -9 in the middle of a publish leaves what it wrote so far; else it comes back empty
    from every restart."""

    def __init__(self, folder: Path, *, persistent: bool = True) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent \
            else ["--appendonly", "no"]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (make test installs it)"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", *self.persistence],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _snapshots(version: str, size: int):
    import numpy as np

    from bandit_pipeline.online_store import Snapshot

    items = tuple(f"{version}-item-{i}" for i in range(size))
    return [
        Snapshot("default", surface, version, datetime.now(UTC), None, items,
                 np.full(size, 2.0), np.full(size, 3.0))
        for surface in ("home", "pdp", "cart")
    ]  # fmt: skip


def test_redis_killed_mid_publish_leaves_whole_snapshots_and_a_rerun_publishes(tmp_path):
    """3 x 100,000 items, the server killed at several moments of the publish: after a
    restart from its append-only file every surface holds the old snapshot or the new
    one, whole; publishing again puts the new one everywhere."""
    from bandit_pipeline.online_store import StoreUnavailable, open_store

    old, new = _snapshots("v1", 100_000), _snapshots("v2", 100_000)
    seen = set()
    for delay in (0.0, 0.002, 0.005, 0.01, 0.02):
        server = PrivateRedis(tmp_path / f"redis-{delay}")
        server.folder.mkdir()
        server.start()
        try:
            store = open_store(server.url, timeout_seconds=5.0)
            store.publish_many(old)
            publisher = threading.Thread(target=_publish_quietly, args=(store, new))
            publisher.start()
            time.sleep(delay)
            server.kill()
            publisher.join(timeout=30)
            server.start()
            store = open_store(server.url, timeout_seconds=5.0)
            for surface in ("home", "pdp", "cart"):
                snapshot = store.load("default", surface)
                assert snapshot is not None, surface
                assert snapshot.version in ("v1", "v2")
                assert len(snapshot.item_ids) == len(snapshot.alpha) == len(snapshot.beta)
                assert all(i.startswith(snapshot.version) for i in snapshot.item_ids[::9_999])
                seen.add(snapshot.version)
            store.publish_many(new)  # the rerun
            assert {store.current_version("default", s) for s in ("home", "pdp", "cart")} == {"v2"}
        except StoreUnavailable as exc:  # pragma: no cover - would be a failure to report
            raise AssertionError(f"the restarted store did not answer: {exc}") from exc
        finally:
            server.kill()
    assert "v1" in seen  # at least one kill landed before the publish was through


def _publish_quietly(store, snapshots) -> None:
    from bandit_pipeline.online_store import StoreUnavailable

    with contextlib.suppress(StoreUnavailable, OSError):
        store.publish_many(snapshots)


RANKED = [f"ranked-{i}" for i in range(8)]


class Traffic:
    """Decisions on every surface, from a thread, as fast as the service answers; each
    with the time it was made. Whatever ``decide`` raises is kept: it should not."""

    def __init__(self, service, surfaces: tuple[str, ...]) -> None:
        self.service, self.surfaces = service, surfaces
        self.decisions: list[tuple[float, object]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decisions", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            for surface in self.surfaces:
                n += 1
                request = DecisionRequest("default", surface, f"u{n}", f"r{n}", list(RANKED))
                try:
                    response = self.service.decide(request)
                    # The ranker's length, every item once, whatever the store does.
                    assert len({item.item_id for item in response.items}) == len(RANKED)
                except BaseException as exc:  # kept for the test to report
                    self.errors.append(exc)
                    continue
                self.decisions.append((time.monotonic(), response.trace))
            time.sleep(0.001)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def since(self, moment: float, until: float = float("inf")) -> list:
        """The traces of the decisions made from ``moment`` (until ``until``)."""
        return [trace for at, trace in list(self.decisions) if moment <= at < until]

    def wait_for(self, moment: float, done, what: str, timeout: float = 20.0) -> list:
        """The traces since ``moment`` once ``done(traces)`` holds for them."""
        deadline = time.monotonic() + timeout
        while True:
            traces = self.since(moment)
            if done(traces):
                return traces
            assert time.monotonic() < deadline, f"{what}: {[t.reason for t in traces[-10:]]}"
            time.sleep(0.05)


def _last_per_surface(traces: list) -> dict[str, object]:
    return {trace.surface: trace for trace in traces}


def _serving_with_flags_and_kill_switch(traces: list, version: str) -> bool:
    """The newest decisions explore two slots on cart (the flags) from ``version``, and
    none on home (its kill switch)."""
    last = _last_per_surface(traces)
    cart, home = last.get("cart"), last.get("home")
    return (
        cart is not None and home is not None
        and (cart.reason, len(cart.chosen), cart.snapshot_version) == ("explored", 2, version)
        and home.reason == "kill_switch"
    )  # fmt: skip


def test_redis_restarted_empty_is_restored_by_the_sensor_while_serving_goes_on(pg_engine, tmp_path):
    """A Redis without persistence, killed and restarted empty under traffic: no decision
    fails meanwhile, and one tick of the restore sensor brings back the published
    snapshots, the flags set with `flags set` and the tripped kill switch, so serving
    explores again as it did (and not on the tripped surface)."""
    surfaces = ("home", "cart")
    server = PrivateRedis(tmp_path, persistent=False)
    server.start()
    service = None
    load = None
    try:
        url = pg_engine.url.render_as_string(hide_password=False)
        settings = default_settings(
            warehouse_url=url, online_store_url=server.url, partitions_start=PARTITIONS_START,
            surfaces=list(surfaces), killswitch_min_explore_impressions=100,
            snapshot_refresh_seconds=0.05, online_store_timeout_ms=200.0,
        )  # fmt: skip
        resources = {
            **resources_from_settings(settings),
            "warehouse": warehouse_resource(pg_engine, settings),
        }
        # Through the product: a published pool, three flags, the kill switch on home.
        with pg_engine.begin() as connection:
            connection.execute(
                text("INSERT INTO item_catalog (namespace, item_id, category, price,"
                     " availability, freshness_index)"
                     " VALUES ('default', :item, 'shoes', 50, 0.9, 0.9)"),
                [{"item": f"item-{i}"} for i in range(30)],
            )  # fmt: skip
        published_as_of = helpers.as_of(3)
        version = snapshot_version(published_as_of)
        build_candidate_pool(pg_engine, published_as_of, "default", settings.pool_parameters(),
                             PARAMS)  # fmt: skip
        store = open_store(server.url, timeout_seconds=5.0)
        assert publish_pools(pg_engine, store, published_as_of, "default", surfaces) == {
            "home": 30, "cart": 30,
        }  # fmt: skip
        env = {"BANDIT_WAREHOUSE_URL": url, "BANDIT_ONLINE_STORE_URL": server.url}
        flags = {"bandit_exploration_enabled": "true", "bandit_explore_slots": "2",
                 "bandit_explore_traffic_percent": "100"}  # fmt: skip
        for name, value in flags.items():
            result = CliRunner().invoke(main, ["flags", "set", name, value], env=env)
            assert result.exit_code == 0, result.output
        load_events(pg_engine, traffic(0, 0.0, 0.3, n_explore=120))
        materialise_metrics(pg_engine, helpers.as_of(0), PARAMS, "default")
        with dg.build_sensor_context(resources=resources) as context:
            killswitch_sensor(context)
        tripped = store.killswitch("default", "home")
        assert tripped.tripped
        store.close()

        service = ExplorationService(settings)  # with its refresh and exposure threads
        service.state.store_backoff_seconds = 0.1
        load = Traffic(service, surfaces)
        load.start()
        began = time.monotonic()
        load.wait_for(began, lambda t: _serving_with_flags_and_kill_switch(t, version),
                      "serving before the restart")  # fmt: skip

        server.kill()
        killed = time.monotonic()
        time.sleep(0.3)  # decisions while the store is down
        server.start()  # empty: no persistence
        restarted = time.monotonic()
        down = [trace.reason for trace in load.since(killed, restarted)]
        assert "store_unavailable" in down, down[-10:]  # the ranker's items, not an error
        store = open_store(server.url, timeout_seconds=5.0)
        assert store.current_version("default", "home") is None
        assert store.flags("default") == {}
        assert store.killswitch("default", "home") is None
        # Until the restore: the flags fall back to the settings (exploration off).
        load.wait_for(restarted, lambda t: {x.reason for x in t[-4:]} == {"exploration_disabled"},
                      "serving on the emptied store")  # fmt: skip

        with dg.build_sensor_context(resources=resources) as context:
            result = online_store_restore_sensor(context)
        restored = time.monotonic()
        assert isinstance(result, dg.SkipReason)
        message = result.skip_message
        assert message.startswith("default: store emptied"), message
        for part in (f"snapshot home={version}", f"snapshot cart={version}",
                     "flag bandit_explore_slots=2", "kill switch home tripped"):  # fmt: skip
            assert part in message, message
        for surface in surfaces:
            assert store.current_version("default", surface) == version
            assert len(store.load("default", surface)) == 30
        assert store.flags("default") == flags
        assert store.killswitch("default", "home") == tripped
        load.wait_for(restored, lambda t: _serving_with_flags_and_kill_switch(t, version),
                      "serving after the restore")  # fmt: skip

        with dg.build_sensor_context(resources=resources) as context:
            again = online_store_restore_sensor(context)
        assert again.skip_message == "default: the online store holds what the warehouse recorded"
        store.close()
        load.stop()
        assert load.errors == []
        reasons = {trace.reason for trace in load.since(began)}
        assert reasons <= {"explored", "kill_switch", "exploration_disabled", "store_unavailable"}
        assert len(load.since(restarted)) > 20
    finally:
        if load is not None:
            load.stop()
        if service is not None:
            service.close()
        server.kill()


def test_ingest_killed_three_times_mid_file_then_completed(tmp_path):
    """SIGKILL of the ingest process at three moments of a 200,000-row file: whole batches
    at each kill, and the last run leaves every valid event once and every malformed row
    rejected once."""
    import signal

    from bandit_pipeline_tests.helpers import fresh_database

    events = list(generate_events([f"item-{i}" for i in range(500)], 185_000,
                                  start=_hours_ago(3), end=_hours_ago(0), seed=3))  # fmt: skip
    path = tmp_path / "events.jsonl"
    write_jsonl(path, events)
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(f"not json {n}\n" for n in range(25))
    batch = 10_000
    with fresh_database() as url:
        engine = make_engine(url)

        def stored() -> int:
            return scalar(engine, "SELECT (SELECT COUNT(*) FROM bandit_rewards) +"
                                  " (SELECT COUNT(*) FROM bandit_rewards_rejected)")  # fmt: skip

        previous = 0
        for _ in range(3):
            loading = _ingest(path, url, batch)
            deadline = time.monotonic() + 120
            while stored() <= previous and loading.poll() is None:
                assert time.monotonic() < deadline, "the ingest wrote nothing"
                time.sleep(0.02)
            loading.send_signal(signal.SIGKILL)
            loading.communicate()
            now = stored()
            assert now % batch == 0 or now == len(events) + 25, now  # whole batches only
            previous = now
        finished = _ingest(path, url, batch)
        _, err = finished.communicate(timeout=300)
        assert finished.returncode == 0, err
        assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == len(events)
        assert scalar(engine, "SELECT COUNT(DISTINCT event_id) FROM bandit_rewards") == len(events)
        assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == 25
        engine.dispose()
