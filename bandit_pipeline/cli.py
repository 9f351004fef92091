"""The ``bandit-pipeline`` command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from bandit_pipeline.flag_values import FLAGS, flag_fallbacks, flag_problem, flag_text
from bandit_pipeline.redact import redact_url
from bandit_pipeline.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from bandit_pipeline.ingest import IngestReport
    from bandit_pipeline.warehouse.spark import SparkWarehouse

EXIT_FAILED = 2


class Context:
    """Settings and the warehouse engine, made on first use."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def use_warehouse(self, url: str) -> None:
        """Read ``url`` instead of BANDIT_WAREHOUSE_URL (validated by the same rule)."""
        self._settings = self.settings.model_copy(
            update={"warehouse_url": load_settings(warehouse_url=url).warehouse_url}
        )
        self._engine = None

    def lake(self) -> SparkWarehouse:
        """The Spark warehouse of a spark:// BANDIT_WAREHOUSE_URL."""
        from bandit_pipeline.warehouse.spark import SparkWarehouse

        settings = self.settings
        return SparkWarehouse.open(
            settings.warehouse_url, dedup_horizon=settings.lake_dedup_horizon
        )

    def target(self) -> Engine | SparkWarehouse:
        """The engine, or the Spark warehouse, for the commands that serve both."""
        return self.lake() if self.settings.warehouse_engine == "spark" else self.engine

    @property
    def engine(self) -> Engine:
        if self.settings.warehouse_engine == "spark":
            raise SettingsError(
                "this command needs a PostgreSQL or SQLite warehouse: on a spark:// "
                "warehouse the product runs `db upgrade`, `ingest`, `catalog load`, "
                "`job run`, `serve`, `flags` and `killswitch` (docs/spark.md)"
            )
        if self._engine is None:
            from bandit_pipeline.warehouse import make_engine

            self._engine = make_engine(self.settings.warehouse_url)
        return self._engine


def fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn configuration, input and database failures into one clear line and exit 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bandit_pipeline.ingest import SourceError
        from bandit_pipeline.online_store import StoreUnavailable
        from bandit_pipeline.warehouse.engine import warehouse_failure

        try:
            return command(*args, **kwargs)
        except SettingsError as exc:
            _fail(str(exc))
        except SourceError as exc:
            _fail(str(exc))
        except StoreUnavailable as exc:
            _fail(f"online store error: {exc}")
        except (OperationalError, DBAPIError) as exc:
            _fail(f"warehouse error at {_where()}: {warehouse_failure(exc)}")
        except Exception as exc:
            if not type(exc).__module__.startswith(("pyspark", "py4j")):
                raise
            # Spark's errors carry the JVM's stack trace: its first line says what failed.
            first = str(exc).strip().splitlines()
            _fail(f"warehouse error at {_where()}: {first[0] if first else type(exc).__name__}")

    return wrapper


def _where() -> str:
    context = click.get_current_context().find_object(Context)
    return redact_url(context.settings.warehouse_url) if context else "the warehouse"


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A namespace or surface, by the rule ingestion and serving apply."""
    from bandit_pipeline.identifiers import NAME_RULE, is_name

    if value is not None and not is_name(value):
        raise click.BadParameter(f"expected {NAME_RULE}, got {value!r:.80}")
    return value


def _id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A user, request or item id, by the rule ingestion and serving apply."""
    from bandit_pipeline.identifiers import id_problem

    problem = None if value is None else id_problem(value)
    if problem is not None:
        raise click.BadParameter(f"{problem}: {value!r:.80}")
    return value


def _ids(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    return [_id(ctx, param, item) for item in value.split(",") if item]


def _instant(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 instant (no offset means UTC, as in ingestion) or a partition key."""
    from bandit_pipeline.timing import PARTITION_FORMAT

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = datetime.strptime(value, PARTITION_FORMAT)
        except ValueError:
            raise click.BadParameter(
                f"expected an ISO 8601 time such as 2026-11-20T12:00 (UTC unless it has an "
                f"offset) or a window key such as 2026-11-20-12:00, got {value!r:.80}"
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Thompson-sampling exploration pipeline: warehouse, ingestion and jobs."""
    from bandit_pipeline.accepted_warnings import quiet_library_logs

    quiet_library_logs()
    ctx.obj = Context()


@main.group()
def db() -> None:
    """Warehouse schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
@fails_cleanly
def db_upgrade(obj: Context, revision: str) -> None:
    """Create or upgrade the warehouse tables (safe to run again)."""
    from bandit_pipeline.warehouse.migrate import upgrade

    if obj.settings.warehouse_engine == "spark":
        lake = obj.lake()  # opening a lake creates its missing tables
        click.echo(f"lake {redact_url(obj.settings.warehouse_url)} ready at {lake.location}")
        return

    before, after = upgrade(obj.engine, revision)
    where = redact_url(obj.settings.warehouse_url)
    if before == after:
        click.echo(f"warehouse {where} already at revision {after}")
    else:
        click.echo(f"warehouse {where} upgraded from {before or 'empty'} to {after}")


@db.command("current")
@click.pass_obj
@fails_cleanly
def db_current(obj: Context) -> None:
    """Print the warehouse's schema revision and the newest one this code knows."""
    from bandit_pipeline.warehouse.migrate import current_revision, head_revision

    click.echo(f"current={current_revision(obj.engine) or 'empty'} head={head_revision()}")


@main.command()
@click.argument("path")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "parquet"]),
    default=None,
    help="Input format; by default from the file suffix (stdin: jsonl).",
)
@click.option(
    "--historical",
    is_flag=True,
    help="Replay logged history: ingested_at = the row's ingested_at or occurred_at.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Rows per transaction (default BANDIT_INGEST_BATCH_SIZE).",
)
@click.pass_obj
@fails_cleanly
def ingest(
    obj: Context, path: str, fmt: str | None, historical: bool, batch_size: int | None
) -> None:
    """Load telemetry events from PATH (JSON Lines, CSV or Parquet; - for stdin).

    Bad rows go to bandit_rewards_rejected with their reason; the exit status is non-zero
    only when the input or the warehouse could not be used at all.
    """
    from bandit_pipeline.ingest import ingest_events
    from bandit_pipeline.ingest.readers import count_records

    settings = obj.settings
    total = count_records(path, fmt) if sys.stderr.isatty() else None
    if settings.warehouse_engine == "spark":
        from bandit_pipeline.warehouse.spark_ingest import ingest_events_spark

        load, into = ingest_events_spark, obj.lake()
    else:
        load, into = ingest_events, obj.engine

    def run(on_progress: Callable[[int], object] | None = None) -> IngestReport:
        return load(
            into,
            path,
            settings,
            historical=historical,
            fmt=fmt,
            batch_size=batch_size,
            on_progress=on_progress,
        )

    if total is None:
        report = run()
    else:
        with click.progressbar(length=total, label="rows read", file=sys.stderr) as bar:
            report = run(bar.update)
    click.echo(report.summary())


@main.group()
def catalog() -> None:
    """Item catalog."""


@catalog.command("load")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default=None)
@click.pass_obj
@fails_cleanly
def catalog_load(obj: Context, path: str, fmt: str | None) -> None:
    """Upsert items from PATH into item_catalog by (namespace, item_id)."""
    from bandit_pipeline.ingest import load_catalog

    if obj.settings.warehouse_engine == "spark":
        from bandit_pipeline.warehouse.spark_ingest import load_catalog_spark

        report = load_catalog_spark(obj.lake(), path, obj.settings, fmt=fmt)
    else:
        report = load_catalog(obj.engine, path, obj.settings, fmt=fmt)
    click.echo(report.summary().replace("inserted=", "upserted="))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.pass_obj
@fails_cleanly
def serve(obj: Context, host: str, port: int, workers: int) -> None:
    """Run the HTTP decision service (POST /v1/decide, /healthz, /metrics, /docs)."""
    import uvicorn

    from bandit_pipeline.serving.logs import configure_json_logging

    settings = obj.settings  # fail on bad settings before binding the port
    configure_json_logging()
    click.echo(
        f"serving on http://{host}:{port} (online store {redact_url(settings.online_store_url)})"
    )
    uvicorn.run(
        "bandit_pipeline.serving.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("process", type=click.Choice(["webserver", "daemon", "code-server", "dev"]))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@fails_cleanly
def dagster(process: str, args: tuple[str, ...]) -> None:
    """Run a Dagster process of the deployment (ARGS go to it, e.g. --host, --port).

    webserver, daemon and code-server run on the instance in DAGSTER_HOME (the product's
    PostgreSQL dagster.yaml is put there when it has none; DAGSTER_PG_HOST, _PORT, _USER,
    _PASSWORD, _DB, _SSLMODE or DAGSTER_PG_URL say where). dev is Dagster's all-in-one
    local server on the embedded default.
    """
    from bandit_pipeline.deploy import exec_dagster

    load_settings().first_partition()  # fail on bad BANDIT_* settings here, in one line
    exec_dagster(process, args, announce=click.echo)


@main.group()
def job() -> None:
    """The 15-minute job, run in this process (the daemon runs it on schedule)."""


@job.command("run")
@click.option("--partition", "key", default=None, help="One window, e.g. 2026-12-01-10:15.")
@click.option("--from", "first_key", default=None, help="First window of a range.")
@click.option("--to", "last_key", default=None, help="Last window of a range (included).")
@click.pass_obj
@fails_cleanly
def job_run(obj: Context, key: str | None, first_key: str | None, last_key: str | None) -> None:
    """Run bandit_posterior_update over one window or a range, in order.

    The runs go to the instance in DAGSTER_HOME when it is set (and show in its UI), else
    to a throw-away one.
    """
    import os

    import dagster as dg

    from bandit_pipeline.local_runs import JobFailed, partition_keys, run_partitions

    if (key is None) == (first_key is None and last_key is None) or (
        key is None and None in (first_key, last_key)
    ):
        raise click.UsageError("give --partition KEY, or --from KEY and --to KEY")
    first_key, last_key = (key, key) if key else (first_key, last_key)
    try:
        total = len(partition_keys(first_key, last_key))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    with click.progressbar(length=total, label=f"{total} window(s)", file=sys.stderr) as bar:
        try:
            run_partitions(
                obj.settings, first_key, last_key, instance=instance, on_progress=bar.update
            )
        except JobFailed as exc:
            _fail(str(exc))
    click.echo(f"ran {total} window(s) {first_key} .. {last_key}")


@main.command()
@click.option("--surface", required=True, callback=_name)
@click.option("--user", "user_id", required=True, callback=_id)
@click.option(
    "--items", required=True, callback=_ids, help="The ranker's items, comma-separated, in order."
)
@click.option("--namespace", default=None, callback=_name, help="Default: BANDIT_NAMESPACE.")
@click.option("--request-id", default=None, callback=_id, help="Default: a new one.")
@click.pass_obj
@fails_cleanly
def decide(
    obj: Context,
    surface: str,
    user_id: str,
    items: list[str],
    namespace: str | None,
    request_id: str | None,
) -> None:
    """One decision, as serving makes it, printed as JSON (a smoke test of a deployment)."""
    import json
    import uuid

    from bandit_pipeline.serving import DecisionRequest, ExplorationService

    settings = obj.settings
    service = ExplorationService(settings, background=False)
    try:
        response = service.decide(
            DecisionRequest(
                namespace or settings.namespace,
                surface,
                user_id,
                request_id or f"cli-{uuid.uuid4().hex[:12]}",
                items,
            )
        )
    finally:
        service.close()
    body = {"items": [item._asdict() for item in response.items], "trace": vars(response.trace)}
    click.echo(json.dumps(body, default=str))


@main.group()
def flags() -> None:
    """Feature flags per namespace, in the online store (recorded in the warehouse)."""


def _store(obj: Context):
    from bandit_pipeline.online_store import open_store

    settings = obj.settings
    return open_store(
        settings.online_store_url, prefix=settings.online_store_prefix, timeout_seconds=5
    )


@flags.command("get")
@click.option("--namespace", default=None, callback=_name, help="Default: BANDIT_NAMESPACE.")
@click.pass_obj
@fails_cleanly
def flags_get(obj: Context, namespace: str | None) -> None:
    """Show the flags: the stored value, or the settings' fallback."""
    namespace = namespace or obj.settings.namespace
    stored = _store(obj).flags(namespace)
    for name, fallback in flag_fallbacks(obj.settings).items():
        source = "store" if name in stored else "settings"
        click.echo(f"{namespace} {name}={stored.get(name, flag_text(fallback))} ({source})")


@flags.command("set")
@click.argument("name", type=click.Choice(FLAGS))
@click.argument("value")
@click.option("--namespace", default=None, callback=_name, help="Default: BANDIT_NAMESPACE.")
@click.pass_obj
@fails_cleanly
def flags_set(obj: Context, name: str, value: str, namespace: str | None) -> None:
    """Set a flag for a namespace (serving picks it up within one refresh); recorded in the
    warehouse, which restores it to an emptied store."""
    problem = flag_problem(name, value.lower())
    if problem is not None:
        raise click.BadParameter(f"{name} {problem}", param_hint="VALUE")
    namespace = namespace or obj.settings.namespace
    _record_flag(obj, namespace, name, value.lower())
    click.echo(f"{namespace} {name}={value.lower()}")


@flags.command("unset")
@click.argument("name", type=click.Choice(FLAGS))
@click.option("--namespace", default=None, callback=_name, help="Default: BANDIT_NAMESPACE.")
@click.pass_obj
@fails_cleanly
def flags_unset(obj: Context, name: str, namespace: str | None) -> None:
    """Remove a stored flag: the settings' fallback applies again."""
    namespace = namespace or obj.settings.namespace
    _record_flag(obj, namespace, name, None)
    click.echo(f"{namespace} {name} unset")


def _record_flag(obj: Context, namespace: str, name: str, value: str | None) -> None:
    """Set or unset the flag in the store and record it in the warehouse (bandit_flag_events),
    from which an emptied store gets it back."""
    import getpass

    from bandit_pipeline.store_record import set_flag

    set_flag(obj.target(), _store(obj), namespace, name, value, actor=getpass.getuser())


@main.group()
def killswitch() -> None:
    """The exploration kill switch per surface (tripped by the sensor, reset by hand)."""


@killswitch.command("status")
@click.option("--namespace", default=None, callback=_name, help="Default: BANDIT_NAMESPACE.")
@click.pass_obj
@fails_cleanly
def killswitch_status(obj: Context, namespace: str | None) -> None:
    """Show each surface's state and the latest trips and resets."""
    from bandit_pipeline.monitoring.killswitch import killswitch_events

    namespace = namespace or obj.settings.namespace
    store = _store(obj)
    for surface in obj.settings.surfaces:
        state = store.killswitch(namespace, surface)
        if state is None:
            click.echo(f"{namespace}/{surface}: armed (never tripped)")
        else:
            word = "TRIPPED" if state.tripped else "armed"
            click.echo(
                f"{namespace}/{surface}: {word} since {state.changed_at.isoformat()} "
                f"by {state.changed_by}: {state.reason}"
            )
    events = killswitch_events(obj.target(), namespace, limit=10)
    if events:
        click.echo("latest events:")
        for event in events:
            click.echo(
                f"  {event.at} {event.surface} {event.action} by {event.actor}: {event.reason}"
            )


@killswitch.command("reset")
@click.option("--namespace", default=None, callback=_name, help="Default: BANDIT_NAMESPACE.")
@click.option("--surface", required=True, callback=_name)
@click.option("--reason", required=True, help="Why exploration may resume (recorded).")
@click.pass_obj
@fails_cleanly
def killswitch_reset(obj: Context, namespace: str | None, surface: str, reason: str) -> None:
    """Re-arm exploration on a surface (serving resumes within one refresh)."""
    import getpass

    from bandit_pipeline.monitoring.killswitch import reset_killswitch

    namespace = namespace or obj.settings.namespace
    reset_killswitch(obj.target(), _store(obj), namespace, surface, reason, actor=getpass.getuser())
    click.echo(f"{namespace}/{surface}: reset ({reason})")


@main.group()
def experiment() -> None:
    """The controlled experiment."""


@experiment.command("readout")
@click.pass_obj
@fails_cleanly
def experiment_readout_command(obj: Context) -> None:
    """Treatment against control per surface: rates, relative difference with a 95%
    interval, and the sample-ratio-mismatch check."""
    from bandit_pipeline.monitoring.readout import experiment_readout

    rows = experiment_readout(obj.engine)
    if not rows:
        click.echo("no experiment traffic in the rollups yet")
        return
    click.echo(
        f"{'surface':<8} {'experiment':<20} {'metric':<17} {'control':>8} {'treatment':>9} "
        f"{'rel diff':>9} {'95% interval':>19} {'SRM p':>8}"
    )
    for row in rows:
        diff = "-" if row.relative_difference is None else f"{row.relative_difference:+.2%}"
        low, high = row.relative_difference_ci_low, row.relative_difference_ci_high
        interval = "-" if low is None else f"[{low:+.2%}, {high:+.2%}]"
        srm = "-" if row.srm_p_value is None else f"{row.srm_p_value:.3g}"
        flag = " SRM!" if row.srm_suspected else ""
        click.echo(
            f"{row.surface:<8} {row.experiment:<20} {row.metric:<17} {row.control_rate:>8.4f} "
            f"{row.treatment_rate:>9.4f} {diff:>9} {interval:>19} {srm:>8}{flag}"
        )


@main.command()
@click.option(
    "--since",
    required=True,
    callback=_instant,
    help="Start of the range (included), e.g. 2026-11-20T00:00; UTC.",
)
@click.option(
    "--until",
    default=None,
    callback=_instant,
    help="End of the range (excluded); UTC. Default: now.",
)
@click.option(
    "--out",
    "out_dir",
    default=".bandit/report",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of report.html and its PNG plots.",
)
@click.option(
    "--truth",
    "truth_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="The dry run's truth file: adds true rewards and regret.",
)
@click.option("--warehouse-url", default=None, help="Default: BANDIT_WAREHOUSE_URL.")
@click.pass_obj
@fails_cleanly
def report(
    obj: Context,
    since: datetime,
    until: datetime | None,
    out_dir: str,
    truth_path: str | None,
    warehouse_url: str | None,
) -> None:
    """Write the exploration report of a range (one HTML page with its plots) and print
    the verdict on widening the rollout."""
    from bandit_pipeline.report import ReportError, write_report
    from bandit_pipeline.report.build import load_truth

    if warehouse_url is not None:
        obj.use_warehouse(warehouse_url)
    try:
        truth = None if truth_path is None else load_truth(truth_path)
        written = write_report(
            obj.engine, obj.settings, since, until or datetime.now(UTC), out_dir, truth
        )
    except ReportError as exc:
        _fail(str(exc))
    click.echo(f"report: {written.html_path} ({len(written.image_paths)} plots beside it)")
    click.echo(
        f"range: {written.since.isoformat()} .. {written.until.isoformat()} "
        f"namespace {written.namespace}"
    )
    for line in written.verdict_lines():
        click.echo(line)


@main.group()
def propensities() -> None:
    """The served policy's propensity of each logged choice (off-policy evaluation)."""


@propensities.command("update")
@click.option("--warehouse-url", default=None, help="Default: BANDIT_WAREHOUSE_URL.")
@click.pass_obj
@fails_cleanly
def propensities_update(obj: Context, warehouse_url: str | None) -> None:
    """Record the propensities of every explored decision in bandit_decisions that has none
    yet (what the hourly Dagster schedule bandit_propensities_hourly runs: the job keeps two
    hours of candidate pools)."""
    from bandit_pipeline.evaluation.propensities import update_propensities

    if warehouse_url is not None:
        obj.use_warehouse(warehouse_url)
    report = update_propensities(obj.engine)
    click.echo(report.summary())


@main.group()
def prior() -> None:
    """The prior new items start from (docs/posterior.md)."""


@prior.command("suggest")
@click.option(
    "--as-of",
    "until",
    default=None,
    callback=_instant,
    help="Fit as of the newest window at or before this instant (UTC). Default: now.",
)
@click.option("--warehouse-url", default=None, help="Default: BANDIT_WAREHOUSE_URL.")
@click.pass_obj
@fails_cleanly
def prior_suggest(obj: Context, until: datetime | None, warehouse_url: str | None) -> None:
    """Fit the empirical prior of each surface to its well-explored items and print it
    with how it was fitted, whatever BANDIT_PRIOR_MODE is."""
    from bandit_pipeline.empirical_prior import suggest_priors

    if warehouse_url is not None:
        obj.use_warehouse(warehouse_url)
    settings = obj.settings
    fit = settings.prior_fit_parameters()
    suggestion = suggest_priors(
        obj.engine, settings.posterior_parameters(), fit, until or datetime.now(UTC)
    )
    if suggestion is None:
        _fail("no materialised window yet: run the posterior job first")
    click.echo(
        f"as of {suggestion.as_of.isoformat()}; well explored: at least "
        f"{fit.min_evidence:g} decayed trained impressions; fitted with at least "
        f"{fit.min_items} items; strength capped at {fit.max_strength:g}; "
        f"fixed prior Beta({settings.prior_alpha:g}, {settings.prior_beta:g}); "
        f"BANDIT_PRIOR_MODE={settings.prior_mode}"
    )
    if not suggestion.fitted:
        click.echo("no surface has a well-explored item yet: new items get the fixed prior")
    header = (
        f"{'namespace':<12} {'surface':<10} {'method':<9} {'items':>6} {'alpha0':>9} "
        f"{'beta0':>9} {'mean':>8} {'strength':>8} {'obs var':>9} {'noise var':>9}  in effect"
    )
    click.echo(header)
    for (namespace, surface), fitted in sorted(suggestion.fitted.items()):
        recorded = suggestion.in_effect.get((namespace, surface))
        in_effect = "fixed" if recorded is None else f"Beta({recorded[0]:.4g}, {recorded[1]:.4g})"
        variance = "-" if fitted.observed_variance is None else f"{fitted.observed_variance:.3g}"
        noise = "-" if fitted.noise_variance is None else f"{fitted.noise_variance:.3g}"
        click.echo(
            f"{namespace:<12} {surface:<10} {fitted.method:<9} {fitted.items:>6} "
            f"{fitted.alpha:>9.4f} {fitted.beta:>9.4f} {fitted.mean:>8.4f} "
            f"{fitted.strength:>8.2f} {variance:>9} {noise:>9}  {in_effect}"
        )


@main.group()
def export() -> None:
    """Logged data for other tools."""


@export.command("obp")
@click.option("--since", required=True, callback=_instant, help="Start (included); UTC.")
@click.option("--until", required=True, callback=_instant, help="End (excluded); UTC.")
@click.option("--surface", required=True, callback=_name)
@click.option(
    "--out",
    "out_dir",
    default=".bandit/obp",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of bandit_feedback.npz and bandit_feedback.json.",
)
@click.option("--warehouse-url", default=None, help="Default: BANDIT_WAREHOUSE_URL.")
@click.pass_obj
@fails_cleanly
def export_obp_command(
    obj: Context,
    since: datetime,
    until: datetime,
    surface: str,
    out_dir: str,
    warehouse_url: str | None,
) -> None:
    """The logged exploration of a surface in Open Bandit Pipeline's bandit_feedback
    layout (.npz) with a JSON description of the actions (docs/data-science.md)."""
    from bandit_pipeline.evaluation.obp_export import export_obp

    if until <= since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    if warehouse_url is not None:
        obj.use_warehouse(warehouse_url)
    result = export_obp(obj.engine, obj.settings, since, until, surface, out_dir)
    click.echo(f"wrote {result.npz_path} ({result.rounds} rounds, {result.actions} actions)")
    click.echo(f"wrote {result.json_path}")


def _policy(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list:
    from bandit_pipeline.policy.candidates import parse_policy

    try:
        return [parse_policy(spec) for spec in value]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.option("--since", required=True, callback=_instant, help="Start (included); UTC.")
@click.option("--until", required=True, callback=_instant, help="End (excluded); UTC.")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    required=True,
    callback=_policy,
    help="A candidate policy (repeat for several): served, uniform, freshest, greedy, "
    "thompson:prior_beta=20,half_life_days=3, scores:PATH (docs/data-science.md).",
)
@click.option("--surface", default=None, callback=_name, help="One surface (default: all).")
@click.option("--seed", default=0, show_default=True, type=int, help="Monte Carlo and bootstrap.")
@click.option("--warehouse-url", default=None, help="Default: BANDIT_WAREHOUSE_URL.")
@click.pass_obj
@fails_cleanly
def evaluate(
    obj: Context,
    since: datetime,
    until: datetime,
    policies: list,
    surface: str | None,
    seed: int,
    warehouse_url: str | None,
) -> None:
    """Estimate candidate policies' expected reward per exploration impression from the
    served policy's logs: IPS, self-normalised IPS and doubly robust, with 95% intervals
    and the effective sample size."""
    import numpy as np

    from bandit_pipeline.evaluation.evaluate import EvaluationError
    from bandit_pipeline.evaluation.evaluate import evaluate as run_evaluation

    if until <= since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    if warehouse_url is not None:
        obj.use_warehouse(warehouse_url)
    try:
        result = run_evaluation(
            obj.engine, obj.settings, since, until, policies, surface=surface, seed=seed
        )
    except EvaluationError as exc:
        _fail(str(exc))
    logged = result.logged
    click.echo(
        f"range: {since.isoformat()} .. {until.isoformat()} namespace {logged.namespace} "
        f"surface {surface or 'all'}"
    )
    statuses = logged.statuses
    others = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()) if status != "ok")
    missing = logged.without_impression
    click.echo(
        f"logged: {statuses['ok']} explored decisions with propensities"
        + (f" ({others})" if others else "")
        + f"; {len(logged)} exploration impressions"
        + (f" ({missing} without an impression event)" if missing else "")
    )
    if not len(logged):
        click.echo("nothing to evaluate in this range")
        return
    observed = result.observed()
    click.echo(f"served policy, observed: {_interval(observed)} reward per exploration impression")
    click.echo(f"{'policy':<32} {'IPS':<26} {'SNIPS':<26} {'DR':<26} {'ESS':>8} {'max w':>7}")
    rng = np.random.default_rng(seed)
    for terms in result.policies:
        e = terms.estimates(logged, rng)
        click.echo(
            f"{terms.policy.spec:<32} {_interval(e.ips):<26} {_interval(e.snips):<26} "
            f"{_interval(e.dr):<26} {e.effective_sample_size:>8.0f} {e.max_weight:>7.1f}"
        )


def _interval(estimate) -> str:
    return f"{estimate.value:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]"


@main.command()
@click.option(
    "--days",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.25, 60),
    help="Simulated days (whole 15-minute windows).",
)
@click.option("--users", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--requests-per-hour", default=900, show_default=True, type=click.IntRange(1))
@click.option("--fresh-items", default=60, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--traffic-percent",
    default=100.0,
    show_default=True,
    type=click.FloatRange(0, 100),
    help="Rollout share of users that get exploration.",
)
@click.option("--slots", default=2, show_default=True, type=click.IntRange(1, 2))
@click.option(
    "--holdout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, 100),
    help="Experiment holdout percent (control: no exploration).",
)
@click.option(
    "--drift",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 5),
    help="Log-change per day of the fresh items' true rates (half up, half down).",
)
@click.option(
    "--scenario",
    type=click.Choice(["steady", "collapse"]),
    default="steady",
    show_default=True,
    help="collapse: fresh items stop converting halfway through.",
)
@click.option(
    "--checks-every",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Run the job's quality checks on every Nth window.",
)
@click.option(
    "--folder",
    default=".bandit/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The demo's own stores (recreated at each run), its events, truth and report.",
)
@click.option(
    "--into-configured-stores",
    is_flag=True,
    help="Write into BANDIT_WAREHOUSE_URL and BANDIT_ONLINE_STORE_URL instead (staging).",
)
@click.option(
    "--warehouse-url", default=None, help="Staging warehouse (implies configured stores)."
)
@click.option("--online-store-url", default=None, help="Staging store (implies configured stores).")
@click.option(
    "--allow-existing-data",
    is_flag=True,
    help="With configured stores: go on although that warehouse holds data.",
)
@click.pass_obj
@fails_cleanly
def demo(
    obj: Context,
    days: float,
    users: int,
    requests_per_hour: int,
    fresh_items: int,
    seed: int,
    traffic_percent: float,
    slots: int,
    holdout: float,
    drift: float,
    scenario: str,
    checks_every: int,
    folder: str,
    into_configured_stores: bool,
    warehouse_url: str | None,
    online_store_url: str | None,
    allow_existing_data: bool,
) -> None:
    """The staging dry run: simulated shop traffic through the real serving, ingestion
    and job, then the report, on stores of its own (or, when told, staging's)."""
    from pathlib import Path

    from bandit_pipeline.demo import DemoRefused, demo_settings, refuse_existing_data, run_demo
    from bandit_pipeline.simulate.shop import ShopOptions
    from bandit_pipeline.warehouse import make_engine

    settings = obj.settings
    stores = {"warehouse_url": warehouse_url, "online_store_url": online_store_url}
    if any(stores.values()):
        into_configured_stores = True
        settings = settings.model_copy(update={k: v for k, v in stores.items() if v})
    settings = demo_settings(
        settings,
        None if into_configured_stores else Path(folder),
        slots=slots,
        traffic_percent=traffic_percent,
        holdout_percent=holdout,
    )
    options = ShopOptions(
        seed=seed,
        days=days,
        users=users,
        requests_per_hour=requests_per_hour,
        fresh_items=fresh_items,
        drift_per_day=drift,
        scenario=scenario,
    )
    engine = make_engine(settings.warehouse_url)
    try:
        if into_configured_stores and not allow_existing_data:
            refuse_existing_data(engine)
        run_demo(
            engine, settings, options, Path(folder), checks_every=checks_every, echo=click.echo
        )
    except DemoRefused as exc:
        _fail(str(exc))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
