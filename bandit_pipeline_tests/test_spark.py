"""The window job on the Spark warehouse (docs/spark.md): against the reference evaluation
of the definition, against PostgreSQL on the same events, and its Spark SQL variants
against the shared statements they vary.

One local Spark (2 cores, 1 GB; conftest.py) serves every Spark test; each test, and each
example of a property test, works in a warehouse (database and directory) of its own."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings

from bandit_pipeline.monitoring.rollups import MetricsScope
from bandit_pipeline.policy import LoggedEvent, reference_posteriors
from bandit_pipeline.policy.prior import PriorFitParameters
from bandit_pipeline.spark_window import materialise_window_spark, posteriors_as_of_spark
from bandit_pipeline.warehouse.spark import (
    SparkLocation,
    SparkWarehouse,
    bind,
    parse_spark_url,
)
from bandit_pipeline.warehouse.sql import sql_file
from bandit_pipeline.window_update import materialise_window, posteriors_as_of
from bandit_pipeline_tests.helpers import (
    FUTURE_SCAN,
    PARAMS,
    PROPERTY,
    START,
    WINDOW_ENDS,
    assert_close,
    event_streams,
    load_events,
    rows,
    timed_event,
    traffic,
)

pytestmark = pytest.mark.filterwarnings(
    # pyspark 4.3 says so whenever it imports pandas; the warehouse never hands it a
    # pandas frame.
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

# A window costs a local Spark seconds, not milliseconds: fewer examples, and per example
# the windows that reach both modes (from scratch, incremental after it, from scratch
# after a gap, incremental again).
SPARK_PROPERTY = settings(PROPERTY, max_examples=4)
PROPERTY_WINDOWS = (1, 2, 4, 5)


# --- The Spark SQL variants and the URL (no Spark needed)


def _without(name: str, dialect: str | None, pattern: str) -> tuple[str, ...]:
    """The file's statements with the lines matching ``pattern`` dropped."""
    return tuple(
        "\n".join(line for line in statement.splitlines() if not re.search(pattern, line))
        for statement in sql_file(name, dialect).statements
    )


def test_window_keys_on_spark_is_the_shared_query_with_partition_conditions():
    assert _without("posteriors/window_keys", "spark", "ingested_hour") == _without(
        "posteriors/window_keys", None, "ingested_hour"
    )
    assert sql_file("posteriors/window_keys", "spark").timestamps == (
        sql_file("posteriors/window_keys").timestamps
    )


def test_window_evidence_on_spark_is_the_shared_query_with_exact_sums():
    exact = re.compile(
        r"CAST\(SUM\(CAST\((.*?) AS DECIMAL\(38, 28\)\)\) AS DOUBLE\)\s+AS (\w+)", re.S
    )
    spark_version = sql_file("posteriors/window_evidence", "spark").statements[0]
    assert len(exact.findall(spark_version)) == 2
    assert (
        exact.sub(r"SUM(\1) AS \2", spark_version)
        == (sql_file("posteriors/window_evidence").statements[0])
    )


def test_spark_urls():
    assert parse_spark_url("spark://local[2]?warehouse=/data/lake") == SparkLocation(
        "local[2]", "/data/lake", "bandit", {}
    )
    where = parse_spark_url(
        "spark://master:7077?warehouse=s3a://lake/bandit/&database=shop&spark.executor.memory=4g"
    )
    assert where == SparkLocation(
        "spark://master:7077", "s3a://lake/bandit", "shop", {"spark.executor.memory": "4g"}
    )
    for bad, reason in (
        ("spark://local[2]", "without \\?warehouse"),
        ("spark://?warehouse=/x", "without a master"),
        ("spark://local?warehouse=/x&database=a;b", "database"),
        ("spark://local?warehouse=/x&password=y", "unknown"),
        ("postgresql://h/db", "not a spark"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_spark_url(bad)


def test_arguments_are_the_statement_parameters_typed():
    file = sql_file("posteriors/insert_run", "spark")
    statement = file.statements[0]
    values = {
        "as_of": WINDOW_ENDS[0],
        "window_start": START,
        "mode": "incremental",
        "parameters_fingerprint": "f",
        "prior_alpha": 1.0,
        "prior_beta": 1.0,
        "half_life_days": 14.0,
        "items_touched": 1,
        "posterior_rows": 1,
        "impressions": 1,
        "reward_evidence": 0.5,
        "unused": "dropped",
    }
    assert bind(file, statement, values).keys() == values.keys() - {"unused"}
    with pytest.raises(ValueError, match="timezone-aware"):
        bind(file, statement, {**values, "as_of": WINDOW_ENDS[0].replace(tzinfo=None)})
    with pytest.raises(ValueError, match="not declared"):
        bind(file, statement, {**values, "mode": START})
    with pytest.raises(KeyError):
        bind(file, statement, {k: v for k, v in values.items() if k != "mode"})


# --- The window job on Spark


@SPARK_PROPERTY
@given(events=event_streams())
def test_spark_windows_match_the_definition(new_warehouse, events):
    warehouse = new_warehouse()
    warehouse.append_events(events)
    expected_modes = []
    for k in PROPERTY_WINDOWS:
        as_of = WINDOW_ENDS[k]
        result = materialise_window_spark(warehouse, as_of, PARAMS, future_scan=FUTURE_SCAN)
        expected_modes.append("incremental" if k - 1 in PROPERTY_WINDOWS else "from_scratch")
        assert result.mode == expected_modes[-1]
        assert_close(
            reference_posteriors(events, as_of, PARAMS),
            posteriors_as_of_spark(warehouse, as_of, PARAMS),
            as_of,
        )


def _stream() -> list[LoggedEvent]:
    """Six windows of traffic with clicks, and late, re-sent, future-dated, control and
    non-explore events across items and surfaces."""
    events = [e for window in range(6) for e in traffic(window, 0.2, 0.05, 40, 20)]
    odd = [
        ("impression", 1, 0, "home", "r1", "i1", True, None),
        ("click", 3, 40, "home", "r1", "i1", True, None),  # two windows late
        ("impression", 10, 2, "cart", "r2", "i2", True, "treatment"),
        ("purchase", 30, 40, "cart", "r2", "i2", True, "treatment"),
        ("impression", 12, 1, "cart", "r3", "i2", True, "control"),
        ("click", 13, 1, "cart", "r3", "i2", True, "control"),
        ("impression", 20, 0, "home", "r4", "i1", False, None),
        ("add_to_cart", 25, 5, "home", "r1", "i1", True, None),
        ("impression", 44, 1, "home", "r1", "i1", True, None),  # re-sent
        ("impression", 70, -8, "home", "r5", "i3", True, None),  # producer clock ahead
        ("click", 100, 1, "home", "r5", "i3", True, None),
        ("click", 5, 80, "home", "r1", "i1", True, None),  # beyond the attribution window
    ]
    for n, (kind, minute, lag, surface, request, item, explore, variant) in enumerate(odd):
        events.append(
            timed_event(f"odd{n}", kind, START, minute, lag, surface=surface,
                        request_id=request, item_id=item, explore=explore, variant=variant)
        )  # fmt: skip
    return events


def _spark_tables(warehouse: SparkWarehouse) -> dict[str, list]:
    runs = warehouse.table_rows("bandit_posterior_runs", "as_of")
    return {
        "aggregates": warehouse.table_rows(
            "bandit_reward_aggregates", "as_of,namespace,surface,item_id"
        ),
        "posteriors": warehouse.table_rows("bandit_posteriors", "as_of,namespace,surface,item_id"),
        "runs": [{k: v for k, v in r.asDict().items() if k != "computed_at"} for r in runs],
        "deltas": warehouse.table_rows(
            "bandit_metric_deltas",
            "as_of,window_start,namespace,surface,experiment,variant,explore",
        ),
    }


@pytest.mark.postgres
def test_spark_and_postgresql_store_the_same_windows(pg_engine, new_warehouse):
    events = _stream()
    load_events(pg_engine, events)
    warehouse = new_warehouse()
    warehouse.append_events(events)
    warehouse.append_events(events[:50])  # a re-sent batch: every event is stored once
    assert len(warehouse.table_rows("bandit_rewards", "event_id")) == len(events)

    scope = MetricsScope("default")
    for as_of in WINDOW_ENDS:
        on_postgres = materialise_window(
            pg_engine, as_of, PARAMS, future_scan=FUTURE_SCAN, metrics=scope
        )
        on_spark = materialise_window_spark(
            warehouse, as_of, PARAMS, future_scan=FUTURE_SCAN, metrics=scope
        )
        assert _figures(on_spark) == _figures(on_postgres)
        assert math.isclose(on_spark.reward_evidence, on_postgres.reward_evidence, rel_tol=1e-9)
        assert_close(
            posteriors_as_of(pg_engine, as_of, PARAMS),
            posteriors_as_of_spark(warehouse, as_of, PARAMS),
            as_of,
        )
    aggregates = rows(
        pg_engine,
        "SELECT as_of, namespace, surface, item_id, impressions, clicks, add_to_carts,"
        " purchases, reward_evidence, non_reward_evidence, late_corrections"
        " FROM bandit_reward_aggregates ORDER BY 1, 2, 3, 4",
    )
    stored = _spark_tables(warehouse)
    assert [(r.as_of.replace(tzinfo=None), *r[1:8], r[10]) for r in aggregates] == [
        (r.as_of, r.namespace, r.surface, r.item_id, r.impressions, r.clicks, r.add_to_carts,
         r.purchases, r.late_corrections)
        for r in stored["aggregates"]
    ]  # fmt: skip
    for want, have in zip(aggregates, stored["aggregates"], strict=True):
        assert math.isclose(want.reward_evidence, have.reward_evidence, rel_tol=1e-9, abs_tol=1e-12)
    # The metric rollups: the same deltas, row for row.
    deltas = rows(
        pg_engine,
        "SELECT as_of, window_start, namespace, surface, experiment, variant, explore,"
        " impressions, clicked, carted, purchased, reward_sum, reward_sq_sum"
        " FROM bandit_metric_deltas ORDER BY 1, 2, 3, 4, 5, 6, 7",
    )
    assert len(deltas) > len(WINDOW_ENDS)
    assert [(*(t.replace(tzinfo=None) for t in r[:2]), *r[2:11]) for r in deltas] == [
        (r.as_of, r.window_start, r.namespace, r.surface, r.experiment, r.variant, r.explore,
         r.impressions, r.clicked, r.carted, r.purchased)
        for r in stored["deltas"]
    ]  # fmt: skip
    for want, have in zip(deltas, stored["deltas"], strict=True):
        assert math.isclose(want.reward_sum, have.reward_sum, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(want.reward_sq_sum, have.reward_sq_sum, rel_tol=1e-9, abs_tol=1e-12)

    # Every rerun gives the same rows, to the last bit, and the same modes.
    for as_of in WINDOW_ENDS:
        materialise_window_spark(warehouse, as_of, PARAMS, future_scan=FUTURE_SCAN, metrics=scope)
    assert _spark_tables(warehouse) == stored
    assert [r["mode"] for r in stored["runs"]] == ["from_scratch"] + ["incremental"] * 5


def _figures(result) -> tuple:
    names = ("mode", "items_touched", "posterior_rows", "impressions", "clicks",
             "add_to_carts", "purchases", "late_corrections")  # fmt: skip
    return tuple(getattr(result, name) for name in names)


def test_changed_settings_start_from_scratch_and_a_rerun_replaces_the_window(new_warehouse):
    # Impressions outside exploration: they train only with train_on_all_impressions.
    events = [
        timed_event("a", "impression", START, 1, explore=False),
        timed_event("b", "click", START, 3, lag_minutes=17, explore=False),
    ]
    train_all = replace(PARAMS, train_on_all_impressions=True)
    warehouse = new_warehouse()
    warehouse.append_events(events)
    for as_of in WINDOW_ENDS[:2]:
        materialise_window_spark(warehouse, as_of, train_all, future_scan=FUTURE_SCAN)
    changed = replace(train_all, weight_click=2.0, prior_alpha=2.0, half_life_days=1 / 96)
    result = materialise_window_spark(warehouse, WINDOW_ENDS[2], changed, future_scan=FUTURE_SCAN)
    assert result.mode == "from_scratch"
    assert_close(
        reference_posteriors(events, WINDOW_ENDS[2], changed),
        posteriors_as_of_spark(warehouse, WINDOW_ENDS[2], changed),
        "changed",
    )
    # Rerun the first window with settings under which nothing trains: its partitions are
    # replaced by nothing, not kept.
    first = {"as_of": WINDOW_ENDS[0]}
    assert warehouse.scalar("posteriors/posterior_rows", first) == 1
    rerun = materialise_window_spark(warehouse, WINDOW_ENDS[0], PARAMS, future_scan=FUTURE_SCAN)
    assert (rerun.mode, rerun.items_touched, rerun.posterior_rows) == ("from_scratch", 0, 0)
    assert warehouse.scalar("posteriors/posterior_rows", first) == 0
    assert [r.as_of for r in warehouse.table_rows("bandit_reward_aggregates", "as_of")] == [
        WINDOW_ENDS[1].replace(tzinfo=None)
    ]


def test_the_empirical_prior_is_refused_on_spark(new_warehouse):
    empirical = PriorFitParameters("empirical", max_strength=20.0, min_items=2, min_evidence=0.5)
    with pytest.raises(NotImplementedError):
        materialise_window_spark(
            new_warehouse(), WINDOW_ENDS[0], PARAMS, future_scan=FUTURE_SCAN, prior=empirical
        )


def test_a_window_sees_events_appended_after_the_previous_one(new_warehouse):
    warehouse = new_warehouse()
    first = [timed_event("a", "impression", START, 1)]
    warehouse.append_events(first)
    materialise_window_spark(warehouse, WINDOW_ENDS[0], PARAMS, future_scan=FUTURE_SCAN)
    later = [timed_event("b", "click", START, 17, request_id="r1")]
    # Another writer of the same lake (a second session) appends the click.
    other = SparkWarehouse(warehouse.spark, warehouse.location, warehouse.database)
    other.append_events(later)
    result = materialise_window_spark(warehouse, WINDOW_ENDS[1], PARAMS, future_scan=FUTURE_SCAN)
    assert (result.mode, result.clicks) == ("incremental", 1)
    assert_close(
        reference_posteriors(first + later, WINDOW_ENDS[1], PARAMS),
        posteriors_as_of_spark(warehouse, WINDOW_ENDS[1], PARAMS),
        "appended",
    )
