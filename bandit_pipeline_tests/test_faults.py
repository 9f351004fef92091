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

import pytest
import redis

from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline_tests.helpers import free_port, scalar

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


class PersistentRedis:
    """A redis-server of this test alone that keeps its data (append-only file, fsync at
    every write), so a kill -9 in the middle of a publish leaves what it wrote so far."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (make test installs it)"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
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
        server = PersistentRedis(tmp_path / f"redis-{delay}")
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
