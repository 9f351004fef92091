"""No secret of the settings reaches what Dagster shows or stores: resources refer to the
BANDIT_* variables that hold the URLs, and read them only where they start."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from sqlalchemy.engine import make_url

from bandit_pipeline.definitions import build_definitions
from bandit_pipeline.defs.resources import resources_from_settings
from bandit_pipeline.settings import default_settings, load_settings
from bandit_pipeline_tests.helpers import PARTITIONS_START

PASSWORD = "s3cret-XYZ"
TOKEN = "tok3n-QRS"
WEBHOOK = f"https://hooks.example.invalid/services/T0/{TOKEN}"


def _config(resource: dg.ConfigurableResource) -> dict:
    """The resource's config as Dagster shows it (the launchpad's defaults)."""
    return resource.get_resource_definition().config_schema.as_field().default_value


def test_urls_from_the_environment_are_passed_by_variable_name(monkeypatch):
    store = "redis://:pw@127.0.0.1:6379/0"
    monkeypatch.setenv("BANDIT_ONLINE_STORE_URL", store)
    monkeypatch.setenv("BANDIT_ALERT_WEBHOOK_URL", WEBHOOK)
    monkeypatch.delenv("BANDIT_WAREHOUSE_URL", raising=False)
    resources = resources_from_settings(load_settings())
    assert _config(resources["online_store"])["url"] == {"env": "BANDIT_ONLINE_STORE_URL"}
    assert _config(resources["monitoring"])["webhook_url"] == {"env": "BANDIT_ALERT_WEBHOOK_URL"}
    # The default, which holds no secret, is a value; so is a URL given in code.
    assert _config(resources["warehouse"])["url"] == load_settings().warehouse_url
    given = resources_from_settings(default_settings(alert_webhook_url="https://hooks.test/x"))
    assert _config(given["monitoring"])["webhook_url"] == "https://hooks.test/x"
    # Where a resource starts, it reads the variable.
    with dg.build_resources({"monitoring": resources["monitoring"]}) as started:
        assert started.monitoring.webhook_url == WEBHOOK


@pytest.mark.postgres
def test_a_run_stores_and_shows_no_password_or_webhook_token(
    pg_engine, postgres_url, tmp_path, monkeypatch
):
    """Settings come from BANDIT_* variables, as in production. Neither secret is in what
    the UI shows of the code location, nor in the run's stored config, tags, snapshots and
    events, nor in any file of the instance."""
    url = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    monkeypatch.setenv("BANDIT_WAREHOUSE_URL", url)  # trust auth accepts any password
    monkeypatch.setenv("BANDIT_PARTITIONS_START", PARTITIONS_START)
    monkeypatch.setenv("BANDIT_ONLINE_STORE_URL", f"sqlite:///{tmp_path}/online.db")
    monkeypatch.setenv("BANDIT_ALERT_WEBHOOK_URL", WEBHOOK)
    definitions = build_definitions(load_settings())
    job = definitions.resolve_job_def("bandit_posterior_update")

    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        result = job.execute_in_process(instance=instance, partition_key="2026-11-20-12:00")
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        stored = [
            RepositorySnap.from_def(definitions.get_repository_def()),
            run,
            run.run_config,
            run.tags,
            instance.get_job_snapshot(run.job_snapshot_id),
            instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id),
            *instance.all_logs(result.run_id),
        ]
        texts = [dg.serialize_value(record) for record in stored]
    texts += [path.read_bytes().decode("utf-8", "replace") for path in _files(home)]
    for secret in (PASSWORD, TOKEN):
        assert not [text for text in texts if secret in text], secret


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]
