"""A normal install: the wheel, in a fresh virtual environment outside the checkout, run
from an unrelated folder with no environment variable pointing at the sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bandit_pipeline.simulate import generate_catalog, generate_events, write_jsonl
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW
from bandit_pipeline.warehouse.migrate import head_revision

ROOT = Path(__file__).resolve().parents[1]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)])
    (built,) = out.glob("bandit_pipeline-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Path:
    """The bin folder of a new virtual environment holding the runtime lock and the wheel.

    ``--no-compile`` skips byte-compiling every installed module up front (about 40% of
    the install's time); Python compiles the modules the command imports as it runs."""
    venv = tmp_path_factory.mktemp("venv")
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    install = [*pip, "install", "--quiet", "--no-compile", "--no-deps"]
    lock = ROOT / "requirements" / "runtime.lock"
    _run([*install, "--require-hashes", "-r", str(lock)])
    _run([*install, str(wheel)])
    _run([*pip, "check"])
    return venv / "bin"


def test_the_wheel_carries_every_sql_file_and_the_deployment_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sql_files = {f"bandit_pipeline/sql/{p.relative_to(ROOT / 'sql')}" for p in
                 (ROOT / "sql").rglob("*.sql")}  # fmt: skip
    assert sql_files
    assert sql_files <= names
    migrations = {f"bandit_pipeline/{p.relative_to(ROOT / 'bandit_pipeline')}" for p in
                  (ROOT / "bandit_pipeline/warehouse/migrations").rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts}  # fmt: skip
    assert migrations <= names
    expected = ("py.typed", "deploy/dagster.yaml", "deploy/workspace.yaml")
    assert {f"bandit_pipeline/{name}" for name in expected} <= names


def test_the_installed_command_migrates_runs_a_window_and_serves(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    now = datetime.now(UTC)
    window_start = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) - WINDOW
    key = window_start.strftime(PARTITION_FORMAT)
    catalog = generate_catalog(40, now=now)
    write_jsonl(elsewhere / "catalog.jsonl", catalog)
    events = generate_events(
        [row["item_id"] for row in catalog],
        400,
        start=window_start,
        end=window_start + WINDOW,
        surfaces=("home",),
        explore_share=0.5,
    )
    write_jsonl(elsewhere / "events.jsonl", events)
    env = {
        "PATH": f"{installed}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BANDIT_WAREHOUSE_URL": f"sqlite:///{elsewhere}/warehouse.db",
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{elsewhere}/online_store.db",
        "BANDIT_PARTITIONS_START": key,
        "BANDIT_SURFACES": "home",
    }
    cli = str(installed / "bandit-pipeline")

    def run(*args: str) -> str:
        return _run([cli, *args], cwd=elsewhere, env=env).stdout

    locate = "import bandit_pipeline; print(bandit_pipeline.__file__)"
    where = _run([str(installed / "python"), "-c", locate], cwd=elsewhere, env=env).stdout
    assert where.startswith(str(installed.parent)), where
    assert f"upgraded from empty to {head_revision()}" in run("db", "upgrade")
    assert "upserted=40" in run("catalog", "load", "catalog.jsonl")
    assert "rejected=0" in run("ingest", "--historical", "events.jsonl")
    assert run("job", "run", "--partition", key).strip() == f"ran 1 window(s) {key} .. {key}"
    run("flags", "set", "bandit_exploration_enabled", "true")
    ranked = [f"ranked-{i}" for i in range(6)]
    decision = json.loads(
        run("decide", "--surface", "home", "--user", "u1", "--items", ",".join(ranked))
    )
    explored = [item for item in decision["items"] if item["explore"]]
    assert decision["trace"]["reason"] == "explored", decision["trace"]
    assert len(decision["items"]) == len(ranked)
    assert len(explored) == 1
    assert explored[0]["item_id"] in {row["item_id"] for row in catalog}
    assert decision["trace"]["snapshot_version"] == (window_start + WINDOW).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    assert not any(name in os.listdir(elsewhere) for name in ("sql", "bandit_pipeline"))
