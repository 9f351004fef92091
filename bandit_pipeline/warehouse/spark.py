"""Apache Spark as a warehouse engine (docs/spark.md): Parquet tables in a Spark catalog,
run with the Spark SQL variants of the window statements (``sql/**/NAME.spark.sql``, else
the shared ``NAME.sql``).

A warehouse is a directory (local, HDFS, S3, ...) holding one folder of Parquet files per
table, and a database of that name in the session's catalog. Its URL is

    spark://local[2]?warehouse=/data/bandit                     a Spark inside this process
    spark://spark-master:7077?warehouse=s3a://lake/bandit      a standalone cluster
    spark://yarn?warehouse=hdfs:///bandit&database=bandit     a YARN cluster

with ``database`` (default ``bandit``) naming the catalog database, and any ``spark.*``
query parameter passed to the session as configuration. Statements keep the files'
``:name`` markers: ``spark.sql`` binds them as named arguments (typed literals: a
timestamp as TIMESTAMP, a float as DOUBLE, a bool as BOOLEAN, a string as STRING), so no
value is ever spliced into SQL text. Instants must be timezone-aware; every session of a
warehouse computes in UTC.

pyspark is the optional extra ``bandit-pipeline[spark]``; it needs Java 17 or newer.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from bandit_pipeline.accepted_warnings import PYSPARK_PANDAS
from bandit_pipeline.policy import LoggedEvent
from bandit_pipeline.settings import Settings, SettingsError
from bandit_pipeline.warehouse.sql import SqlFile, parameter_names, sql_file

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

DIALECT = "spark"
SCHEME = "spark://"
DEFAULT_DATABASE = "bandit"
TABLES = (
    "bandit_rewards",
    "bandit_rewards_rejected",
    "bandit_ingest_batches",
    "bandit_reward_aggregates",
    "bandit_posteriors",
    "bandit_posterior_runs",
    "bandit_metric_deltas",
    "item_catalog",
    "item_catalog_rejected",
    "bandit_candidate_pool",
    "bandit_publications",
    "bandit_killswitch_events",
    "bandit_alert_events",
    "bandit_flag_events",
)
# A session this module starts: small enough to share a 2-core machine, and reading the
# lake's folders as the truth about its partitions (no metastore to keep in step).
SESSION_DEFAULTS = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.hive.manageFilesourcePartitions": "false",
}
# BANDIT_LAKE_DEDUP_HORIZON_HOURS's default, read without loading any settings at import.
DEDUP_HORIZON = timedelta(hours=Settings.model_fields["lake_dedup_horizon_hours"].default)
# The columns of a batch of events (the temporary view bandit_rewards_batch that
# sql/ingest/stage_new_events.spark.sql reads), in order.
BATCH_SCHEMA = (
    "event_id STRING, event_type STRING, occurred_at TIMESTAMP, ingested_at_given TIMESTAMP,"
    " namespace STRING, surface STRING, user_id STRING, request_id STRING, item_id STRING,"
    " slot INT, explore BOOLEAN, bandit_policy_id STRING, experiment STRING, variant STRING,"
    " ordinal BIGINT"
)
EVENT_COLUMNS = (
    "event_id", "event_type", "occurred_at", "ingested_at", "namespace", "surface", "user_id",
    "request_id", "item_id", "slot", "explore", "bandit_policy_id", "experiment", "variant",
)  # fmt: skip


@dataclass(frozen=True)
class SparkLocation:
    """What a ``spark://`` warehouse URL says: the master, the directory, the database
    and extra session configuration."""

    master: str
    warehouse: str
    database: str = DEFAULT_DATABASE
    conf: Mapping[str, str] = field(default_factory=dict)


def is_spark_url(url: str) -> bool:
    return url.startswith(SCHEME)


def parse_spark_url(url: str) -> SparkLocation:
    """``spark://MASTER?warehouse=DIR[&database=NAME][&spark.x=y...]``: MASTER is
    ``local``, ``local[N]``, ``local[*]``, ``yarn`` or ``host:port`` of a standalone
    master. A local directory is made absolute."""
    if not is_spark_url(url):
        raise ValueError(f"not a {SCHEME} URL")
    rest = url[len(SCHEME) :]
    master, _, query = rest.partition("?")
    if not master:
        raise ValueError("spark:// URL without a master (local[2], yarn or host:port)")
    if not (master.startswith("local") or master == "yarn"):
        master = SCHEME + master
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    warehouse = options.pop("warehouse", "")
    if not warehouse:
        raise ValueError("spark:// URL without ?warehouse=DIR (where the tables live)")
    if "://" not in warehouse and not warehouse.startswith("file:"):
        warehouse = str(Path(warehouse).expanduser().resolve())
    database = options.pop("database", DEFAULT_DATABASE)
    if not database.isidentifier():
        raise ValueError(f"database {database!r}: letters, digits and _ only")
    unknown = [key for key in options if not key.startswith("spark.")]
    if unknown:
        raise ValueError(f"unknown spark:// URL parameters {sorted(unknown)}")
    return SparkLocation(master, warehouse.rstrip("/"), database, options)


def start_session(master: str, warehouse: str, conf: Mapping[str, str] | None = None):
    """A SparkSession on ``master`` with :data:`SESSION_DEFAULTS` (``conf`` wins), whose
    catalog keeps new tables under ``warehouse``. In a process that already runs Spark,
    that session is returned as it is (Spark allows one per process)."""
    warnings.filterwarnings("ignore", message=PYSPARK_PANDAS, category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SettingsError(
            "a spark:// warehouse needs pyspark: pip install 'bandit-pipeline[spark]'"
        ) from None

    builder = SparkSession.builder.master(master).appName("bandit-pipeline")
    settings = {**SESSION_DEFAULTS, "spark.sql.warehouse.dir": warehouse, **(conf or {})}
    if master.startswith("local"):
        # A local Spark talks to itself only: no lookup of the machine's name.
        settings.setdefault("spark.driver.host", "127.0.0.1")
        settings.setdefault("spark.driver.bindAddress", "127.0.0.1")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def metric_view_statement() -> str:
    """bandit_explore_metrics, the view the CTR alert and the kill switch read
    (metrics/last_hour.sql), as a temporary view of the warehouse's session: the query of
    the other engines' view (sql/schema/0004_monitoring_views.sql) as it is."""
    view = "CREATE VIEW bandit_explore_metrics AS"
    shared = next(s for s in sql_file("schema/0004_monitoring_views").statements if view in s)
    return shared.replace(view, "CREATE OR REPLACE TEMPORARY VIEW bandit_explore_metrics AS", 1)


class SparkWarehouse:
    """The warehouse's tables in a Spark catalog, and the statements that run on them.

    It works in a session of its own (``spark.newSession()``: its own temporary views and
    functions, current database and UTC time zone) over the given session's Spark, and
    creates its database and tables when missing. One window at a time: :attr:`lock`."""

    dialect = DIALECT

    def __init__(
        self,
        spark: SparkSession,
        location: str,
        database: str = DEFAULT_DATABASE,
        *,
        dedup_horizon: timedelta = DEDUP_HORIZON,
    ):
        tracked = spark.conf.get("spark.sql.hive.manageFilesourcePartitions", "true")
        if tracked.lower() != "false":
            raise ValueError(
                "the Spark warehouse reads its partitions from the lake's folders: start the "
                "session with spark.sql.hive.manageFilesourcePartitions=false (start_session)"
            )
        self.spark = spark.newSession()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.location = location.rstrip("/")
        self.database = database
        # How far back an ingest looks for the event_ids it already holds (spark_ingest).
        self.dedup_horizon = dedup_horizon
        self.lock = threading.RLock()
        self._staged: dict[str, DataFrame] = {}
        self.execute("schema/functions")
        self.execute(
            "schema/lake",
            {
                "location": self.location,
                **{f"{table}_location": f"{self.location}/{table}" for table in TABLES},
            },
        )
        self.execute("schema/committed_views")
        self.spark.sql(metric_view_statement()).collect()
        self.execute("schema/metric_views")

    @classmethod
    def open(cls, url: str, *, dedup_horizon: timedelta = DEDUP_HORIZON) -> SparkWarehouse:
        """The warehouse of a ``spark://`` URL (:func:`parse_spark_url`)."""
        where = parse_spark_url(url)
        session = start_session(where.master, where.warehouse, where.conf)
        return cls(session, where.warehouse, where.database, dedup_horizon=dedup_horizon)

    # --- Statements

    def execute(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Run every statement of ``sql/NAME.spark.sql`` (else ``NAME.sql``);
        ``:database`` is the warehouse's database."""
        file = sql_file(name, DIALECT)
        params = {"database": self.database, **(params or {})}
        for statement in file.statements:
            self.spark.sql(statement, args=bind(file, statement, params)).collect()

    def query(self, name: str, params: Mapping[str, Any] | None = None) -> DataFrame:
        """The file's only statement, a query, as a DataFrame (not yet run)."""
        file = sql_file(name, DIALECT)
        if len(file.statements) != 1:
            raise ValueError(f"sql/{name} holds {len(file.statements)} statements, not 1")
        statement = file.statements[0]
        params = {"database": self.database, **(params or {})}
        return self.spark.sql(statement, args=bind(file, statement, params))

    def rows(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self.query(name, params).collect()

    def scalar(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None without rows."""
        found = self.query(name, params).take(1)
        return found[0][0] if found else None

    def stage(
        self, name: str, view: str, params: Mapping[str, Any], *, detach: bool = False
    ) -> int:
        """Compute the query ``name`` once and keep its rows as the temporary view
        ``view`` until :meth:`release`; returns the row count. ``detach`` cuts the rows
        loose from the tables they were read from, for a statement that overwrites one
        of those tables from the view (Spark refuses to overwrite what it reads)."""
        self.release(view)
        frame = self.query(name, params)
        frame = frame.localCheckpoint(eager=True) if detach else frame.persist()
        count = frame.count()
        frame.createOrReplaceTempView(view)
        self._staged[view] = frame
        return count

    def release(self, view: str) -> None:
        """Drop a staged view and free what it holds."""
        frame = self._staged.pop(view, None)
        if frame is not None:
            self.spark.catalog.dropTempView(view)
            frame.unpersist()

    # --- Events

    def append_events(
        self, events: Iterable[LoggedEvent | Mapping[str, Any]], *, source: str = "<events>"
    ) -> int:
        """Ingest validated events as one batch (:mod:`.spark_ingest`: each event_id once,
        the whole batch or nothing); an event without ``ingested_at`` gets the batch's
        acceptance time. Returns the events added."""
        from bandit_pipeline.warehouse.spark_ingest import commit_batch

        batch = [_event_row(event, ordinal) for ordinal, event in enumerate(events)]
        if not batch:
            return 0
        frame = self.spark.createDataFrame(batch, schema=BATCH_SCHEMA)
        return commit_batch(self, frame, source=source).events

    def append_event_frame(self, frame: DataFrame, *, source: str = "<frame>") -> int:
        """The same for a DataFrame of :data:`BATCH_SCHEMA`'s columns (``ingested_at_given``
        NULL for the batch's acceptance time; ``ordinal``, the order of arrival), for
        large batches read by Spark itself, such as a folder of Parquet files."""
        from bandit_pipeline.warehouse.spark_ingest import commit_batch

        return commit_batch(self, frame, source=source).events

    def table_rows(self, table: str, order_by: str) -> list[Row]:
        """Every row of one of :data:`TABLES`, in ``order_by`` order (for checks)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        self.execute("posteriors/refresh_tables")
        return self.spark.table(table).orderBy(*order_by.split(",")).collect()


def bind(file: SqlFile, statement: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named arguments of one statement: exactly the parameters it uses, instants as
    UTC-aware datetimes (declared on the file's ``-- timestamps:`` line), no NULLs (Spark
    cannot type them)."""
    names = parameter_names(statement)
    missing = sorted(names - params.keys())
    if missing:
        raise KeyError(f"sql/{file.name}: no value for {missing}")
    args: dict[str, Any] = {}
    for name in sorted(names):
        value = params[name]
        if name in file.timestamps:
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValueError(f"sql/{file.name}: {name} must be a timezone-aware datetime")
            value = value.astimezone(UTC)
        elif isinstance(value, datetime):
            raise ValueError(f"sql/{file.name}: {name} is an instant not declared as one")
        elif value is None:
            raise ValueError(f"sql/{file.name}: {name} is None")
        args[name] = value
    return args


def _event_row(event: LoggedEvent | Mapping[str, Any], ordinal: int) -> tuple[Any, ...]:
    if isinstance(event, LoggedEvent):
        values = {**event.__dict__, "user_id": "", "slot": None, "bandit_policy_id": None}
    else:
        values = dict(event)
    for column in ("occurred_at", "ingested_at"):
        moment = values.get(column)
        if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
            raise ValueError(f"{column} must be a timezone-aware datetime")
    values.setdefault("namespace", "default")
    values.setdefault("explore", False)
    return (*(values.get(column) for column in EVENT_COLUMNS), ordinal)
