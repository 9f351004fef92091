"""The code location whose 15-minute job runs its steps on Celery workers (dagster-celery,
the ``celery`` extra; docs/deployment.md, "Runs off the daemon's machine").

The definitions are the product's (``bandit_pipeline.definitions``), with one change: the
job ``bandit_posterior_update``, and the schedule that starts it, use Celery's executor,
configured from ``celery.yaml``. A deployment chooses it by the code location it loads:
``workspace-celery.yaml`` for the webserver and the daemon, or this module for a code
server. The run still starts where the daemon launches it; each step is sent through the
broker to a worker (``python -m bandit_pipeline.deploy.celery_worker``), which loads this
module and reads the BANDIT_* settings of its own environment.

Nothing is read at import, as in ``bandit_pipeline.definitions``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml
from dagster_celery import celery_executor
from dagster_shared.record import copy

from bandit_pipeline.definitions import build_definitions
from bandit_pipeline.defs.schedule import posterior_update_job
from bandit_pipeline.settings import get_settings

DEPLOY_DIR = Path(__file__).resolve().parent
CELERY_FILE = DEPLOY_DIR / "celery.yaml"
CELERY_WORKSPACE_FILE = DEPLOY_DIR / "workspace-celery.yaml"


def celery_executor_config(path: Path = CELERY_FILE) -> dict:
    """The executor's config in ``path``: the block ``execution: config:`` that the workers
    read too (broker and backend as references to their variables)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["execution"]["config"]


def on_celery(definitions: dg.Definitions, config: dict | None = None) -> dg.Definitions:
    """``definitions`` with the 15-minute job and its schedule on Celery's executor,
    configured with ``config`` (default: ``celery.yaml``)."""
    executor = celery_executor.configured(config or celery_executor_config(), name="celery")
    job = copy(posterior_update_job, executor_def=executor)
    jobs = [job if getattr(j, "name", None) == job.name else j for j in definitions.jobs or []]
    schedules = [
        s.with_updated_job(job) if s.job_name == job.name else s
        for s in definitions.schedules or []
    ]
    return copy(definitions, jobs=jobs, schedules=schedules)


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, from the BANDIT_* environment, with the job's steps on Celery."""
    return on_celery(build_definitions(get_settings()))
