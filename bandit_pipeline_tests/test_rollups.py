"""Metric rollups against the reference evaluation of their definition."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_pipeline.monitoring.rollups import MetricsScope, delta_params, materialise_metrics
from bandit_pipeline.policy import reference_rollups
from bandit_pipeline.warehouse.sql import sql_statement
from bandit_pipeline.window_keys import stage_window_keys
from bandit_pipeline.window_update import materialise_window
from bandit_pipeline_tests.helpers import (
    FUTURE_SCAN,
    PARAMS,
    PROPERTY,
    WINDOW_ENDS,
    event_streams,
    load_events,
    one_item_with_late_outcomes,
    reorder_staged_keys,
    reset,
    rows,
)

GROUPED = (
    "SELECT window_start, namespace, surface, experiment, variant, explore,"
    " SUM(impressions), SUM(clicked), SUM(carted), SUM(purchased), SUM(reward_sum),"
    " SUM(reward_sq_sum) FROM bandit_metric_deltas"
    " GROUP BY window_start, namespace, surface, experiment, variant, explore"
)


def stored_rollups(engine) -> dict[tuple, tuple]:
    result = {}
    for row in rows(engine, GROUPED):
        window_start = row[0]
        if isinstance(window_start, str):
            window_start = datetime.fromisoformat(window_start).replace(tzinfo=UTC)
        values = tuple(row[6:])
        if any(values):  # groups whose contributions cancelled out are empty
            result[(window_start.astimezone(UTC), *row[1:6])] = values
    return result


def assert_rollups_match(engine, events, as_of, params=PARAMS) -> None:
    expected = reference_rollups(events, as_of, params)
    got = stored_rollups(engine)
    assert got.keys() == expected.keys()
    for group, values in expected.items():
        for want, have in zip(values, got[group], strict=True):
            assert math.isclose(want, have, rel_tol=1e-9, abs_tol=1e-9), (group, values, got[group])


# Runs from before the earliest ingestion in event_streams() to the end of the stream.
RUNS = [WINDOW_ENDS[0] + k * (WINDOW_ENDS[1] - WINDOW_ENDS[0]) for k in range(-8, len(WINDOW_ENDS))]


@PROPERTY
@given(events=event_streams())
def test_rollups_run_by_run_match_the_definition(engine, events):
    reset(engine)
    load_events(engine, events)
    for as_of in RUNS:
        materialise_metrics(engine, as_of, PARAMS, "default")
    assert_rollups_match(engine, events, RUNS[-1])


@PROPERTY
@given(events=event_streams(), order=st.permutations(range(len(RUNS))), rerun=st.integers(0, 13))
def test_reruns_in_any_order_give_the_same_rollups(engine, events, order, rerun):
    """Each run stores only what its own window changed: any order of runs, and reruns,
    give the same totals."""
    reset(engine)
    load_events(engine, events)
    for index in [*order, rerun, rerun]:
        materialise_metrics(engine, RUNS[index], PARAMS, "default")
    assert_rollups_match(engine, events, RUNS[-1])


@PROPERTY
@given(events=event_streams())
def test_rollups_written_with_the_posteriors_match_the_definition(engine, events):
    """The job writes the rollups in the posterior step's transaction, from the same
    staged impression keys: the same totals as the definition."""
    reset(engine)
    load_events(engine, events)
    scope = MetricsScope("default")
    for as_of in RUNS:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN, metrics=scope)
    assert_rollups_match(engine, events, RUNS[-1])


# Weights in other orders than the funnel's, with ties and a zero, and not whole numbers:
# the rollups count each impression's largest-weight outcome.
ODD_WEIGHTS = pytest.mark.parametrize(
    "weights",
    [(0.1, 0.7, 1.3), (5.0, 0.3, 1.7), (2.0, 2.0, 0.0)],
    ids=["fractional", "click heaviest", "tie and zero"],
)


@ODD_WEIGHTS
@settings(PROPERTY, max_examples=12)
@given(events=event_streams())
def test_rollups_with_any_weights_match_the_definition(engine, events, weights):
    params = replace(
        PARAMS, weight_click=weights[0], weight_add_to_cart=weights[1], weight_purchase=weights[2]
    )
    reset(engine)
    load_events(engine, events)
    for as_of in RUNS:
        materialise_metrics(engine, as_of, params, "default")
    assert_rollups_match(engine, events, RUNS[-1], params)


def test_rollups_do_not_depend_on_the_order_of_the_staged_keys(pg_engine):
    """Reward sums are counts times weights: the same to the last bit in any order, even
    with weights that are not whole numbers."""
    as_of = WINDOW_ENDS[-1]
    window_start = as_of - timedelta(days=1)
    params = replace(PARAMS, weight_click=0.1, weight_add_to_cart=0.7, weight_purchase=1.3)
    reset(pg_engine)
    load_events(pg_engine, one_item_with_late_outcomes(window_start))
    deltas = sql_statement("metrics/window_deltas")
    bind = delta_params(as_of, params)
    results = []
    with pg_engine.begin() as connection:
        stage_window_keys(connection, params, window_start, as_of, timedelta(0))
        for _ in reorder_staged_keys(connection):
            results.append(sorted(tuple(row) for row in connection.execute(deltas, bind)))
        connection.rollback()
    assert results[0] == results[1] == results[2]
    assert results[0]  # the window changed some rollups
