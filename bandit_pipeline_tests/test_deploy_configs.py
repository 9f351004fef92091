"""Runs off the daemon's machine: the Kubernetes instance file and its run launcher, the
values for Dagster's Helm chart, and the code location whose job runs its steps on Celery
workers, with a real worker. (No cluster and no Helm here: the launcher builds its Job
against a stand-in for the Kubernetes API, and the chart's values are checked against the
image and the instance files they mirror.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import dagster as dg
import pytest
import redis
import yaml
from dagster._config import process_config, validate_config
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.instance.config import dagster_instance_config, dagster_instance_config_schema
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster_celery import celery_executor
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config

from bandit_pipeline.cli import main
from bandit_pipeline.definitions import defs as product_defs
from bandit_pipeline.deploy import INSTANCE_FILE, dagster_command
from bandit_pipeline.deploy.celery_location import (
    CELERY_WORKSPACE_FILE,
    celery_executor_config,
)
from bandit_pipeline.deploy.celery_location import defs as celery_defs
from bandit_pipeline.deploy.celery_worker import worker_environment
from bandit_pipeline.settings import SettingsError
from bandit_pipeline.timing import PARTITION_FORMAT
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline_tests.helpers import (
    PARTITIONS_START,
    REDIS_URL,
    START,
    free_port,
    load_events,
    scalar,
    stop_process,
    timed_event,
)

ROOT = Path(__file__).resolve().parents[1]
K8S_INSTANCE_FILE = ROOT / "bandit_pipeline" / "deploy" / "dagster-k8s.yaml"
HELM_VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
JOB = "bandit_posterior_update"
PG_PARTS = {"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": "s3cret", "DAGSTER_PG_DB": "dagster"}  # fmt: skip
# A kubeconfig naming a cluster nobody listens at: the launcher reads it, never calls it.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def _dockerfile(instruction: str) -> list[str]:
    """The arguments of each ``instruction`` of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(instruction)]


def _image_environment() -> dict[str, str]:
    pairs = " ".join(_dockerfile("ENV ")).split()
    return dict(pair.split("=", 1) for pair in pairs)


# --- Kubernetes: the instance file and its run launcher.


def test_the_kubernetes_instance_file_is_a_valid_postgresql_instance(tmp_path, monkeypatch):
    for name, value in PG_PARTS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_K8S_JOB_NAMESPACE", "bandit")
    (tmp_path / "dagster.yaml").write_text(K8S_INSTANCE_FILE.read_text())
    config, custom_class = dagster_instance_config(str(tmp_path))  # Dagster's own validation
    assert custom_class is None
    storage = config["storage"]["postgres"]
    processed = process_config(DagsterPostgresStorage.config_type(), storage)
    assert processed.success, processed.errors
    assert pg_url_from_config(processed.value) == (
        "postgresql://dagster:s3cret@db.internal:5432/dagster"
    )
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert process_config(K8sRunLauncher.config_type(), launcher["config"]).success
    # The same limits, retries and monitoring as the product's instance on one machine.
    local = yaml.safe_load(INSTANCE_FILE.read_text())
    for section in ("concurrency", "run_retries", "run_monitoring"):
        assert config[section] == local[section], section


def test_the_kubernetes_launcher_starts_a_run_as_a_job_of_the_product_image(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_K8S_JOB_NAMESPACE", "bandit")
    launcher_config = yaml.safe_load(K8S_INSTANCE_FILE.read_text())["run_launcher"]["config"]
    processed = process_config(K8sRunLauncher.config_type(), launcher_config)
    assert processed.success, processed.errors
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    created = []

    class BatchApi:  # stands for the cluster: keeps the Jobs it is asked to create
        def create_namespaced_job(self, body, namespace, **_):
            created.append((body, namespace))

    launcher = K8sRunLauncher(
        **{
            **processed.value,
            "load_incluster_config": False,
            "kubeconfig_file": str(tmp_path / "kubeconfig"),
        },
        k8s_client_batch_api=BatchApi(),
    )
    image = "registry.example.com/bandit-pipeline:0.1.0"
    origin = JobPythonOrigin(
        JOB,
        RepositoryPythonOrigin(
            executable_path="/opt/bandit/bin/python",
            code_pointer=ModuleCodePointer("bandit_pipeline.definitions", "defs", None),
            container_image=image,  # what the code server reports (DAGSTER_CURRENT_IMAGE)
            entry_point=["dagster"],
        ),
    )
    with dg.instance_for_test() as instance:
        launcher.register_instance(instance)
        run = instance.add_run(DagsterRun(job_name=JOB, run_id="r1", job_code_origin=origin))
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    ((job, namespace),) = created
    assert namespace == "bandit"
    pod = job.spec.template.spec
    assert pod.service_account_name == "bandit-pipeline-runs"
    (container,) = pod.containers
    assert container.image == image
    # The image's entry point is bandit-pipeline: the pod runs `env dagster api ...` instead.
    (entry,) = yaml.safe_load(_dockerfile("ENTRYPOINT ")[0])
    assert entry == "bandit-pipeline"
    assert container.command == ["/usr/bin/env"]
    assert container.args[:3] == ["dagster", "api", "execute_run"]
    (script,) = entry_points(group="console_scripts", name="dagster")
    assert script.dist.name == "dagster"  # on the image's PATH: in the runtime lock
    env = {e.name: e.value for e in container.env}
    assert env["DAGSTER_HOME"] == _image_environment()["DAGSTER_HOME"]
    assert [s.secret_ref.name for s in container.env_from] == ["bandit-pipeline-env"]


# --- Dagster's Helm chart.


def test_the_helm_values_run_the_image_and_mirror_the_instance():
    (deployment,) = HELM_VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"]
    assert deployment["image"]["tag"]
    assert str(deployment["port"]) in " ".join(_dockerfile("EXPOSE ")).split()
    assert HELM_VALUES["global"]["dagsterHome"] == _image_environment()["DAGSTER_HOME"]
    k8s = yaml.safe_load(K8S_INSTANCE_FILE.read_text())
    launcher = HELM_VALUES["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    run_config = launcher["config"]["k8sRunLauncher"]
    assert (
        run_config["runK8sConfig"]["containerConfig"]["command"]
        == (k8s["run_launcher"]["config"]["run_k8s_config"]["container_config"]["command"])
    )
    secrets = k8s["run_launcher"]["config"]["env_secrets"]
    assert [s["name"] for s in run_config["envSecrets"]] == secrets
    assert [s["name"] for s in deployment["envSecrets"]] == secrets

    # What the chart writes into its instance file from these values, in dagster.yaml's words.
    local = yaml.safe_load(INSTANCE_FILE.read_text())
    concurrency = HELM_VALUES["concurrency"]
    daemon = HELM_VALUES["dagsterDaemon"]
    assert concurrency["enabled"] is True
    rendered = {
        "concurrency": {
            "pools": {
                "granularity": concurrency["pools"]["granularity"],
                "default_limit": concurrency["pools"]["defaultLimit"],
            },
            "runs": {"max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"]},
        },
        "run_retries": {
            "enabled": daemon["runRetries"]["enabled"],
            "max_retries": daemon["runRetries"]["maxRetries"],
        },
        **HELM_VALUES["additionalInstanceConfig"],
    }
    assert daemon["runMonitoring"]["enabled"] is False  # else the chart writes a second block
    for section in ("concurrency", "run_retries", "run_monitoring"):
        assert rendered[section] == local[section], section
    assert validate_config(dagster_instance_config_schema(), rendered).success


def test_the_charts_code_server_command_runs_through_the_image_entry_point():
    """The chart starts the user deployment's container with these arguments, after the
    image's entry point (bandit-pipeline): they must mean the product's code server."""
    (deployment,) = HELM_VALUES["dagster-user-deployments"]["deployments"]
    port = str(deployment["port"])
    args = ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", port,
            *deployment["codeServerArgs"]]  # fmt: skip
    assert args[0] in main.commands
    assert args[1] in main.commands["dagster"].params[0].type.choices
    command = dagster_command(args[1], args[2:])
    default = dagster_command("code-server", [])
    assert command[:3] == [str(BIN / "dagster"), "code-server", "start"]
    assert command[3:] == ["-h", "0.0.0.0", "-p", port, *default[3:]]


def test_the_charts_code_server_command_serves_the_code_location(tmp_path):
    (deployment,) = HELM_VALUES["dagster-user-deployments"]["deployments"]
    port = free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # no PostgreSQL here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BANDIT_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), BANDIT_WAREHOUSE_URL=f"sqlite:///{tmp_path}/w.db")
    server = subprocess.Popen(
        [str(BIN / "bandit-pipeline"), "dagster", "code-server", "start", "-h", "127.0.0.1",
         "-p", str(port), *deployment["codeServerArgs"]],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            probe = subprocess.run(
                [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)],
                env=env, capture_output=True, timeout=60,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(1)
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        assert probe.returncode == 0
    finally:
        stop_process(server)


# --- Celery.


def test_the_definitions_resolve_with_the_job_on_celery(monkeypatch):
    definitions = celery_defs()
    dg.Definitions.validate_loadable(definitions)
    job = definitions.resolve_job_def(JOB)
    assert job.executor_def.name == "celery"
    schedule = definitions.resolve_schedule_def("bandit_posterior_update_every_15_minutes")
    assert schedule.job_name == JOB
    # Nothing else changes: the same assets, checks, sensors, schedules and jobs.
    product = product_defs()
    assert product.resolve_job_def(JOB).executor_def.name == "in_process"
    assert definitions.resolve_asset_graph().get_all_asset_keys() == (
        product.resolve_asset_graph().get_all_asset_keys()
    )
    for kind in ("sensors", "schedules", "jobs"):
        assert sorted(d.name for d in getattr(definitions, kind)) == sorted(
            d.name for d in getattr(product, kind)
        )
    assert job.asset_layer.selected_asset_keys == (
        product.resolve_job_def(JOB).asset_layer.selected_asset_keys
    )
    # The executor's config is the workers' (celery.yaml), from the variables at run time.
    config = celery_executor_config()
    assert config == {"broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
                      "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"}}  # fmt: skip
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://broker:6379/1")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://broker:6379/2")
    processed = process_config(celery_executor.config_schema.config_type, config)
    assert processed.success, processed.errors
    assert processed.value["broker"] == "redis://broker:6379/1"
    workspace = yaml.safe_load(CELERY_WORKSPACE_FILE.read_text())["load_from"][0]
    assert workspace["python_module"] == {
        "module_name": "bandit_pipeline.deploy.celery_location",
        "attribute": "defs",
        "location_name": "bandit_pipeline",
    }


def test_the_celery_worker_names_what_is_missing(tmp_path):
    with pytest.raises(SettingsError, match="DAGSTER_CELERY_BROKER_URL, DAGSTER_CELERY_BACKEND"):
        worker_environment({"DAGSTER_HOME": str(tmp_path)})
    broker = {
        "DAGSTER_CELERY_BROKER_URL": "redis://b/1",
        "DAGSTER_CELERY_BACKEND_URL": "redis://b/2",
    }
    with pytest.raises(SettingsError, match="DAGSTER_HOME"):
        worker_environment(broker)


def _empty_redis_database() -> int:
    """A database of the test Redis that holds no key (the others' tests use 0)."""
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(_database(number))
        try:
            if client.dbsize() == 0:
                return number
        finally:
            client.close()
    pytest.fail("every database of the test Redis holds keys")


def _database(number: int) -> str:
    return f"{REDIS_URL.rsplit('/', 1)[0]}/{number}"


@pytest.mark.redis
def test_a_celery_worker_runs_the_steps_of_one_window(tmp_path, monkeypatch):
    warehouse = f"sqlite:///{tmp_path}/warehouse.db"
    engine = make_engine(warehouse)
    upgrade(engine)
    load_events(engine, [timed_event("a", "impression", START, 1),
                         timed_event("b", "click", START, 2)])  # fmt: skip
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # SQLite instance
    broker = _database(_empty_redis_database())
    for name in [k for k in os.environ if k.startswith(("BANDIT_", "DAGSTER_"))]:
        monkeypatch.delenv(name)
    settings = {
        "BANDIT_WAREHOUSE_URL": warehouse,
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/online.db",
        "BANDIT_PARTITIONS_START": PARTITIONS_START,
        "DAGSTER_HOME": str(home),
        "DAGSTER_CELERY_BROKER_URL": broker,
        "DAGSTER_CELERY_BACKEND_URL": broker,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "bandit_pipeline.deploy.celery_worker", "--pool=solo",
         "--loglevel=INFO"],
        env=dict(os.environ), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        job = ReconstructableRepository.for_module(
            "bandit_pipeline.deploy.celery_location", "defs", str(tmp_path)
        ).get_reconstructable_job(JOB)
        key = START.strftime(PARTITION_FORMAT)
        with dg.DagsterInstance.get() as instance:
            result = dg.execute_job(job, instance, tags={"dagster/partition": key})
            events = instance.all_logs(result.run_id)
        assert result.success, (tmp_path / "worker.log").read_text()[-3000:]
        in_worker = {e.step_key for e in events if "in celery worker" in (e.message or "")}
        ran = {e.step_key for e in events if e.dagster_event and e.dagster_event.is_step_success}
        assert ran
        assert ran == in_worker  # every step ran on the worker, none here
        assert scalar(engine, "SELECT COUNT(*) FROM bandit_posterior_runs") == 1
        assert worker.poll() is None  # the worker is still serving
    finally:
        stop_process(worker)
        log.close()
        client = redis.Redis.from_url(broker)
        keys = list(client.scan_iter(count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        engine.dispose()
