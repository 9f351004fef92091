"""What the benchmark scripts share: argument types, progress lines, the machine, and
scratch databases that are created for one run and always dropped."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PEAK_RSS = Path(__file__).resolve().parents[1] / "scripts" / "peak_rss.py"
COMMAND = Path(sys.executable).parent / "bandit-pipeline"


def positive_int(value: str) -> int:
    number = int(value.replace("_", ""))
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_postgres_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BANDIT_TEST_POSTGRES_URL", DEFAULT_URL),
        help="server to benchmark on; scratch databases are created there and dropped",
    )


def measured_run(args: list[str], env: dict[str, str], folder: Path) -> tuple[int, str, float]:
    """``bandit-pipeline ARGS`` in a process of its own: its peak RSS in KiB (through
    scripts/peak_rss.py, so this process's memory stays out of it), its standard output
    and its wall time in seconds. A failure raises with the command's own error."""
    report = folder / "peak_rss"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(PEAK_RSS), str(report), str(COMMAND), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"bandit-pipeline {args[0]} exited with {done.returncode}: {done.stderr.strip()}"
        )
    return int(report.read_text()), done.stdout.strip(), seconds


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def machine_description() -> str:
    memory = "? GiB"
    model = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {memory} RAM{model}"


def idle_description() -> str:
    """How an idle core of this machine waits, which sets what waking one costs: a
    round trip to a server that went idle on another core pays that core's wake-up.
    On a virtual machine whose idle cores halt at once (haltpoll with a halt-poll time
    of 0), the wake goes through the hypervisor (docs/serving.md, "Speed")."""
    try:
        driver = Path("/sys/devices/system/cpu/cpuidle/current_driver").read_text().strip()
    except OSError:
        return "idle states unknown"
    if driver != "haltpoll":
        return f"idle: {driver}"
    try:
        poll_ns = int(Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns").read_text())
    except (OSError, ValueError):
        return "idle: haltpoll"
    return f"idle: haltpoll, halt-poll {poll_ns // 1000} us"


class Scratch:
    """A migrated scratch database: created on enter, dropped WITH (FORCE) on exit.

    ``dsn`` is for psycopg, ``url`` for SQLAlchemy, ``engine`` is open inside the block.
    """

    def __init__(self, server: Any, admin: psycopg.Connection) -> None:
        self.admin = admin
        self.name = f"bandit_bench_{secrets.token_hex(4)}"
        self.dsn = server.set(drivername="postgresql", database=self.name).render_as_string(
            hide_password=False
        )
        self.url = server.set(drivername="postgresql+psycopg", database=self.name).render_as_string(
            hide_password=False
        )
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the scratch database is only open inside its with-block")
        return self._engine

    def __enter__(self) -> Scratch:
        progress(f"creating scratch database {self.name}")
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self._engine = make_engine(self.url)
        upgrade(self._engine)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        )
        progress(f"dropped scratch database {self.name}")
