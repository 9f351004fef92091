"""Retried runs say why they were retried.

The daemon retries a failed run of the job (``run_retries`` in deploy/dagster.yaml) and
tags the retry ``dagster/parent_run_id`` and ``dagster/retry_number``, but the cause stays
in the failed run's log. ``explain_retry`` copies it into the retry: the failed run's
one-line cause (each failed step's line as ``failures.py`` makes it) becomes the retry's
tag ``bandit/retry_reason``, shown on the run's page and searchable in the runs list, and
a line at the head of its event log. The sensor ``retry_reason`` calls it for every run
of the code location that starts; a re-execution started by hand carries no retry number
and is left alone (its operator knows why).
"""

from __future__ import annotations

import dagster as dg

from bandit_pipeline.defs.failures import step_failure_line

PARENT_RUN_TAG = "dagster/parent_run_id"
RETRY_NUMBER_TAG = "dagster/retry_number"
RETRY_REASON_TAG = "bandit/retry_reason"
# A tag is for reading at a glance; the whole cause stays in the failed run's log.
MAX_REASON_CHARS = 500


def run_failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """Why a run failed, in one line, from the instance's event log: each failed step's
    line; without a failed step (a run worker that died, a run timed out) the first line
    of the run's failure message."""
    if not instance.has_run(run_id):
        return f"run {run_id} is no longer on the instance"
    entries = instance.all_logs(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    )
    events = [entry.dagster_event for entry in entries if entry.dagster_event is not None]
    steps = [step_failure_line(event) for event in events if event.is_step_failure]
    if steps:
        return "; ".join(dict.fromkeys(steps))  # a step that failed twice, once
    for event in reversed(events):
        lines = (event.message or "").strip().splitlines()
        if lines:
            return lines[0]
    return "no failure recorded"


def explain_retry(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """For a retry, the reason its parent failed, written into the retry as the tag
    ``bandit/retry_reason`` and a line of its log; None (and nothing written) for any other
    run. Always read from the parent: a retry inherits its parent's tags, the parent's
    own reason among them."""
    parent, number = run.tags.get(PARENT_RUN_TAG), run.tags.get(RETRY_NUMBER_TAG)
    if parent is None or number is None:
        return None
    reason = run_failure_reason(instance, parent)
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    instance.add_run_tags(run.run_id, {RETRY_REASON_TAG: reason})
    instance.report_engine_event(f"Retry {number} of run {parent}, which failed: {reason}", run)
    return reason


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.STARTED,
    name="retry_reason",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes into each automatic retry why its parent run failed: the tag "
    "bandit/retry_reason and a line of the retry's log.",
)
def retry_reason_sensor(context: dg.RunStatusSensorContext) -> None:
    """Thin: the work is :func:`explain_retry`."""
    reason = explain_retry(context.instance, context.dagster_run)
    if reason is not None:
        context.log.info("run %s is a retry: %s", context.dagster_run.run_id, reason)


def retry_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[retry_reason_sensor])
