"""A Spark standalone cluster on this machine, for tests and benchmarks: one master and N
workers on loopback, started from the pyspark install (``SPARK_HOME`` is the pyspark
package, ``bin/spark-class`` its launcher), each process in a process group of its own
with its log in the cluster's folder, stopped by process id on exit.

A SparkContext is one per process, and a test process may already hold a local one
(``test_spark.py``), so the driver of a cluster job runs in a process of its own:
:meth:`StandaloneCluster.run_driver` starts one with :meth:`StandaloneCluster.driver_env`.

    with standalone_cluster(tmp_path, workers=2) as cluster:
        url = cluster.warehouse_url(tmp_path / "lake")   # spark://127.0.0.1:PORT?warehouse=...
        cluster.run_driver(["-m", "some.module", url])

The tests use it as the session fixture ``spark_cluster`` (``conftest.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bandit_pipeline_tests.dagster_ui import Process, wait_until
from bandit_pipeline_tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# What the master and worker JVMs (not the executors) are given: they only keep state
# and pass messages, so a small heap, no optimising compiler and a serial collector,
# which start them faster and leave the cores to the executors.
DAEMON_MEMORY = "256m"
DAEMON_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# The master's REST submission server listens on 6066 by default, a fixed port two
# clusters on one machine would both want; nothing here submits through it.
MASTER_OPTS = "-Dspark.master.rest.enabled=false"


def spark_home() -> Path:
    """The pyspark package folder, which holds ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass(frozen=True)
class StandaloneCluster:
    """A running cluster: its master's URL (``spark://127.0.0.1:PORT``) and web UI, the
    process ids, and the folder of its logs and work directories."""

    master_url: str
    web_ui_url: str
    master_pid: int
    worker_pids: tuple[int, ...]
    log_dir: Path
    work_dir: Path
    cores: int
    memory: str

    @property
    def master_address(self) -> str:
        """``127.0.0.1:PORT``, what a ``spark://`` warehouse URL names as its master."""
        return self.master_url.removeprefix("spark://")

    @property
    def total_cores(self) -> int:
        return self.cores * len(self.worker_pids)

    def state(self) -> dict[str, Any]:
        """The master's own account (its web UI's ``/json/``): workers, apps, cores."""
        with urllib.request.urlopen(f"{self.web_ui_url}/json/", timeout=5) as answer:
            return json.load(answer)

    def driver_conf(self, executor_memory: str | None = None) -> dict[str, str]:
        """Session configuration of a driver on this machine: reachable on loopback by
        the executors, one executor per worker with all its cores and memory."""
        return {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.executor.memory": executor_memory or self.memory,
            "spark.executor.cores": str(self.cores),
            "spark.cores.max": str(self.total_cores),
        }

    def warehouse_url(
        self, lake: Path, database: str | None = None, conf: Mapping[str, str] | None = None
    ) -> str:
        """The ``spark://`` URL of a warehouse in ``lake`` on this cluster
        (``SparkWarehouse.open``), with :meth:`driver_conf` and ``conf`` over it."""
        query = {"warehouse": str(lake)}
        if database:
            query["database"] = database
        query.update({**self.driver_conf(), **(conf or {})})
        return f"spark://{self.master_address}?{urlencode(query)}"

    def driver_env(self) -> dict[str, str]:
        """The environment of a driver process: this repository importable, Spark on
        loopback, the executors' Python (if they need one) this interpreter."""
        path = os.environ.get("PYTHONPATH")
        return {
            **os.environ,
            "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }

    def run_driver(
        self, args: Sequence[str], timeout: float = 300, name: str = "driver"
    ) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` as a driver process of its own (its own process group, killed
        with it on a timeout); its output goes to ``log_dir/NAME.log``. A failure or a
        timeout raises with the tail of that log and of the cluster's logs."""
        log = self.log_dir / f"{name}.log"
        process = Process(name, [sys.executable, *args], self.driver_env(), log, REPO)
        process.start()
        try:
            code = process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            process.stop(timeout=5)
            raise RuntimeError(
                f"the Spark driver ran over {timeout:.0f} s\n{process.tail()}\n{self.log_tails()}"
            ) from None
        process.stop(timeout=5)  # anything left in its group
        output = log.read_text("utf-8", errors="replace")
        if code != 0:
            raise RuntimeError(
                f"the Spark driver exited with {code}\n--- last lines of {log}:\n"
                + "\n".join(output.splitlines()[-60:])
                + f"\n{self.log_tails()}"
            )
        return subprocess.CompletedProcess(args, code, output, "")

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of the master's and workers' logs (for error messages)."""
        return _tails(sorted(self.log_dir.glob("spark-*.log")), lines)

    def executor_logs(self, app_id: str) -> dict[str, list[Path]]:
        """Per worker (``worker-N``), the stderr files of the executors it ran for the
        application ``app_id`` (``sc.applicationId``): ``work/worker-N/APP/EXECUTOR/stderr``."""
        return {
            folder.name: sorted(folder.glob(f"{app_id}/*/stderr"))
            for folder in sorted(self.work_dir.glob("worker-*"))
        }


def _tails(logs: Sequence[Path], lines: int) -> str:
    parts = []
    for log in logs:
        text = log.read_text("utf-8", errors="replace") if log.exists() else ""
        parts.append(f"--- last lines of {log}:\n" + "\n".join(text.splitlines()[-lines:]))
    return "\n".join(parts)


@contextlib.contextmanager
def standalone_cluster(
    tmp_dir: Path,
    workers: int = 2,
    cores: int = 1,
    memory: str = "512m",
    *,
    timeout: float = 90.0,
) -> Iterator[StandaloneCluster]:
    """A master and ``workers`` workers (``cores`` cores and ``memory`` for executors
    each) on free loopback ports, running until the block ends; it returns once the
    master counts every worker ALIVE. Logs (``log/spark-*.log``), work directories
    (``work/worker-N``) and Spark's scratch space (``local/``) are kept under
    ``tmp_dir``. Every process is stopped on exit, also when starting failed: SIGTERM,
    then SIGKILL to its process group (which holds the executors a worker started)."""
    home = spark_home()
    spark_class = home / "bin" / "spark-class"
    if not os.access(spark_class, os.X_OK):
        raise RuntimeError(f"{spark_class} is missing or not executable")
    tmp_dir = Path(tmp_dir).resolve()
    log_dir, work_dir, conf_dir, local_dir = (
        tmp_dir / name for name in ("log", "work", "conf", "local")
    )
    for folder in (log_dir, work_dir, conf_dir, local_dir):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        # An empty configuration folder: no spark-env.sh or spark-defaults.conf of the
        # machine's applies.
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(local_dir),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_DAEMON_JAVA_OPTS": DAEMON_OPTS,
        "SPARK_MASTER_OPTS": MASTER_OPTS,
        "PYSPARK_PYTHON": sys.executable,
    }
    ports = _distinct_ports(2 + 2 * workers)
    master_port, master_ui = ports[0], ports[1]
    master_url = f"spark://127.0.0.1:{master_port}"
    web_ui_url = f"http://127.0.0.1:{master_ui}"
    launch = [str(spark_class)]
    master = [*launch, MASTER_CLASS, "--host", "127.0.0.1", "--port", str(master_port),
              "--webui-port", str(master_ui)]  # fmt: skip
    processes = [Process("spark-master", master, env, log_dir / "spark-master.log", tmp_dir)]
    for n in range(1, workers + 1):
        worker_dir = work_dir / f"worker-{n}"
        worker_dir.mkdir(exist_ok=True)
        port, ui = ports[2 * n], ports[2 * n + 1]
        worker = [*launch, WORKER_CLASS, "--host", "127.0.0.1", "--port", str(port),
                  "--webui-port", str(ui), "--cores", str(cores), "--memory", memory,
                  "--work-dir", str(worker_dir), master_url]  # fmt: skip
        worker_env = {**env, "SPARK_WORKER_DIR": str(worker_dir)}
        log = log_dir / f"spark-worker-{n}.log"
        processes.append(Process(f"spark-worker-{n}", worker, worker_env, log, tmp_dir))
    try:
        for process in processes:
            process.start()
        cluster = StandaloneCluster(
            master_url, web_ui_url, processes[0].pid,
            tuple(p.pid for p in processes[1:]), log_dir, work_dir, cores, memory,
        )  # fmt: skip

        def alive_workers() -> bool:
            for process in processes:
                if not process.running():
                    raise RuntimeError(
                        f"{process.name} exited with {process.popen.returncode} before the"
                        f" cluster was up\n{cluster.log_tails()}"
                    )
            try:
                state = cluster.state()
            except (OSError, ValueError, http.client.HTTPException):
                return False  # the master's web UI is not up (or not answering JSON) yet
            alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
            return len(alive) >= workers

        try:
            wait_until(alive_workers, timeout, f"{workers} ALIVE workers at {web_ui_url}/json/")
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{cluster.log_tails()}") from None
        yield cluster
    finally:
        # Workers first (and the executors in their groups), the master last.
        for process in reversed(processes):
            process.stop(timeout=5)


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
