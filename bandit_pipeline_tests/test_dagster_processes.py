"""The real Dagster processes: ``bandit-pipeline dagster webserver`` and ``... daemon`` on
a fresh PostgreSQL instance, with a PostgreSQL warehouse and Redis, driven through the
webserver's GraphQL API (what its UI sends) and through headless Chromium.

One webserver and one daemon serve every test here (starting them takes seconds), on 8
complete 15-minute windows of generated traffic ending at the last quarter hour. The
schedule is on, as in production, so at any quarter hour the daemon may start a run of
the newest window beside a test: each test compares only the older windows it ran, waits
for the runs of the job to finish before it empties the tables, and the tests that compare
tables with a clean run stop the schedule meanwhile (``schedule_paused``).
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psycopg
import pytest
from dagster_postgres import PostgresScheduleStorage
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from bandit_pipeline.definitions import build_definitions
from bandit_pipeline.defs.partitions import POSTERIOR_CHAIN_POOL, window_end
from bandit_pipeline.defs.retries import RETRY_REASON_TAG
from bandit_pipeline.defs.schedule import posterior_update_job, posterior_update_schedule
from bandit_pipeline.ingest import ingest_events, load_catalog
from bandit_pipeline.online_store import open_store
from bandit_pipeline.settings import Settings, default_settings
from bandit_pipeline.simulate import generate_catalog, generate_events, write_jsonl
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline_tests.dagster_ui import (
    Browser,
    GraphQL,
    GraphQLError,
    Process,
    wait_until,
)
from bandit_pipeline_tests.helpers import (
    ADMIN_URL,
    POSTERIOR_TABLES,
    REDIS_URL,
    delete_redis_keys,
    free_port,
    fresh_database,
    rows,
    unique_name,
    warehouse_resource,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots; git-ignored
BIN = Path(sys.executable).parent
JOB = posterior_update_job.name
SCHEDULE = posterior_update_schedule.name
REPOSITORY = {"repositoryLocationName": "bandit_pipeline", "repositoryName": "__repository__"}
JOB_ASSETS = ("reward_aggregates", "bandit_posteriors", "explore_candidate_pool",
              "online_posteriors", "bandit_explore_metrics")  # fmt: skip
CHECKED_ASSETS = {"reward_aggregates": 2, "bandit_posteriors": 1, "explore_candidate_pool": 1}
N_WINDOWS = 8
ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
# The tables of the chain, with their keys: a run's result, compared row for row.
CHAIN_TABLES = {
    "bandit_reward_aggregates": "as_of, namespace, surface, item_id",
    "bandit_posteriors": "namespace, surface, item_id, as_of",
    "bandit_candidate_pool": "as_of, namespace, surface, item_id",
}
DERIVED_TABLES = (*POSTERIOR_TABLES, "bandit_candidate_pool")


def _last_quarter_hour(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


FIRST_WINDOW = _last_quarter_hour(datetime.now(UTC)) - N_WINDOWS * WINDOW
KEYS = [(FIRST_WINDOW + k * WINDOW).strftime(PARTITION_FORMAT) for k in range(N_WINDOWS)]
RANGE = KEYS[:4]  # what the backfill and the retried run cover; never the newest window


# --- The deployment: databases, the two processes, and what the tests read back.


@dataclass
class Deployment:
    graphql: GraphQL
    webserver: Process
    daemon: Process
    instance_url: str  # the Dagster instance's database (psycopg2, as the instance uses it)
    warehouse: Engine
    warehouse_url: str
    clean: Engine  # the same events, for the clean runs the tests compare with
    clean_settings: Settings
    redis_prefix: str

    def wait(self, probe: Any, timeout: float, what: str) -> Any:
        """``wait_until``, with the processes' logs in the failure."""
        try:
            return wait_until(probe, timeout, what)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.tails()}") from None

    def tails(self) -> str:
        return f"{self.webserver.tail()}\n{self.daemon.tail()}"

    def start_daemon(self) -> None:
        self.daemon.start()
        self.wait(lambda: _daemons_healthy(self.graphql), 120, "the daemon to report healthy")

    def wait_idle(self, timeout: float = 180) -> None:
        """No run of the job queued or in progress (the schedule may have started one)."""
        self.wait(lambda: not self.runs(statuses=ACTIVE) or None, timeout, "the job's runs")

    def runs(self, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
        runs_filter: dict[str, Any] = {"pipelineName": JOB}
        if statuses:
            runs_filter["statuses"] = list(statuses)
        data = self.graphql(RUNS, filter=runs_filter)["runsOrError"]
        return data["results"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.graphql(RUN, id=run_id)["runOrError"]

    def finished(self, run_id: str, timeout: float = 180) -> dict[str, Any]:
        return self.wait(
            lambda: (run := self.run(run_id))["status"] in DONE and run, timeout, f"run {run_id}"
        )


def _daemons_healthy(graphql: GraphQL) -> bool:
    try:
        statuses = graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    except (httpx.HTTPError, GraphQLError):  # not answering yet
        return False
    required = [s for s in statuses if s["required"]]
    return bool(required) and all(s["healthy"] for s in required)


def _location_loaded(graphql: GraphQL) -> bool:
    try:
        entries = graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
    except (httpx.HTTPError, GraphQLError):  # not listening yet
        return False
    return any(
        e["name"] == "bandit_pipeline"
        and e["loadStatus"] == "LOADED"
        and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
        for e in entries
    )


def _load_traffic(urls: Sequence[str], folder: Path) -> None:
    """The same catalog and events in each warehouse, through the product's ingestion
    (``historical``: each event visible in the window it occurred in)."""
    end = FIRST_WINDOW + N_WINDOWS * WINDOW
    catalog = generate_catalog(12, now=end)
    write_jsonl(folder / "catalog.jsonl", catalog)
    events = generate_events(
        [item["item_id"] for item in catalog], 300, start=FIRST_WINDOW, end=end,
        surfaces=("home",),
    )  # fmt: skip
    write_jsonl(folder / "events.jsonl", events)
    for url in urls:
        engine = make_engine(url)
        settings = default_settings(warehouse_url=url)
        load_catalog(engine, str(folder / "catalog.jsonl"), settings)
        report = ingest_events(engine, str(folder / "events.jsonl"), settings, historical=True)
        assert report.rejected == 0
        engine.dispose()


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A webserver and a daemon started as documented, on databases of their own; stopped
    by their process ids and the databases and Redis keys removed at the end, whatever
    happened."""
    root = tmp_path_factory.mktemp("dagster")
    with ExitStack() as stack:
        instance_db = stack.enter_context(fresh_database(migrated=False, prefix="bandit_dagster"))
        warehouse_url = stack.enter_context(fresh_database(prefix="bandit_procs"))
        clean_url = stack.enter_context(fresh_database(prefix="bandit_clean"))
        prefix = unique_name("bandit_procs")
        stack.callback(delete_redis_keys, prefix)
        _load_traffic([warehouse_url, clean_url], root)

        server = make_url(ADMIN_URL)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BANDIT_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(root / "home"),
            DAGSTER_PG_HOST=server.host or "127.0.0.1",
            DAGSTER_PG_PORT=str(server.port or 5432),
            DAGSTER_PG_USER=server.username or "postgres",
            DAGSTER_PG_PASSWORD=server.password or "",
            DAGSTER_PG_DB=make_url(instance_db).database,
            BANDIT_WAREHOUSE_URL=warehouse_url,
            BANDIT_ONLINE_STORE_URL=REDIS_URL,
            BANDIT_ONLINE_STORE_PREFIX=prefix,
            BANDIT_PARTITIONS_START=KEYS[0],
            BANDIT_SURFACES="home",
        )
        port = free_port()
        command = [str(BIN / "bandit-pipeline"), "dagster"]
        listen = ["--host", "127.0.0.1", "--port", str(port)]
        webserver = Process("webserver", [*command, "webserver", *listen], env,
                            root / "webserver.log", root)  # fmt: skip
        daemon = Process("daemon", [*command, "daemon"], env, root / "daemon.log", root)
        graphql = GraphQL(f"http://127.0.0.1:{port}")
        stack.callback(graphql.close)
        stack.callback(webserver.stop)
        stack.callback(daemon.stop)
        warehouse, clean = make_engine(warehouse_url), make_engine(clean_url)
        stack.callback(warehouse.dispose)
        stack.callback(clean.dispose)
        deployment = Deployment(
            graphql=graphql, webserver=webserver, daemon=daemon,
            instance_url=instance_db.replace("+psycopg://", "+psycopg2://"),
            warehouse=warehouse, warehouse_url=warehouse_url, clean=clean,
            clean_settings=default_settings(
                warehouse_url=clean_url, online_store_url=f"sqlite:///{root}/clean_store.db",
                partitions_start=KEYS[0], surfaces="home",
            ),
            redis_prefix=prefix,
        )  # fmt: skip
        webserver.start()
        deployment.wait(lambda: _location_loaded(graphql), 120, "the webserver's code location")
        deployment.start_daemon()
        yield deployment
        deployment.wait_idle(timeout=120)  # a run worker is not stopped midway


@pytest.fixture(autouse=True)
def _logs_of_a_failed_test(
    request: pytest.FixtureRequest, deployment: Deployment
) -> Iterator[None]:
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(deployment.tails())


# --- What the UI sends.

WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename } } } } }"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
INSTIGATORS = """query($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
  ... on Repository {
    schedules { name defaultStatus canReset scheduleState { status } }
    sensors { name defaultStatus canReset sensorState { status } } } } }"""
RUN_FIELDS = "runId status startTime endTime allPools tags { key value }"
RUN = f"query($id: ID!) {{ runOrError(runId: $id) {{ ... on Run {{ {RUN_FIELDS} }} }} }}"
RUNS = f"""query($filter: RunsFilter) {{ runsOrError(filter: $filter) {{
  ... on Runs {{ results {{ {RUN_FIELDS} }} }} }} }}"""
RUN_GROUP = f"""query($id: ID!) {{ runGroupOrError(runId: $id) {{
  ... on RunGroup {{ runs {{ {RUN_FIELDS} }} }} }} }}"""
STEP_FAILURES = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
  events { ... on ExecutionStepFailureEvent {
    stepKey error { message cause { message } } } } } } }"""
LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""
REEXECUTE = """mutation($params: ReexecutionParams!) {
  launchPipelineReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""
BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs(limit: 10) { runId } } } }"""
TICKS = """query($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
  ... on Schedule { scheduleState { ticks(limit: 10) { timestamp status runIds } } } } }"""
# The asset graph's query for a node's checks (the UI's AssetCheckLiveFragment).
ASSET_CHECKS = """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks {
  checks { name executionForLatestMaterialization { status evaluation { severity } }
    partitionStatuses { __typename ... on AssetCheckTimePartitionStatuses {
      ranges { startKey endKey status } } } } } } } }"""


def launch(deployment: Deployment, tags: dict[str, str]) -> str:
    """Launch the job, as the launchpad does, with ``tags`` (its partitions)."""
    params = {
        "selector": {**REPOSITORY, "jobName": JOB},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    result = deployment.graphql(LAUNCH_RUN, params=params)["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def range_tags(keys: Sequence[str]) -> dict[str, str]:
    """The tags of one run over a range of partitions (what a single-run backfill sets)."""
    return {"dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1]}  # fmt: skip


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def run_group(deployment: Deployment, run_id: str) -> list[dict[str, Any]]:
    """The run and its retries and re-executions, oldest first."""
    runs = deployment.graphql(RUN_GROUP, id=run_id)["runGroupOrError"]["runs"]
    return sorted(runs, key=lambda r: r["startTime"] or float("inf"))


def ui_check_status(check: dict[str, Any]) -> str:
    """A check's status as the asset graph shows it: over its partitions when it has
    partition statuses, else its execution for the latest materialization."""
    statuses = (check["partitionStatuses"] or {}).get("ranges")
    if not statuses:
        execution = check["executionForLatestMaterialization"]
        return execution["status"] if execution else "NOT_EVALUATED"
    seen = {r["status"] for r in statuses}
    for status in ("FAILED", "EXECUTION_FAILED", "IN_PROGRESS", "SKIPPED", "SUCCEEDED"):
        if status in seen:
            return status
    return "NOT_EVALUATED"


def asset_checks(deployment: Deployment) -> dict[str, list[dict[str, Any]]]:
    """Each checked asset's checks, as the asset graph queries them."""
    nodes = deployment.graphql(ASSET_CHECKS)["assetNodes"]
    return {
        n["assetKey"]["path"][-1]: n["assetChecksOrError"]["checks"]
        for n in nodes
        if n["assetChecksOrError"] and n["assetChecksOrError"].get("checks")
    }


def partition_status(check: dict[str, Any], key: str) -> str | None:
    for r in (check["partitionStatuses"] or {}).get("ranges", []):
        if r["startKey"] <= key <= r["endKey"]:
            return r["status"]
    return None


# --- The warehouse: emptied before a test's runs, compared with a clean run after them.


def empty_derived(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(DERIVED_TABLES)}"))


def chain_rows(engine: Engine, keys: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the chain's tables for the windows of ``keys``, in key order."""
    first, last = window_end(keys[0]), window_end(keys[-1])
    return {
        table: [
            tuple(row)
            for row in rows(
                engine,
                f"SELECT * FROM {table} WHERE as_of BETWEEN :first AND :last ORDER BY {order}",
                first=first,
                last=last,
            )
        ]
        for table, order in CHAIN_TABLES.items()
    }


def clean_run(deployment: Deployment, keys: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after one clean run of ``keys``: the same job, in process, on a copy of
    the warehouse's events."""
    engine, settings = deployment.clean, deployment.clean_settings
    empty_derived(engine)
    job = build_definitions(
        settings, warehouse=warehouse_resource(engine, settings)
    ).resolve_job_def(JOB)
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, tags=range_tags(keys)).success
    clean = chain_rows(engine, keys)
    assert all(clean.values()), "the clean run wrote nothing to compare with"
    return clean


SCHEDULE_STATE = """query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) { ... on Schedule { scheduleState { id } } } }"""
STOP_SCHEDULE = """mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }"""
RESET_SCHEDULE = """mutation($selector: ScheduleSelector!) {
  resetSchedule(scheduleSelector: $selector) { __typename } }"""


@pytest.fixture
def schedule_paused(deployment: Deployment) -> Iterator[None]:
    """The schedule stopped from the UI for the test, and reset to its default (running)
    afterwards, as an operator does around a repair. A quarter-hour run of the newest
    window in the middle of a comparison would build the newest pool, after which the
    older windows of the repair rightly skip theirs, and the tables would differ from the
    clean run's for that reason alone."""
    selector = {**REPOSITORY, "scheduleName": SCHEDULE}
    state = deployment.graphql(SCHEDULE_STATE, selector=selector)["scheduleOrError"]
    stopped = deployment.graphql(STOP_SCHEDULE, id=state["scheduleState"]["id"])
    assert stopped["stopRunningSchedule"]["__typename"] == "ScheduleStateResult", stopped
    try:
        yield
    finally:
        reset = deployment.graphql(RESET_SCHEDULE, selector=selector)["resetSchedule"]
        assert reset["__typename"] == "ScheduleStateResult", reset


def prepare(deployment: Deployment) -> None:
    """Wait for the job's runs, then empty what the job derives from the events."""
    deployment.wait_idle()
    empty_derived(deployment.warehouse)


# --- The tests.


def test_the_schedule_and_the_sensors_run_by_default(deployment: Deployment):
    repository = deployment.graphql(INSTIGATORS, selector=REPOSITORY)["repositoryOrError"]
    schedules = {s["name"]: s for s in repository["schedules"]}
    sensors = {s["name"]: s for s in repository["sensors"]}
    assert set(schedules) == {SCHEDULE, "bandit_propensities_hourly"}
    assert set(sensors) == {
        "explore_ctr_alert",
        "exploration_killswitch",
        "online_store_restore",
        "retry_reason",
    }
    for instigator in [*schedules.values(), *sensors.values()]:
        state = instigator.get("scheduleState") or instigator.get("sensorState")
        assert state["status"] == "RUNNING", instigator["name"]
        assert instigator["defaultStatus"] == "RUNNING", instigator["name"]
        assert instigator["canReset"] is False, f"{instigator['name']} was turned on by hand"


def test_a_schedule_tick_runs_the_latest_complete_window_and_publishes_it(
    deployment: Deployment,
):
    """The schedule ticks only at quarter hours. The test makes the daemon owe a tick now:
    it stops the daemon and moves the schedule's stored start (which the daemon wrote on
    its first evaluation) to before the last quarter hour, as if the daemon had been down
    at that tick. Dagster's catch-up then launches the missed tick as soon as the daemon is
    back: the real scheduler, at the real time, without waiting up to 15 minutes."""
    storage = PostgresScheduleStorage(deployment.instance_url, should_autocreate_tables=False)
    try:
        state = deployment.wait(
            lambda: next(
                (s for s in storage.all_instigator_state() if s.instigator_name == SCHEDULE), None
            ),
            60,
            "the daemon to record the schedule's state",
        )
        deployment.wait_idle()  # stopping the daemon stops its run workers too
        deployment.daemon.stop()
        tick_due = _last_quarter_hour(datetime.now(UTC))
        storage.update_instigator_state(
            state.with_data(
                state.instigator_data._replace(
                    start_timestamp=(tick_due - timedelta(minutes=1)).timestamp(),
                    last_iteration_timestamp=None,
                )
            )
        )
    finally:
        storage.dispose()
    deployment.start_daemon()

    selector = {**REPOSITORY, "scheduleName": SCHEDULE}

    def launched_tick() -> dict[str, Any] | None:
        ticks = deployment.graphql(TICKS, selector=selector)["scheduleOrError"]["scheduleState"]
        done = [t for t in ticks["ticks"] if t["status"] == "SUCCESS" and t["runIds"]]
        due = [t for t in done if t["timestamp"] >= tick_due.timestamp()]
        return max(due, key=lambda t: t["timestamp"]) if due else None

    tick = deployment.wait(launched_tick, 120, f"the schedule's tick of {tick_due}")
    run = deployment.finished(tick["runIds"][-1])
    assert run["status"] == "SUCCESS"
    tick_time = datetime.fromtimestamp(tick["timestamp"], UTC)
    latest_complete = (tick_time - WINDOW).strftime(PARTITION_FORMAT)
    assert tags(run)["dagster/partition"] == latest_complete
    assert tags(run)["dagster/schedule_name"] == SCHEDULE
    assert run["allPools"] == [POSTERIOR_CHAIN_POOL]

    snapshot = open_store(REDIS_URL, prefix=deployment.redis_prefix).load("default", "home")
    assert snapshot is not None, "nothing was published to Redis"
    assert snapshot.as_of == window_end(latest_complete)
    pooled = rows(
        deployment.warehouse,
        "SELECT item_id FROM bandit_candidate_pool WHERE as_of = :as_of ORDER BY item_id",
        as_of=window_end(latest_complete),
    )
    assert sorted(snapshot.item_ids) == [item for (item,) in pooled]
    assert len(snapshot) > 0


def remove_bad_row(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM bandit_rewards WHERE event_id = 'bad'"))


@pytest.fixture
def bad_row_removed_after(deployment: Deployment) -> Iterator[None]:
    """Whatever the test's outcome, the next tests' runs do not meet its bad row."""
    try:
        yield
    finally:
        remove_bad_row(deployment.warehouse)


def test_a_backfill_with_a_bad_window_fails_its_check_and_a_fixed_reexecution_is_clean(
    deployment: Deployment, schedule_paused: None, bad_row_removed_after: None
):
    prepare(deployment)
    clean = clean_run(deployment, RANGE)
    bad_window = datetime.strptime(RANGE[1], PARTITION_FORMAT).replace(tzinfo=UTC)
    with (
        deployment.warehouse.begin() as connection
    ):  # past ingestion: a surface and slot it refuses
        connection.execute(
            text(
                "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, ingested_at,"
                " namespace, surface, user_id, request_id, item_id, slot, explore) VALUES"
                " ('bad', 'impression', :t, :t, 'default', 'home page', 'u', 'r-bad',"
                " 'item-000001', 20000, true)"
            ),
            {"t": bad_window + timedelta(minutes=2)},
        )

    # A backfill of the range, as the job's partitions page launches it.
    params = {
        "selector": {"partitionSetName": f"{JOB}_partition_set", "repositorySelector": REPOSITORY},
        "assetSelection": [{"path": [asset]} for asset in JOB_ASSETS],
        "partitionNames": RANGE,
        "fromFailure": False,
        "tags": [],
    }
    launched = deployment.graphql(BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = deployment.wait(
        lambda: (
            (
                b := deployment.graphql(BACKFILL_STATUS, id=launched["backfillId"])[
                    "partitionBackfillOrError"
                ]
            )["status"]
            not in {"REQUESTED", "CANCELING", "FAILING"}
            and b
        ),
        300,
        "the backfill to finish",
    )
    assert backfill["status"] == "COMPLETED_FAILED"
    (failed_run,) = [r for r in backfill["runs"] if "dagster/parent_run_id" not in tags(
        deployment.run(r["runId"]))]  # fmt: skip
    # One run for the whole range, retried by the daemon (the data is still bad). Dagster
    # may count the backfill as finished between one retry's failure and the launch of the
    # next, and then launches no further retry: one or two retries, each failed.
    deployment.wait(
        lambda: (
            len(g := run_group(deployment, failed_run["runId"])) >= 2
            and all(r["status"] in DONE for r in g)
        ),
        180,
        "the daemon's retry to finish",
    )
    deployment.wait_idle()
    group = run_group(deployment, failed_run["runId"])
    assert len(group) in (2, 3), group
    assert [r["status"] for r in group] == ["FAILURE"] * len(group)
    assert tags(group[0])["dagster/asset_partition_range_start"] == RANGE[0]
    assert tags(group[0])["dagster/asset_partition_range_end"] == RANGE[-1]
    retry_numbers = [tags(r).get("dagster/retry_number") for r in group]
    assert retry_numbers == [None, "1", "2"][: len(group)]
    assert all(r["allPools"] == [POSTERIOR_CHAIN_POOL] for r in group)

    # The asset graph shows which window failed, and that nothing was published.
    checks = {c["name"]: c for cs in asset_checks(deployment).values() for c in cs}
    rows_valid = checks["window_reward_rows_valid"]
    assert [partition_status(rows_valid, k) for k in RANGE] == [
        "SUCCEEDED", "FAILED", "SUCCEEDED", "SUCCEEDED",
    ]  # fmt: skip
    assert ui_check_status(rows_valid) == "FAILED"
    assert partition_status(checks["posteriors_proper"], RANGE[1]) == "SUCCEEDED"
    failures = deployment.graphql(STEP_FAILURES, id=group[0]["runId"])["logsForRun"]["events"]
    assert {e["stepKey"] for e in failures if e} == {"reward_aggregates_window_reward_rows_valid"}

    # The operator removes the bad row and re-executes the run, all steps ("Re-execute all":
    # the aggregates were computed with the bad row).
    remove_bad_row(deployment.warehouse)
    reexecuted = deployment.graphql(
        REEXECUTE, params={"parentRunId": group[0]["runId"], "strategy": "ALL_STEPS"}
    )["launchPipelineReexecution"]
    assert reexecuted["__typename"] == "LaunchRunSuccess", reexecuted
    run = deployment.finished(reexecuted["run"]["runId"])
    assert run["status"] == "SUCCESS"
    assert run["allPools"] == [POSTERIOR_CHAIN_POOL]
    assert chain_rows(deployment.warehouse, RANGE) == clean

    # Every check passed for every window, and the asset graph counts them all as passed.
    by_asset = asset_checks(deployment)
    assert {asset: len(cs) for asset, cs in by_asset.items()} == CHECKED_ASSETS
    for asset, asset_checks_ in by_asset.items():
        for check in asset_checks_:
            assert [partition_status(check, k) for k in RANGE] == ["SUCCEEDED"] * 4, (asset, check)
            assert ui_check_status(check) == "SUCCEEDED", (asset, check)


def test_a_run_that_loses_its_warehouse_connection_is_retried_and_is_clean(
    deployment: Deployment, schedule_paused: None
):
    """The first attempt's connection is killed while it writes the first window: the test
    holds an uncommitted row of that window's aggregates, so the run's insert waits on it,
    then terminates that backend (as a failover or a network cut would)."""
    prepare(deployment)
    clean = clean_run(deployment, RANGE)
    held = clean["bandit_reward_aggregates"][0]  # a row the run will insert
    with psycopg.connect(deployment.warehouse_url.replace("+psycopg", "")) as blocker:
        blocker.execute(
            "INSERT INTO bandit_reward_aggregates (as_of, namespace, surface, item_id,"
            " impressions, clicks, add_to_carts, purchases, reward_evidence,"
            " non_reward_evidence, late_corrections) VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0, 0, 0)",
            held[:4],
        )
        root = launch(deployment, range_tags(RANGE))
        database = make_url(deployment.warehouse_url).database
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            waiting = deployment.wait(
                lambda: admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type ="
                    " 'Lock' AND query ILIKE '%%bandit_reward_aggregates%%'",
                    (database,),
                ).fetchall(),
                120,
                "the run to wait on the held row",
            )
            for (pid,) in waiting:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.rollback()

    first = deployment.finished(root)
    assert first["status"] == "FAILURE"
    failures = deployment.graphql(STEP_FAILURES, id=root)["logsForRun"]["events"]
    messages = " ".join(str(e["error"]) for e in failures if e)
    assert "terminating connection" in messages, messages
    retry = deployment.wait(
        lambda: next((r for r in run_group(deployment, root) if r["runId"] != root), None),
        120,
        "the daemon to retry the run",
    )
    retry = deployment.finished(retry["runId"])
    assert retry["status"] == "SUCCESS"
    assert tags(retry)["dagster/retry_number"] == "1"
    assert tags(retry)["dagster/parent_run_id"] == root
    # The retry says why (the sensor retry_reason): the failed run's one-line cause.
    reason = deployment.wait(
        lambda: tags(deployment.run(retry["runId"])).get(RETRY_REASON_TAG), 120, "its reason"
    )
    assert reason.startswith("posterior_update: warehouse connection lost"), reason
    assert retry["allPools"] == [POSTERIOR_CHAIN_POOL]
    assert chain_rows(deployment.warehouse, RANGE) == clean


def test_two_runs_of_the_chain_launched_at_once_run_one_after_the_other(
    deployment: Deployment,
):
    deployment.wait_idle()
    launched = [launch(deployment, {"dagster/partition": k}) for k in KEYS[4:6]]
    deadline = time.monotonic() + 180
    waited = False
    while True:
        both = [deployment.run(run_id) for run_id in launched]
        statuses = [r["status"] for r in both]
        running = [s for s in statuses if s in {"STARTING", "STARTED"}]
        assert len(running) < 2, f"both runs in progress at once: {both}"
        waited = waited or (len(running) == 1 and "QUEUED" in statuses)
        if all(s in DONE for s in statuses):
            break
        assert time.monotonic() < deadline, f"the two runs did not finish in 180 s: {both}"
        time.sleep(0.2)
    assert statuses == ["SUCCESS", "SUCCESS"]
    assert waited, "the second run never waited in the queue while the first ran"
    one, other = sorted(both, key=lambda r: r["startTime"])
    assert other["startTime"] >= one["endTime"]

    # Every run of the job so far (scheduled, backfill, retried, re-executed, launched by
    # hand, and the schedule's own) was in the pool, and none ran beside another.
    runs = sorted(deployment.runs(), key=lambda r: r["startTime"] or 0)
    assert all(r["allPools"] == [POSTERIOR_CHAIN_POOL] for r in runs), runs
    started = [r for r in runs if r["startTime"]]
    for before, after in itertools.pairwise(started):
        assert after["startTime"] >= before["endTime"], (before, after)


def all_checks_passed(deployment: Deployment) -> bool:
    by_asset = asset_checks(deployment)
    return all(ui_check_status(c) == "SUCCEEDED" for cs in by_asset.values() for c in cs)


@pytest.fixture
def checks_passed(deployment: Deployment) -> None:
    """The range materialised with every check passed (the tests above leave it so; alone,
    this runs it)."""
    if not all_checks_passed(deployment):
        deployment.wait_idle()
        assert deployment.finished(launch(deployment, range_tags(RANGE)))["status"] == "SUCCESS"
    assert all_checks_passed(deployment)


@pytest.mark.parametrize(
    ("page", "path", "expected", "passed"),
    [
        ("asset-graph", "/locations/bandit_pipeline/asset-groups/bandit_exploration/lineage",
         ("bandit_posteriors", "explore_candidate_pool", "online_posteriors",
          "reward_aggregates", "bandit_rewards", "item_catalog"),
         ["1 / 1", "1 / 1", "2 / 2"]),
        ("job-partitions", f"/locations/bandit_pipeline/jobs/{JOB}/partitions",
         (JOB, "Total partitions", "Backfill history"), []),
    ],
)  # fmt: skip
def test_the_ui_in_a_browser(
    deployment: Deployment, checks_passed: None, tmp_path: Path, page, path, expected, passed
):
    """Headless Chromium opens the page with the first-visit dialog ("Join the Dagster
    community", shown on 127.0.0.1 until its localStorage key is set) dismissed, as a
    returning user sees it, and saves a screenshot under test-artifacts/. The asset graph
    counts every check of each checked asset as passed."""
    ARTIFACTS.mkdir(exist_ok=True)
    browser = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    try:
        session = browser.open(
            deployment.graphql.base_url + path, {"communityNux": "1"}, width=1600, height=1000
        )
        shown = deployment.wait(
            lambda: all(name in (t := browser.text(session)) for name in expected) and t,
            60,
            f"the {page} page to show {expected}",
        )
        time.sleep(1.5)  # the dialog would open a second after the page
        shown = browser.text(session)
        browser.screenshot(session, ARTIFACTS / f"dagster-{page}.png")
    finally:
        browser.close()
    assert all(name in shown for name in expected)
    assert "Join the Dagster community" not in shown
    for error in ("Unexpected GraphQL error", "Something went wrong", "PythonError",
                  "Traceback", "Could not load", "DagsterInvariantViolationError"):  # fmt: skip
        assert error not in shown, error
    assert sorted(re.findall(r"(\d+ / \d+) Passed", shown)) == passed
    assert browser.exceptions == []
    assert (ARTIFACTS / f"dagster-{page}.png").stat().st_size > 10_000
