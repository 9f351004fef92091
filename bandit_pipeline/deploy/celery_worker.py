"""A Celery worker for the steps of the 15-minute job (the ``celery`` extra;
docs/deployment.md, "Runs off the daemon's machine").

``python -m bandit_pipeline.deploy.celery_worker [CELERY WORKER OPTIONS]`` replaces itself
by Celery's worker (same process id, same signals: SIGTERM is Celery's warm shutdown)
listening on the queue of dagster-celery, with the broker and the result backend of
``celery.yaml``. What ``dagster-celery worker start -y celery.yaml`` would do, without the
parent process it keeps around its worker. Like ``bandit-pipeline dagster``, it needs
``DAGSTER_HOME`` (the product's PostgreSQL instance file is put there when it has none) and
the ``DAGSTER_PG_*`` parts, and the BANDIT_* settings, which the steps it runs read here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bandit_pipeline.deploy import dagster_environment
from bandit_pipeline.deploy.celery_location import CELERY_FILE, celery_executor_config
from bandit_pipeline.settings import SettingsError, load_settings

APP = "dagster_celery.app"  # dagster-celery's app: its tasks, its queue "dagster"


def worker_command(args: Sequence[str]) -> list[str]:
    """The command line of the worker (``args`` go to Celery's worker unchanged; a ``-n``
    among them replaces the unique name it gets)."""
    from dagster_celery.cli import get_worker_name

    executable = Path(sys.executable).parent / "celery"
    return [str(executable if executable.exists() else "celery"), "-A", APP, "worker",
            "--prefetch-multiplier=1", "-n", get_worker_name(None), *args]  # fmt: skip


def worker_environment(environ: dict[str, str]) -> dict[str, str]:
    """The worker's environment: the instance prepared as for ``bandit-pipeline dagster``,
    and Celery's settings from ``celery.yaml`` as a module on its ``PYTHONPATH`` (written
    under ``DAGSTER_HOME``, as dagster-celery does)."""
    from dagster_celery.cli import get_config_dir

    references = [v["env"] for v in celery_executor_config().values() if isinstance(v, dict)]
    missing = [name for name in references if not environ.get(name)]
    if missing:
        raise SettingsError(
            f"the Celery worker needs {', '.join(missing)} (the broker and the result "
            f"backend of {CELERY_FILE.name})"
        )
    env = dagster_environment("celery-worker", environ, print)
    os.environ.update(env)  # dagster-celery reads the instance of this process's environment
    config_dir = get_config_dir(str(CELERY_FILE))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (config_dir, env.get("PYTHONPATH")) if p)
    return env


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        load_settings().first_partition()  # fail on bad BANDIT_* settings here, in one line
        env = worker_environment(dict(os.environ))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    command = worker_command(args)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
