"""The window job on a real Spark standalone cluster (a master and two workers on
loopback, ``spark_cluster.py``): the posteriors its executors compute are the reference's.

pyspark allows one SparkContext per process and the Spark tests keep a local one in the
test process (the ``spark`` fixture), so the job's driver runs in a process of its own:
this module run as ``python -m bandit_pipeline_tests.test_spark_cluster JOB OUT``
(:func:`drive`), which reads the job (warehouse URL, events, windows) from a pickle and
writes what it found as JSON."""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
from datetime import datetime
from pathlib import Path

from bandit_pipeline.policy import LoggedEvent, reference_posteriors
from bandit_pipeline_tests.dagster_ui import wait_until
from bandit_pipeline_tests.helpers import (
    FUTURE_SCAN,
    PARAMS,
    START,
    WINDOW_ENDS,
    timed_event,
    traffic,
)

APP_NAME = "bandit-pipeline"  # what warehouse/spark.py's start_session names the app
# From scratch, then incremental (the events of the later windows must not count).
WINDOWS = (0, 1)
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


def test_the_window_job_runs_on_the_clusters_executors(spark_cluster, tmp_path):
    events = _stream()
    windows = [WINDOW_ENDS[k] for k in WINDOWS]
    job, out = tmp_path / "job.pickle", tmp_path / "out.json"
    job.write_bytes(
        pickle.dumps(
            {
                "url": spark_cluster.warehouse_url(tmp_path / "lake", conf=QUICK),
                "events": events,
                "windows": windows,
                "params": PARAMS,
                "future_scan": FUTURE_SCAN,
            }
        )
    )
    spark_cluster.run_driver(
        ["-m", "bandit_pipeline_tests.test_spark_cluster", str(job), str(out)], timeout=240
    )
    found = json.loads(out.read_text())

    # The driver was the cluster's: one executor on each worker.
    assert found["master"] == spark_cluster.master_url
    assert found["executors"] == 2, found
    assert [w["mode"] for w in found["windows"]] == ["from_scratch", "incremental"]
    for as_of, window in zip(windows, found["windows"], strict=True):
        want = reference_posteriors(events, as_of, PARAMS)
        have = {(ns, surface, item): (a, b) for ns, surface, item, a, b in window["posteriors"]}
        assert want.keys() == have.keys(), as_of
        for key, values in want.items():
            for w, h in zip(values, have[key], strict=True):
                assert math.isclose(w, h, rel_tol=1e-9, abs_tol=1e-12), (as_of, key, values, have)

    # The master ran the application on both workers, and each worker's executor ran
    # tasks of it (its log says so).
    def finished() -> dict | None:
        apps = spark_cluster.state()["completedapps"]
        return next((a for a in apps if a["id"] == found["app_id"]), None)

    app = wait_until(finished, 30, f"application {found['app_id']} to be completed")
    assert (app["name"], app["state"], app["cores"]) == (APP_NAME, "FINISHED", 2)
    logs = spark_cluster.executor_logs(found["app_id"])
    assert sorted(logs) == ["worker-1", "worker-2"]
    for worker, stderr in logs.items():
        assert len(stderr) == 1, (worker, stderr)
        assert "Finished task" in stderr[0].read_text(errors="replace"), (worker, stderr)


def drive(job: Path, out: Path) -> None:
    """The driver process: open the warehouse on the cluster, append the events,
    materialise the windows and write what the executors computed."""
    from bandit_pipeline.spark_window import materialise_window_spark, posteriors_as_of_spark
    from bandit_pipeline.warehouse.spark import SparkWarehouse

    started = time.perf_counter()

    def say(what: str) -> None:  # into the driver's log, for a slow or failed run
        print(f"{time.perf_counter() - started:6.1f} s  {what}", flush=True)

    spec = pickle.loads(job.read_bytes())
    warehouse = SparkWarehouse.open(spec["url"])
    context = warehouse.spark.sparkContext
    say(f"session on {context.master}, application {context.applicationId}")
    try:
        warehouse.append_events(spec["events"])
        say(f"appended {len(spec['events'])} events")
        windows = []
        as_of: datetime
        for as_of in spec["windows"]:
            result = materialise_window_spark(
                warehouse, as_of, spec["params"], future_scan=spec["future_scan"]
            )
            posteriors = posteriors_as_of_spark(warehouse, as_of, spec["params"])
            say(f"window {as_of:%H:%M} {result.mode}: {len(posteriors)} posteriors")
            windows.append(
                {
                    "as_of": as_of.isoformat(),
                    "mode": result.mode,
                    "posteriors": [[*key, *values] for key, values in sorted(posteriors.items())],
                }
            )
        # The block managers the driver knows: the executors and itself.
        executors = context._jsc.sc().getExecutorMemoryStatus().size() - 1
        out.write_text(
            json.dumps(
                {
                    "master": context.master,
                    "app_id": context.applicationId,
                    "executors": executors,
                    "windows": windows,
                }
            )
        )
    finally:
        warehouse.spark.stop()


if __name__ == "__main__":
    drive(Path(sys.argv[1]), Path(sys.argv[2]))
