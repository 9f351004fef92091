"""The deployment files: the Dockerfile's paths and commands, the instance file, the
wrapper that starts Dagster's processes. (No Docker engine runs the image here.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
import yaml

from bandit_pipeline.cli import main
from bandit_pipeline.deploy import (
    INSTANCE_FILE,
    PROCESSES,
    WORKSPACE_FILE,
    dagster_command,
    dagster_environment,
)
from bandit_pipeline.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def _locked(name: str) -> bool:
    return re.search(rf"^{re.escape(name)}==", RUNTIME_LOCK.read_text(), re.M) is not None


def test_every_path_the_image_copies_exists():
    copies = [args.split() for kind, args in _instructions() if kind == "COPY"]
    sources = [part for parts in copies if not parts[0].startswith("--") for part in parts[:-1]]
    assert "requirements/runtime.lock" in sources
    assert "sql" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"


def test_the_image_installs_the_runtime_lock_on_its_python():
    bases = [args for kind, args in _instructions() if kind == "FROM"]
    assert bases
    assert all(b.startswith("python:3.11-slim") for b in bases)
    header = RUNTIME_LOCK.read_text().splitlines()[1]
    assert "--python-version 3.11" in header
    assert "--generate-hashes" in header
    runs = " ".join(" ".join(args.split()) for kind, args in _instructions() if kind == "RUN")
    assert "--require-hashes -r requirements/runtime.lock" in runs
    assert "--no-deps ." in runs  # the product itself, its dependencies all from the lock
    assert any(kind == "USER" and args != "root" for kind, args in _instructions())


def test_every_command_the_image_documents_exists():
    documented = re.findall(r"^#.*?(bandit-pipeline [^\n]+)$", DOCKERFILE, re.M)
    cmd = next(args for kind, args in _instructions() if kind == "CMD")
    documented.append("bandit-pipeline " + " ".join(yaml.safe_load(cmd)))
    assert len(documented) == 5
    for line in documented:
        words = shlex.split(line)[1:]
        command = main.commands[words[0]]
        if words[0] == "dagster":  # the process, then its own options
            assert words[1] in command.params[0].type.choices
            program = PROCESSES[words[1]][0]
            (script,) = entry_points(group="console_scripts", name=program)
            assert _locked(script.dist.name), f"{program} comes from {script.dist.name}, unlocked"
        else:
            options = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
            assert {w for w in words[1:] if w.startswith("--")} <= options, line
    entry = next(args for kind, args in _instructions() if kind == "ENTRYPOINT")
    assert yaml.safe_load(entry) == ["bandit-pipeline"]


def test_the_instance_file_reads_its_database_from_the_environment():
    instance = yaml.safe_load(INSTANCE_FILE.read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert instance["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    assert instance["run_retries"]["enabled"] is True
    assert instance["run_monitoring"]["enabled"] is True  # a dead run frees the pool
    workspace = yaml.safe_load(WORKSPACE_FILE.read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == "bandit_pipeline"


def test_the_wrapper_composes_the_instance_url_from_the_parts(tmp_path, monkeypatch):
    for name in ("URL", "PASSWORD", "PORT", "SSLMODE"):
        monkeypatch.delenv(f"DAGSTER_PG_{name}", raising=False)
    parts = {"DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_HOST": "db.internal",
             "DAGSTER_PG_USER": "dagster", "DAGSTER_PG_DB": "dagster"}  # fmt: skip
    for name, value in parts.items():
        monkeypatch.setenv(name, value)
    heard: list[str] = []
    env = dagster_environment("daemon", parts, heard.append)
    # No password (trust or peer auth) and the default port work.
    assert env["DAGSTER_PG_URL"] == "postgresql+psycopg2://dagster@db.internal:5432/dagster"
    assert (tmp_path / "dagster.yaml").read_text() == INSTANCE_FILE.read_text()
    assert heard == [f"wrote the PostgreSQL instance file {tmp_path / 'dagster.yaml'}"]

    monkeypatch.setenv("DAGSTER_PG_PORT", "6543")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "p@ss/word")
    monkeypatch.setenv("DAGSTER_PG_SSLMODE", "require")
    heard.clear()
    env = dagster_environment("webserver", parts, heard.append)
    assert env["DAGSTER_PG_URL"] == (
        "postgresql+psycopg2://dagster:p%40ss%2Fword@db.internal:6543/dagster?sslmode=require"
    )
    assert heard == []  # the instance file is there already


def test_the_wrapper_names_what_is_missing(tmp_path, monkeypatch):
    for name in ("URL", "HOST", "USER", "DB"):
        monkeypatch.delenv(f"DAGSTER_PG_{name}", raising=False)
    with pytest.raises(SettingsError, match="DAGSTER_HOME"):
        dagster_environment("webserver", {})
    with pytest.raises(SettingsError, match="DAGSTER_PG_HOST, DAGSTER_PG_USER, DAGSTER_PG_DB"):
        dagster_environment("daemon", {"DAGSTER_HOME": str(tmp_path)}, print)
    monkeypatch.setenv("DAGSTER_PG_PORT", "not-a-port")
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u@h/d")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bandit-pipeline"), "dagster", "daemon"],
        env={**dict(__import__("os").environ), "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid configuration:",
        "  DAGSTER_PG_PORT: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_the_wrapper_runs_the_product_workspace_unless_told_otherwise():
    webserver = dagster_command("webserver", ["--port", "3001"])
    assert webserver[1:] == ["-w", str(WORKSPACE_FILE), "--port", "3001"]
    daemon = dagster_command("daemon", ["-w", "/etc/dagster/workspace.yaml"])
    assert daemon[1:] == ["run", "-w", "/etc/dagster/workspace.yaml"]
    server = dagster_command("code-server", ["--port", "4000"])
    code = ["-m", "bandit_pipeline.definitions", "-a", "defs", "--location-name", "bandit_pipeline"]
    assert server[1:] == ["code-server", "start", *code, "--port", "4000"]


def test_the_readme_runs_only_real_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running it for real", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#")[0].rstrip(" &") for line in section.splitlines()
             if line.startswith(".venv/bin/bandit-pipeline ")]  # fmt: skip
    assert len(lines) >= 8
    for line in lines:
        words = shlex.split(line)[1:]
        command = main.commands[words[0]]
        while isinstance(command, click.Group):
            words = words[1:]
            command = command.commands[words[0]]
        if command.name == "dagster":
            assert words[1] in command.params[0].type.choices
            continue
        options = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
        assert {w for w in words if w.startswith("--")} <= options, line
