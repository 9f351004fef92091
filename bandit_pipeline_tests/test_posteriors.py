"""The posterior pipeline against the reference evaluation of the definition."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bandit_pipeline.policy import LoggedEvent, decay_factor, reference_posteriors
from bandit_pipeline.policy.prior import PriorFitParameters
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse.sql import sql_file, sql_statement
from bandit_pipeline.window_keys import evidence_params, stage_window_keys
from bandit_pipeline.window_update import materialise_window, posteriors_as_of
from bandit_pipeline_tests.helpers import (
    FUTURE_SCAN,
    N_WINDOWS,
    PARAMS,
    PROPERTY,
    START,
    WINDOW_ENDS,
    event_streams,
    load_events,
    one_item_with_late_outcomes,
    reorder_staged_keys,
    reset,
    rows,
    timed_event,
)

# An empirical prior that small random streams reach: two items with half an impression.
EMPIRICAL = PriorFitParameters("empirical", max_strength=20.0, min_items=2, min_evidence=0.5)
PRIORS = pytest.mark.parametrize("prior", [None, EMPIRICAL], ids=["fixed", "empirical"])


def assert_matches_reference(engine, events, as_of, params=PARAMS, prior=None) -> None:
    expected = reference_posteriors(events, as_of, params, prior)
    got = posteriors_as_of(engine, as_of, params)
    for item in set(expected) | set(got):
        assert item in expected, (item, as_of)
        assert item in got, (item, as_of)
        want = expected[item]
        have = got[item]
        for w, h in zip(want, have, strict=True):
            assert math.isclose(w, h, rel_tol=1e-9, abs_tol=1e-12), (item, as_of, want, have)


# Two items at exactly EMPIRICAL's threshold (half an impression) one half-life later, at
# 13:00: the windows' running decay and the reference's one power differ in the last bits.
AT_THE_THRESHOLD = [
    timed_event("t0", "impression", START, 0, item_id="i0"),
    timed_event("t1", "impression", START, 0, item_id="i1"),
]


@PRIORS
@PROPERTY
@given(events=event_streams())
@example(events=AT_THE_THRESHOLD)
def test_partition_by_partition_matches_the_definition(engine, events, prior):
    reset(engine)
    load_events(engine, events)
    for as_of in WINDOW_ENDS:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN, prior=prior)
        assert_matches_reference(engine, events, as_of, prior=prior)


@PRIORS
@PROPERTY
@given(events=event_streams(), pick=st.integers(0, N_WINDOWS - 1))
def test_any_partition_on_its_own_matches_the_definition(engine, events, pick, prior):
    reset(engine)
    load_events(engine, events)
    as_of = WINDOW_ENDS[pick]
    result = materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN, prior=prior)
    assert result.mode == "from_scratch"
    assert_matches_reference(engine, events, as_of, prior=prior)


def table_snapshot(engine):
    return {
        "aggregates": rows(engine, "SELECT * FROM bandit_reward_aggregates ORDER BY 1, 2, 3, 4"),
        "posteriors": rows(engine, "SELECT * FROM bandit_posteriors ORDER BY 1, 2, 3, 4"),
    }


def test_reruns_and_out_of_order_backfills_give_the_same_states(engine):
    events = _fixed_events()
    reset(engine)
    load_events(engine, events)
    for as_of in WINDOW_ENDS:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN)
    in_order = table_snapshot(engine)
    states = {t: posteriors_as_of(engine, t, PARAMS) for t in WINDOW_ENDS}

    # Rerun every partition: identical rows, nothing appended.
    for as_of in WINDOW_ENDS:
        assert (
            materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN).mode == "incremental"
            or as_of == WINDOW_ENDS[0]
        )
    assert table_snapshot(engine) == in_order

    # Backfill the same range backwards from empty tables.
    reset(engine)
    load_events(engine, events)
    for as_of in reversed(WINDOW_ENDS):
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN)
    assert table_snapshot(engine)["aggregates"] == in_order["aggregates"]
    for as_of in WINDOW_ENDS:
        got = posteriors_as_of(engine, as_of, PARAMS)
        assert got.keys() == states[as_of].keys()
        for item, value in got.items():
            assert all(
                math.isclose(a, b, rel_tol=1e-9)
                for a, b in zip(value, states[as_of][item], strict=True)
            )
    # ... and a rerun in order afterwards converges to the in-order tables.
    for as_of in WINDOW_ENDS:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN)
    assert table_snapshot(engine)["aggregates"] == in_order["aggregates"]


def test_changed_settings_and_a_backfill_recompute_history(engine):
    events = _fixed_events()
    reset(engine)
    load_events(engine, events)
    for as_of in WINDOW_ENDS:
        materialise_window(engine, as_of, PARAMS, future_scan=FUTURE_SCAN)
    changed = replace(
        PARAMS,
        weight_click=2.0,
        weight_purchase=4.0,
        prior_alpha=2.0,
        prior_beta=5.0,
        half_life_days=1 / 96,
        attribution_window_hours=0.25,
    )
    results = [
        materialise_window(engine, as_of, changed, future_scan=FUTURE_SCAN) for as_of in WINDOW_ENDS
    ]
    # The first window notices the other fingerprint and starts from scratch.
    assert [r.mode for r in results] == ["from_scratch"] + ["incremental"] * (N_WINDOWS - 1)
    for as_of in WINDOW_ENDS:
        assert_matches_reference(engine, events, as_of, changed)
    assert reference_posteriors(events, WINDOW_ENDS[-1], changed) != reference_posteriors(
        events, WINDOW_ENDS[-1], PARAMS
    )


def test_window_figures_count_new_impressions_and_late_rewards(engine):
    reset(engine)
    events = [
        timed_event("a", "impression", START, 1),
        # the click arrives one window late
        timed_event("b", "click", START, 3, lag_minutes=17),
        # control and non-explore impressions never train
        timed_event("c", "impression", START, 1, request_id="r2", variant="control"),
        timed_event("d", "impression", START, 1, request_id="r3", explore=False),
    ]
    load_events(engine, events)
    first = materialise_window(engine, WINDOW_ENDS[0], PARAMS, future_scan=FUTURE_SCAN)
    second = materialise_window(engine, WINDOW_ENDS[1], PARAMS, future_scan=FUTURE_SCAN)
    assert (first.impressions, first.clicks, first.late_corrections) == (1, 0, 0)
    assert (second.impressions, second.clicks, second.late_corrections) == (0, 1, 1)
    assert second.mode == "incremental"
    assert_matches_reference(engine, events, WINDOW_ENDS[1])


def _fixed_events() -> list[LoggedEvent]:
    """A deterministic stream: late rewards, an upgrade, a re-sent and a non-explore impression."""
    stream = [
        ("impression", 1, 0, "home", True, None),
        ("click", 3, 1, "home", True, None),
        ("impression", 10, 2, "cart", True, "treatment"),
        ("purchase", 30, 40, "cart", True, "treatment"),
        ("impression", 20, 0, "home", False, None),
        ("add_to_cart", 25, 5, "home", True, None),
        ("impression", 44, 1, "home", True, None),
        ("impression", 40, 30, "home", True, None),
        ("click", 80, 2, "home", True, None),
    ]
    return [
        timed_event(
            f"e{i}",
            kind,
            START,
            minute,
            lag,
            surface=surface,
            request_id=f"r{i % 4}",
            item_id=f"i{i % 3}",
            explore=explore,
            variant=variant,
        )
        for i, (kind, minute, lag, surface, explore, variant) in enumerate(stream)
    ]


# --- PostgreSQL's window statements: the shared ones, unsorted, with exact sums

EXACT_SUM = re.compile(r"\(SUM\(ROUND\((\w+) \* 1e18\)::bigint\) / 1e18\)::float8\s+AS (\w+)")


def test_postgresql_window_evidence_is_the_shared_query_with_exact_sums():
    postgres = sql_file("posteriors/window_evidence", "postgresql").statements[0]
    assert len(EXACT_SUM.findall(postgres)) == 2
    assert (
        EXACT_SUM.sub(r"SUM(\1) AS \2", postgres)
        == (sql_file("posteriors/window_evidence").statements[0])
    )


def test_postgresql_window_summary_is_the_shared_query_with_a_numeric_sum():
    shared = sql_file("posteriors/window_summary").statements[0]
    postgres = sql_file("posteriors/window_summary", "postgresql").statements[0]
    assert postgres == shared.replace(
        "SUM(reward_evidence), 0.0", "SUM(reward_evidence::numeric)::float8, 0.0"
    )
    assert postgres != shared


STAGED_KEYS = "SELECT * FROM bandit_window_keys"
# Keys of every kind the two stages treat apart, around the window [12:30, 12:45).
EVERY_KIND_OF_KEY = [
    timed_event("f1", "impression", START, 33, -6, request_id="f1", explore=False),
    timed_event("f2", "impression", START, 34, -6, request_id="f2"),
    timed_event("o1", "click", START, 35, 0, request_id="o1"),  # no impression at all
    timed_event("l1", "impression", START, 20, 0, request_id="l1"),
    timed_event("l2", "click", START, 21, 15, request_id="l1"),  # late
    timed_event("r1", "impression", START, 22, 0, request_id="r1", variant="control"),
    timed_event("r2", "impression", START, 36, 0, request_id="r1", variant="control"),
    timed_event("w1", "impression", START, 37, 0, request_id="w1", explore=False),
]


@PROPERTY
@given(events=event_streams(), future_scan=st.sampled_from([timedelta(0), FUTURE_SCAN]))
@example(events=EVERY_KIND_OF_KEY, future_scan=FUTURE_SCAN)
def test_postgresql_stages_the_rows_of_the_shared_query(pg_engine, events, future_scan):
    """PostgreSQL's own stage (window keys written, earlier rows merged by update) holds
    exactly the rows of posteriors/window_keys.sql, the other engines' stage, in every
    window of streams with late, re-sent, future-dated and outcome-only keys."""
    postgres = sql_file("posteriors/stage_window_keys", "postgresql")
    assert "ANALYZE bandit_window_keys" in postgres.statements
    shared = sql_statement("posteriors/window_keys", "postgresql")
    reset(pg_engine)
    load_events(pg_engine, events)
    with pg_engine.begin() as connection:
        for as_of in [*WINDOW_ENDS, WINDOW_ENDS[-1] + timedelta(hours=3)]:
            window_start = as_of - WINDOW
            bind = evidence_params(PARAMS, window_start, as_of, future_scan)
            for statement in postgres.clauses():
                connection.execute(statement, bind)
            staged = connection.exec_driver_sql(STAGED_KEYS)
            columns, have = list(staged.keys()), Counter(map(tuple, staged))
            queried = connection.execute(shared, bind)
            assert columns == list(queried.keys())
            assert have == Counter(map(tuple, queried)), as_of
        connection.rollback()


def test_evidence_sums_do_not_depend_on_the_order_of_the_staged_keys(pg_engine):
    as_of = WINDOW_ENDS[-1]
    window_start = as_of - timedelta(days=1)
    events = one_item_with_late_outcomes(window_start)
    reset(pg_engine)
    load_events(pg_engine, events)
    bind = evidence_params(PARAMS, window_start, as_of, timedelta(0))
    plain = sql_statement("posteriors/window_evidence")  # a sum of doubles
    exact = sql_statement("posteriors/window_evidence", "postgresql")
    results: dict[str, list] = {"plain": [], "exact": []}
    with pg_engine.begin() as connection:
        stage_window_keys(connection, PARAMS, window_start, as_of, timedelta(0))
        for _ in reorder_staged_keys(connection):
            results["plain"].append(connection.execute(plain, bind).one())
            results["exact"].append(connection.execute(exact, bind).one())
        connection.rollback()
    # The orders change a plain sum of doubles, and not the exact one.
    assert len({tuple(r) for r in results["plain"]}) > 1
    assert len({tuple(r) for r in results["exact"]}) == 1
    row = results["exact"][0]
    assert row.late_corrections == 225  # each late outcome raises its impression's reward
    assert row.impressions == 300
    # The window's evidence is what the definition adds between the window's ends.
    then = reference_posteriors(events, window_start, PARAMS)[("default", "home", "i1")]
    now = reference_posteriors(events, as_of, PARAMS)[("default", "home", "i1")]
    decay = decay_factor((as_of - window_start).total_seconds(), PARAMS.half_life_seconds)
    added = (row.reward_evidence, row.non_reward_evidence)
    priors = (PARAMS.prior_alpha, PARAMS.prior_beta)
    for prior, before, after, evidence in zip(priors, then, now, added, strict=True):
        assert math.isclose(prior + (before - prior) * decay + evidence, after, rel_tol=1e-12)
