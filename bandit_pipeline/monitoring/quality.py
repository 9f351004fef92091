"""Great Expectations suites over the tables the job writes, one window at a time.

Each suite validates only the rows of the window being materialised. The warehouse
reduces the window's raw events, aggregates and posteriors in one pass each to a summary
of what their suite checks (the distinct checked values of the events, the smallest and
largest value of each checked column, counts of rows missing a value or out of bounds),
and the suite validates that summary in memory: checking a window of a million events
costs one scan instead of one per expectation, and the same expectations hold of the
summary exactly when they hold of every row. The candidate pool (one row per pooled item
and surface) is validated where it lies, through a Great Expectations SQL data source
(Spark data source on a lake), where the expectations run as queries. Great Expectations
is imported on first use, not at module import: it costs seconds and hundreds of
megabytes, which no code-server load should pay.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from bandit_pipeline.ingest.events import EVENT_TYPES, MAX_SLOT
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.pool import PoolParameters
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.engine import POSTGRES_SESSION_OPTIONS
from bandit_pipeline.warehouse.sql import sql_statement

if TYPE_CHECKING:
    import pandas as pd

    from bandit_pipeline.warehouse.spark import SparkWarehouse

LARGE = 1e12  # bounds that also catch infinities


@dataclass
class SuiteResult:
    suite: str
    success: bool
    rows: int
    failures: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "failed_expectations": len(self.failures),
            "failures": "; ".join(self.failures) or "none",
        }


def _file_identity(engine: Engine) -> int | None:
    """The inode of a SQLite warehouse file: a file deleted and recreated at the same path
    (the demo does so at each run) must not be validated through a stale connection."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    try:
        return os.stat(database).st_ino
    except OSError:
        return None


@cache
def _data_source(url: str, file_identity: int | None = None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if url.startswith("sqlite"):
        return context.data_sources.add_sqlite("warehouse", connection_string=url)
    return context.data_sources.add_postgres("warehouse", connection_string=url)


def run_suite(
    name: str,
    engine: Engine | SparkWarehouse,
    statement: str,
    params: dict[str, Any],
    expectations: list,
) -> SuiteResult:
    """Validate the rows of ``sql/STATEMENT.sql`` (bound to ``params``) in the warehouse."""
    if not isinstance(engine, Engine):
        return _run_suite_on_spark(name, engine, statement, params, expectations)
    query = str(
        sql_statement(statement)
        .bindparams(**params)
        .compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    )
    source = _data_source(_source_url(engine), _file_identity(engine))
    asset_name = f"{name}_{uuid.uuid4().hex[:8]}"
    asset = source.add_query_asset(name=asset_name, query=query)
    try:
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        outcome = _validate(batch, name, expectations)
        rows = _count(engine, query)
    finally:
        source.delete_asset(asset_name)
    return _result(name, outcome, rows)


def run_suite_on_summary(
    name: str, summary: pd.DataFrame, rows: int, expectations: list
) -> SuiteResult:
    """Validate a summary the warehouse computed in one pass (a few hundred rows, in
    memory) that stands for ``rows`` rows of a table."""
    return _result(name, _validate_frame(_summary_source(), name, summary, expectations), rows)


def _run_suite_on_spark(
    name: str, lake: SparkWarehouse, statement: str, params: dict[str, Any], expectations: list
) -> SuiteResult:
    """The same on the Spark warehouse: the expectations run as Spark jobs over the query's
    DataFrame (Great Expectations' Spark data source)."""
    frame = lake.query(statement, params)
    outcome = _validate_frame(_spark_source(), name, frame, expectations)
    return _result(name, outcome, frame.count())


def _validate_frame(source: Any, name: str, frame: Any, expectations: list) -> Any:
    """Validate a DataFrame (pandas or Spark, per ``source``) as a throw-away asset."""
    asset_name = f"{name}_{uuid.uuid4().hex[:8]}"
    asset = source.add_dataframe_asset(name=asset_name)
    try:
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": frame}
        )
        return _validate(batch, name, expectations)
    finally:
        source.delete_asset(asset_name)


@cache
def _spark_source():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_spark("lake")


@cache
def _summary_source():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("window_summaries")


def _validate(batch: Any, name: str, expectations: list) -> Any:
    import great_expectations as gx

    return batch.validate(gx.ExpectationSuite(name=name, expectations=expectations))


def _result(name: str, outcome: Any, rows: int) -> SuiteResult:
    failures = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')}): "
        f"{r.result.get('unexpected_count', '?')} unexpected"
        for r in outcome.results
        if not r.success
    ]
    return SuiteResult(name, bool(outcome.success), rows, failures)


def _source_url(engine: Engine) -> str:
    """The warehouse URL for Great Expectations' own engine, with the product's session
    options on PostgreSQL (UTC, no JIT), unless the URL sets options itself."""
    url = engine.url
    if engine.dialect.name == "postgresql" and "options" not in url.query:
        url = url.update_query_dict({"options": POSTGRES_SESSION_OPTIONS})
    return url.render_as_string(hide_password=False)


def _count(engine: Engine, query: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.exec_driver_sql(f"SELECT COUNT(*) FROM ({query}) AS window_rows").scalar()
        )


def _summary(engine: Engine | SparkWarehouse, statement: str, params: dict[str, Any]):
    """The rows of the one-pass summary ``sql/STATEMENT.sql`` as a pandas frame."""
    import pandas as pd

    if isinstance(engine, Engine):
        with engine.connect() as connection:
            result = connection.execute(sql_statement(statement), params)
            return pd.DataFrame(result.all(), columns=list(result.keys()))
    frame = engine.query(statement, params)
    return pd.DataFrame([tuple(row) for row in frame.collect()], columns=frame.columns)


def _rows(summary: pd.DataFrame, column: str) -> int:
    """How many table rows a summary that repeats their count in ``column`` stands for."""
    return int(summary[column].iloc[0]) if len(summary) else 0


def check_rewards(engine: Engine | SparkWarehouse, as_of: datetime) -> SuiteResult:
    """The window's new rows, through their one-pass summary (``sql/quality/window_rewards``):
    required values present, known event types and variants, slot 0..10000, surface names.
    Event ids are unique by the table's primary key."""
    import great_expectations.expectations as gxe

    summary = _summary(
        engine, "quality/window_rewards", {"window_start": as_of - WINDOW, "as_of": as_of}
    )
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="event_type"),
        gxe.ExpectColumnValuesToNotBeNull(column="surface"),
        gxe.ExpectColumnValuesToBeBetween(column="rows_missing_a_value", max_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeBetween(column="slot", min_value=0, max_value=MAX_SLOT),
        gxe.ExpectColumnValuesToBeInSet(column="variant", value_set=["treatment", "control"]),
        gxe.ExpectColumnValuesToMatchRegex(column="surface", regex=r"^[A-Za-z0-9_.\-]{1,64}$"),
    ]
    rows = int(summary["events"].sum()) if len(summary) else 0
    return run_suite_on_summary("bandit_rewards_window", summary, rows, expectations)


def check_aggregates(engine: Engine | SparkWarehouse, as_of: datetime) -> SuiteResult:
    """The window's aggregates, through their one-pass summary
    (``sql/quality/window_aggregates``): counts non-negative, evidence finite and present,
    at most one unit of evidence per new or corrected impression."""
    import great_expectations.expectations as gxe

    counts = ["impressions", "clicks", "add_to_carts", "purchases", "late_corrections"]
    evidence = ["reward_evidence", "non_reward_evidence"]
    summary = _summary(engine, "quality/window_aggregates", {"as_of": as_of})
    expectations = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in counts + evidence]
    expectations += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in counts]
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(column=c, min_value=-LARGE, max_value=LARGE)
        for c in evidence
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(column=c, max_value=0)
        for c in ("rows_missing_a_value", "rows_over_evidence_bound")
    ]
    return run_suite_on_summary(
        "bandit_reward_aggregates_window", summary, _rows(summary, "aggregate_rows"),
        expectations,
    )  # fmt: skip


def check_posteriors(
    engine: Engine | SparkWarehouse, as_of: datetime, params: PosteriorParameters
) -> SuiteResult:
    """The window's posteriors, through their one-pass summary
    (``sql/quality/window_posteriors``): present, finite, at least the prior."""
    import great_expectations.expectations as gxe

    tolerance = 1e-9  # floating-point noise of the incremental sums
    summary = _summary(engine, "quality/window_posteriors", {"as_of": as_of})
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="alpha"),
        gxe.ExpectColumnValuesToNotBeNull(column="beta"),
        gxe.ExpectColumnValuesToBeBetween(column="rows_missing_a_value", max_value=0),
        gxe.ExpectColumnValuesToBeBetween(
            column="alpha", min_value=params.prior_alpha - tolerance, max_value=LARGE
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="beta", min_value=params.prior_beta - tolerance, max_value=LARGE
        ),
    ]
    return run_suite_on_summary(
        "bandit_posteriors_window", summary, _rows(summary, "posterior_rows"), expectations
    )


def check_pool(
    engine: Engine | SparkWarehouse, as_of: datetime, pool: PoolParameters
) -> SuiteResult:
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="price"),
        gxe.ExpectColumnValuesToBeBetween(
            column="price", min_value=0, strict_min=True, max_value=1e9
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="availability", min_value=pool.min_availability, max_value=1
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="freshness_index", min_value=pool.min_freshness, max_value=1
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="alpha", min_value=0, strict_min=True, max_value=LARGE
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="beta", min_value=0, strict_min=True, max_value=LARGE
        ),
    ]
    return run_suite(
        "bandit_candidate_pool_window", engine, "quality/window_pool", {"as_of": as_of},
        expectations,
    )  # fmt: skip
