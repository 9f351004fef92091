"""The 15-minute job run in this process, without a daemon: for the demo, for
``bandit-pipeline job run`` and for an operator's one-off runs.

Windows run in order, several per Dagster run (as a single-run backfill does), on the
instance given (the runs then show in its UI) or else on a throw-away one. Dagster's own
event log goes to that instance; the console hears only a failed run's cause, in one line
(``JobFailed``), not Dagster's log of it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING

from bandit_pipeline.settings import Settings
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW

if TYPE_CHECKING:
    import dagster as dg

JOB_NAME = "bandit_posterior_update"
WINDOWS_PER_RUN = 24  # six hours of windows in one run: few runs, and progress to show
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class JobFailed(RuntimeError):
    """A run of the job failed; the message names the windows and the failed steps."""


def partition_keys(first_key: str, last_key: str) -> list[str]:
    """Every 15-minute partition key from ``first_key`` to ``last_key``, both included."""
    first = datetime.strptime(first_key, PARTITION_FORMAT)
    last = datetime.strptime(last_key, PARTITION_FORMAT)
    if last < first:
        raise ValueError(f"the range ends ({last_key}) before it starts ({first_key})")
    keys = []
    while first <= last:
        keys.append(first.strftime(PARTITION_FORMAT))
        first += WINDOW
    return keys


def run_partitions(
    settings: Settings,
    first_key: str,
    last_key: str,
    *,
    instance: dg.DagsterInstance | None = None,
    on_progress: Callable[[int], object] = lambda windows: None,
) -> int:
    """Run the job over the windows from ``first_key`` to ``last_key`` on ``instance``
    (default: a throw-away one); returns how many ran. ``on_progress`` hears the number of
    windows each finished run covered."""
    import dagster as dg

    from bandit_pipeline.definitions import build_definitions

    keys = partition_keys(first_key, last_key)
    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    scope = nullcontext(instance) if instance else dg.DagsterInstance.ephemeral()
    with scope as active:
        for start in range(0, len(keys), WINDOWS_PER_RUN):
            chunk = keys[start : start + WINDOWS_PER_RUN]
            tags = {
                "dagster/asset_partition_range_start": chunk[0],
                "dagster/asset_partition_range_end": chunk[-1],
            }
            _execute(job, active, f"windows {chunk[0]} .. {chunk[-1]}", tags=tags)
            on_progress(len(chunk))
    return len(keys)


class WindowRunner:
    """Runs the job one window at a time on one instance, then the alert and kill-switch
    sensors as the daemon would after it: the closed loop of the dry run, where each
    window's publish feeds the next window's serving. Definitions are built once."""

    SENSORS = ("explore_ctr_alert", "exploration_killswitch")

    def __init__(self, settings: Settings, instance: dg.DagsterInstance) -> None:
        from bandit_pipeline.definitions import build_definitions

        self.definitions = build_definitions(settings)
        self.job = self.definitions.resolve_job_def(JOB_NAME)
        # The same assets without the blocking quality checks, whose fixed cost (about
        # 0.6 s a run) dominates a small window: the dry run checks every few windows.
        self.job_without_checks = self.job.get_subset(
            asset_selection=set(self.job.asset_layer.selected_asset_keys),
            asset_check_selection=set(),
        )
        self.instance = instance
        self.cursors: dict[str, str | None] = dict.fromkeys(self.SENSORS)

    def run(self, key: str, *, checks: bool = True) -> None:
        """Run the job on the window ``key`` (without the quality checks when ``checks``
        is false); raise :class:`JobFailed` with its cause."""
        job = self.job if checks else self.job_without_checks
        _execute(job, self.instance, f"window {key}", partition_key=key)

    def evaluate_sensors(self) -> None:
        """One tick of each safeguard sensor, each resuming from its own cursor."""
        import dagster as dg

        for name in self.SENSORS:
            sensor = self.definitions.resolve_sensor_def(name)
            with dg.build_sensor_context(
                instance=self.instance,
                cursor=self.cursors[name],
                resources=self.definitions.resources,
            ) as context:
                result = sensor(context)
            if isinstance(result, dg.SensorResult) and result.cursor is not None:
                self.cursors[name] = result.cursor


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, what: str, **run: object):
    """One run of ``job`` in this process, quiet on the console; raise :class:`JobFailed`
    naming ``what`` it ran and each failed step's cause."""
    from bandit_pipeline.defs.failures import step_failure_line

    result = job.execute_in_process(
        instance=instance, run_config=QUIET_CONSOLE, raise_on_error=False, **run
    )
    if not result.success:
        causes = [step_failure_line(e) for e in result.all_events if e.is_step_failure]
        raise JobFailed(
            f"the run of {what} failed (run {result.run_id}): "
            + ("; ".join(causes) or "no step started")
        )
