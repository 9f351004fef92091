"""What a deployment runs: the Dagster instance file, the workspace, and the commands of
the Dagster processes (``bandit-pipeline dagster ...``).

``dagster.yaml`` keeps the instance in PostgreSQL at ``DAGSTER_PG_URL``;
``workspace.yaml`` loads the code location ``bandit_pipeline``. The processes get the
instance URL composed from the ``DAGSTER_PG_*`` parts, so an operator sets plain
variables and a missing one is named in one line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bandit_pipeline.settings import SettingsError, load_instance_settings

DEPLOY_DIR = Path(__file__).resolve().parent
INSTANCE_FILE = DEPLOY_DIR / "dagster.yaml"
WORKSPACE_FILE = DEPLOY_DIR / "workspace.yaml"

# The executable and leading arguments of each process, from the environment's bin folder.
PROCESSES: dict[str, tuple[str, ...]] = {
    "webserver": ("dagster-webserver",),
    "daemon": ("dagster-daemon", "run"),
    "code-server": ("dagster", "code-server", "start"),
    "dev": ("dagster", "dev"),
}
# Arguments that say where the code is; without one, the product's workspace is used.
_CODE_OPTIONS = ("-w", "--workspace", "-m", "--module-name", "-f", "--python-file",
                 "--grpc-host", "--grpc-port", "--grpc-socket", "--package-name")  # fmt: skip


def prepare_instance(home: Path) -> bool:
    """Put the product's instance file into ``home`` unless it has one; True if it did."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if target.exists():
        return False
    shutil.copyfile(INSTANCE_FILE, target)
    return True


def dagster_command(process: str, args: Sequence[str]) -> list[str]:
    """The command line of a Dagster process of this deployment."""
    program, *leading = PROCESSES[process]
    if process == "code-server" and list(args[:1]) == ["start"]:
        args = args[1:]  # Dagster's own spelling, which Dagster's Helm chart runs
    executable = Path(sys.executable).parent / program
    command = [str(executable if executable.exists() else program), *leading]
    code_given = any(arg.split("=")[0] in _CODE_OPTIONS for arg in args)
    if not code_given and process != "code-server":
        command += ["-w", str(WORKSPACE_FILE)]
    if not code_given and process == "code-server":
        command += ["-m", "bandit_pipeline.definitions", "-a", "defs",
                    "--location-name", "bandit_pipeline"]  # fmt: skip
    return [*command, *args]


def dagster_environment(
    process: str, environ: Mapping[str, str], announce: Callable[[str], object] = print
) -> dict[str, str]:
    """The environment of a Dagster process (``announce`` hears what was prepared).

    The deployment's processes need ``DAGSTER_HOME``; one without an instance file gets the
    product's (PostgreSQL). ``dev`` runs on whatever instance ``DAGSTER_HOME`` holds, or on
    Dagster's temporary one. An instance file that stores in PostgreSQL at
    ``DAGSTER_PG_URL`` (the product's does) gets that URL composed from the parts.
    """
    env = dict(environ)
    home = environ.get("DAGSTER_HOME")
    if process != "dev":
        if not home:
            raise SettingsError(
                "set DAGSTER_HOME to the folder of the Dagster instance "
                "(the product's dagster.yaml is put there when it has none)"
            )
        if prepare_instance(Path(home)):
            announce(f"wrote the PostgreSQL instance file {Path(home) / 'dagster.yaml'}")
    instance = Path(home) / "dagster.yaml" if home else None
    if instance and instance.exists() and "DAGSTER_PG_URL" in instance.read_text("utf-8"):
        env["DAGSTER_PG_URL"] = load_instance_settings().storage_url()
    return env


def exec_dagster(
    process: str, args: Sequence[str], announce: Callable[[str], object] = print
) -> None:
    """Replace this process by the Dagster process (same process id, same signals)."""
    env = dagster_environment(process, os.environ, announce)
    command = dagster_command(process, args)
    os.execvpe(command[0], command, env)
