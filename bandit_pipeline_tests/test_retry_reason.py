"""A retried run says why it was retried: its parent's one-line failure, as a tag and a
line of its log (``defs/retries.py``). On Dagster's in-process instance, with the real
job failing on a warehouse that does not answer, as the daemon's retry would find it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from bandit_pipeline.definitions import build_definitions
from bandit_pipeline.defs.retries import (
    RETRY_REASON_TAG,
    explain_retry,
    retry_reason_sensor,
    run_failure_reason,
)
from bandit_pipeline.local_runs import JOB_NAME, QUIET_CONSOLE
from bandit_pipeline.settings import default_settings
from bandit_pipeline_tests.helpers import PARTITIONS_START

UNREACHABLE = "postgresql+psycopg://bob:pw-s3cret@127.0.0.1:1/nowhere"
PARTITION = "2026-11-01-10:00"


def retry_tags(parent: str, number: int) -> dict[str, str]:
    """The tags the daemon gives an automatic retry (besides the parent's own)."""
    return {"dagster/parent_run_id": parent, "dagster/root_run_id": parent,
            "dagster/retry_number": str(number)}  # fmt: skip


def engine_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    logs = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    return [entry.dagster_event.message or "" for entry in logs]


def sensor_tick_on_start(instance: dg.DagsterInstance, run_id: str) -> None:
    """The ``retry_reason`` sensor's evaluation of the run's start, as the daemon makes it."""
    (start,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    context = dg.build_run_status_sensor_context(
        sensor_name="retry_reason",
        dagster_event=start.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
    )
    retry_reason_sensor(context)


@pytest.fixture
def failing_job(tmp_path: Path) -> dg.JobDefinition:
    """The real job on a warehouse that refuses connections: its first step fails."""
    settings = default_settings(
        warehouse_url=UNREACHABLE,
        online_store_url=f"sqlite:///{tmp_path}/store.db",
        partitions_start=PARTITIONS_START,
    )
    return build_definitions(settings).resolve_job_def(JOB_NAME)


def test_a_retry_is_tagged_and_logs_why_its_parent_failed(failing_job: dg.JobDefinition):
    with dg.DagsterInstance.ephemeral() as instance:
        run = {"partition_key": PARTITION, "run_config": QUIET_CONSOLE, "raise_on_error": False}
        parent = failing_job.execute_in_process(instance=instance, **run)
        assert not parent.success
        reason = run_failure_reason(instance, parent.run_id)
        # Each failed step's line (the metrics roll-up does not wait for the posteriors).
        assert "posterior_update: warehouse unreachable: connection failed" in reason
        assert "\n" not in reason
        assert "pw-s3cret" not in reason

        # The retry (the warehouse still down), then the sensor's tick on its start.
        retry = failing_job.execute_in_process(
            instance=instance, tags=retry_tags(parent.run_id, 1), **run
        )
        assert RETRY_REASON_TAG not in instance.get_run_by_id(retry.run_id).tags
        sensor_tick_on_start(instance, retry.run_id)

        assert instance.get_run_by_id(retry.run_id).tags[RETRY_REASON_TAG] == reason
        said = [line for line in engine_lines(instance, retry.run_id) if reason in line]
        assert said == [f"Retry 1 of run {parent.run_id}, which failed: {reason}"]
        # The failed run itself is no retry: the sensor on its start writes nothing.
        sensor_tick_on_start(instance, parent.run_id)
        assert RETRY_REASON_TAG not in instance.get_run_by_id(parent.run_id).tags
        assert not [line for line in engine_lines(instance, parent.run_id) if "Retry" in line]


def test_the_reason_of_a_run_without_a_failed_step_and_of_runs_that_are_no_retry(
    failing_job: dg.JobDefinition,
):
    with dg.DagsterInstance.ephemeral() as instance:
        # A run whose worker died: no step failed, the run's failure message says why.
        lost = instance.create_run_for_job(failing_job, status=dg.DagsterRunStatus.STARTED)
        instance.report_run_failed(lost, "Run worker lost: the process is gone\nmore detail")
        # A second retry inherits the first retry's tags, its reason among them.
        inherited = {**retry_tags(lost.run_id, 2), RETRY_REASON_TAG: "an older reason"}
        retry = instance.create_run_for_job(failing_job, tags=inherited)
        assert explain_retry(instance, retry) == "Run worker lost: the process is gone"
        tags = instance.get_run_by_id(retry.run_id).tags
        assert tags[RETRY_REASON_TAG] == "Run worker lost: the process is gone"

        # A re-execution by hand (a parent, no retry number) and a first run: nothing.
        by_hand = instance.create_run_for_job(
            failing_job, tags={"dagster/parent_run_id": lost.run_id}
        )
        first = instance.create_run_for_job(failing_job)
        for run in (by_hand, first):
            assert explain_retry(instance, run) is None
            assert RETRY_REASON_TAG not in instance.get_run_by_id(run.run_id).tags
            assert engine_lines(instance, run.run_id) == []

        # A parent deleted since: the retry says so rather than failing the sensor.
        orphan = instance.create_run_for_job(failing_job, tags=retry_tags("gone-run-id", 1))
        assert explain_retry(instance, orphan) == "run gone-run-id is no longer on the instance"
