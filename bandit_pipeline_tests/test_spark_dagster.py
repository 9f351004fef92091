"""The Dagster job on a real Spark standalone cluster: ``bandit-pipeline job run`` with
BANDIT_WAREHOUSE_URL at ``spark://127.0.0.1:PORT`` materialises the partitions through the
job's assets, on the two workers' executors: it stores the reference's posteriors, builds
the pool from the lake's catalog and publishes it to the test Redis.

The events and the catalog go into the lake from the test process's local Spark (the
``spark`` fixture); the job's driver is the CLI's process (a process holds one Spark at
a time)."""

from __future__ import annotations

import json
import math

import pytest

from bandit_pipeline.online_store import open_store
from bandit_pipeline.policy import LoggedEvent, reference_posteriors
from bandit_pipeline.pool import snapshot_version
from bandit_pipeline.spark_window import posteriors_as_of_spark
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW
from bandit_pipeline.warehouse.spark_ingest import load_catalog_spark
from bandit_pipeline_tests.dagster_ui import wait_until
from bandit_pipeline_tests.helpers import (
    DEFAULTS,
    PARAMS,
    PARTITIONS_START,
    REDIS_URL,
    START,
    WINDOW_ENDS,
    assert_close,
    timed_event,
    traffic,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

APP_NAME = "bandit-pipeline"  # what warehouse/spark.py's start_session names the app
# JVMs that live a minute: compile with C1 only and a single-threaded collector, which
# saves the 2-core machine most of the JIT work of three fresh JVMs; two shuffle
# partitions for the two executor cores.
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
QUICK = {
    "spark.driver.extraJavaOptions": QUICK_JVM,
    "spark.executor.extraJavaOptions": QUICK_JVM,
    "spark.sql.shuffle.partitions": "2",
}


def _stream() -> list[LoggedEvent]:
    """Four windows of traffic, with a late click, a re-sent impression, a producer clock
    ahead, and control and treatment traffic on another surface."""
    events = [e for window in range(4) for e in traffic(window, 0.3, 0.05, 12, 6)]
    odd = [
        ("impression", 1, 0, "home", "r1", "i1", True, None),
        ("click", 3, 20, "home", "r1", "i1", True, None),  # a window late
        ("impression", 17, 1, "home", "r1", "i1", True, None),  # re-sent
        ("impression", 10, 2, "cart", "r2", "i2", True, "treatment"),
        ("purchase", 20, 1, "cart", "r2", "i2", True, "treatment"),
        ("impression", 12, 1, "cart", "r3", "i2", True, "control"),
        ("impression", 40, -8, "home", "r5", "i3", True, None),  # producer clock ahead
        ("click", 50, 1, "home", "r5", "i3", True, None),
    ]
    for n, (kind, minute, lag, surface, request, item, explore, variant) in enumerate(odd):
        events.append(
            timed_event(f"odd{n}", kind, START, minute, lag, surface=surface,
                        request_id=request, item_id=item, explore=explore, variant=variant)
        )  # fmt: skip
    return events


RUN_WINDOWS = 3  # a single-run backfill of three partitions: from scratch, then incremental


def _key(as_of) -> str:
    return (as_of - WINDOW).strftime(PARTITION_FORMAT)


def test_the_dagster_job_runs_its_partitions_on_the_cluster(
    spark_cluster, new_warehouse, redis_prefix, monkeypatch, tmp_path
):
    lake = new_warehouse()
    events = _stream() + traffic(4, 0.2, 0.05, 6, 4)
    lake.append_events(events)
    catalog = tmp_path / "catalog.jsonl"
    items = sorted({e.item_id for e in events})
    catalog.write_text("".join(
        json.dumps({"item_id": item, "category": "c", "price": 10.0, "availability": 1.0,
                    "freshness_index": 1.0}) + "\n"
        for item in items
    ))  # fmt: skip
    load_catalog_spark(lake, str(catalog), DEFAULTS)
    windows = WINDOW_ENDS[:RUN_WINDOWS]
    url = spark_cluster.warehouse_url(lake.location, database=lake.database, conf=QUICK)
    environment = {
        "BANDIT_WAREHOUSE_URL": url,
        "BANDIT_PARTITIONS_START": PARTITIONS_START,
        "BANDIT_HALF_LIFE_DAYS": str(PARAMS.half_life_days),
        "BANDIT_ATTRIBUTION_WINDOW_HOURS": str(PARAMS.attribution_window_hours),
        "BANDIT_ONLINE_STORE_URL": REDIS_URL,
        "BANDIT_ONLINE_STORE_PREFIX": redis_prefix,
        "BANDIT_SURFACES": "home,cart",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # a throw-away instance
    before = {a["id"] for a in spark_cluster.state()["completedapps"]}

    run = spark_cluster.run_driver(
        ["-m", "bandit_pipeline.cli", "job", "run", "--from", _key(windows[0]),
         "--to", _key(windows[-1])],
        timeout=300,
        name="dagster-job",
    )  # fmt: skip
    assert f"ran {RUN_WINDOWS} window(s)" in run.stdout, run.stdout

    # The job's run was one application of the cluster, on both workers.
    def finished() -> list[dict]:
        apps = spark_cluster.state()["completedapps"]
        return [a for a in apps if a["id"] not in before] or None

    (app,) = wait_until(finished, 30, "the job's application to be completed")
    assert (app["name"], app["state"], app["cores"]) == (APP_NAME, "FINISHED", 2)
    logs = spark_cluster.executor_logs(app["id"])
    assert sorted(logs) == ["worker-1", "worker-2"]
    for worker, stderr in logs.items():
        assert any("Finished task" in f.read_text(errors="replace") for f in stderr), worker

    # What the job stored is the definition's, window by window, built incrementally.
    runs = lake.table_rows("bandit_posterior_runs", "as_of")
    assert [r.as_of for r in runs] == [w.replace(tzinfo=None) for w in windows]
    assert [r.mode for r in runs] == ["from_scratch"] + ["incremental"] * (RUN_WINDOWS - 1)
    for as_of in windows:
        assert_close(
            reference_posteriors(events, as_of, PARAMS),
            posteriors_as_of_spark(lake, as_of, PARAMS),
            as_of,
        )

    # The newest window's pool, published: every catalog item (none graduated) with its
    # posterior, in the store and in the lake's record.
    pool = lake.table_rows("bandit_candidate_pool", "surface,item_id")
    assert {r.as_of for r in pool} == {windows[-1].replace(tzinfo=None)}
    store = open_store(REDIS_URL, prefix=redis_prefix)
    try:
        for surface in ("home", "cart"):
            snapshot = store.load("default", surface)
            assert snapshot.version == snapshot_version(windows[-1])
            assert list(snapshot.item_ids) == items
            posteriors = posteriors_as_of_spark(lake, windows[-1], PARAMS)
            for item, alpha in zip(snapshot.item_ids, snapshot.alpha, strict=True):
                want = posteriors.get(("default", surface, item), (PARAMS.prior_alpha,))[0]
                assert math.isclose(alpha, want, rel_tol=1e-9), (surface, item)
    finally:
        store.close()
    published = lake.table_rows("bandit_publications", "surface")
    assert [(r.surface, r.items) for r in published] == [("cart", len(items)), ("home", len(items))]
