"""The posterior pipeline against an independent evaluation of DESIGN.md section 3."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text

from bandit_pipeline.ingest.validation import warehouse_time
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.window_update import materialise_window, posteriors_as_of
from bandit_pipeline_tests.helpers import rows
from bandit_pipeline_tests.reference import (
    EXPERIMENT,
    Event,
    reference_posteriors,
    timed_event,
)

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
N_WINDOWS = 6
WINDOW_ENDS = [START + WINDOW * (k + 1) for k in range(N_WINDOWS)]
POSTERIOR_TABLES = (
    "bandit_reward_aggregates",
    "bandit_posteriors",
    "bandit_posterior_runs",
    "bandit_metric_deltas",
)

# Short half-life and attribution window so that decay and the window matter in a few hours.
PARAMS = PosteriorParameters(half_life_days=1 / 24, attribution_window_hours=0.5)


@st.composite
def event_streams(draw) -> list[Event]:
    """Impressions, re-sent impressions, outcomes (upgraded later, late, outside the
    attribution window, dated before their impression), control and non-explore traffic."""
    n = draw(st.integers(1, 40))
    events = []
    seconds = st.integers(-3600, int(N_WINDOWS * WINDOW.total_seconds()))
    for i in range(n):
        occurred = START + timedelta(
            seconds=draw(seconds), microseconds=draw(st.integers(0, 999_999))
        )
        # Usually ingested shortly after, sometimes hours late, sometimes before (clock skew).
        delay = draw(st.one_of(st.integers(0, 120), st.integers(-600, 7200)))
        events.append(
            Event(
                event_id=f"e{i}",
                event_type=draw(
                    st.sampled_from(
                        ["impression", "impression", "click", "add_to_cart", "purchase"]
                    )
                ),
                occurred_at=occurred,
                ingested_at=occurred + timedelta(seconds=delay),
                surface=draw(st.sampled_from(["home", "cart"])),
                request_id=f"r{draw(st.integers(0, 5))}",
                item_id=f"i{draw(st.integers(0, 2))}",
                explore=draw(st.booleans()) or draw(st.booleans()),
                variant=draw(st.sampled_from([None, None, "treatment", "control"])),
            )
        )
    return events


def reset(engine) -> None:
    with engine.begin() as connection:
        for table in ("bandit_rewards", *POSTERIOR_TABLES):
            connection.execute(text(f"DELETE FROM {table}"))


def load_events(engine, events: list[Event]) -> None:
    """Straight into the table, bypassing ingest validation (clock skew is allowed here)."""
    sqlite = engine.dialect.name == "sqlite"

    def stamp(moment: datetime):
        return warehouse_time(moment) if sqlite else moment

    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, ingested_at,"
                " namespace, surface, user_id, request_id, item_id, slot, explore, experiment,"
                " variant) VALUES (:event_id, :event_type, :occurred_at, :ingested_at,"
                " :namespace, :surface, :user_id, :request_id, :item_id, 0, :explore,"
                " :experiment, :variant)"
            ),
            [
                {
                    **e.__dict__,
                    "occurred_at": stamp(e.occurred_at),
                    "ingested_at": stamp(e.ingested_at),
                    "experiment": EXPERIMENT if e.variant else None,
                }
                for e in events
            ],
        )


def assert_matches_reference(engine, events, as_of, params=PARAMS) -> None:
    expected = reference_posteriors(events, as_of, params)
    got = posteriors_as_of(engine, as_of, params)
    prior = (params.prior_alpha, params.prior_beta)
    for item in set(expected) | set(got):
        want = expected.get(item, prior)
        have = got.get(item, prior)
        for w, h in zip(want, have, strict=True):
            assert math.isclose(w, h, rel_tol=1e-9, abs_tol=1e-12), (item, as_of, want, have)


PROPERTY = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(events=event_streams())
def test_partition_by_partition_matches_the_definition(engine, events):
    reset(engine)
    load_events(engine, events)
    for as_of in WINDOW_ENDS:
        materialise_window(engine, as_of, PARAMS)
        assert_matches_reference(engine, events, as_of)


@PROPERTY
@given(events=event_streams(), pick=st.integers(0, N_WINDOWS - 1))
def test_any_partition_on_its_own_matches_the_definition(engine, events, pick):
    reset(engine)
    load_events(engine, events)
    result = materialise_window(engine, WINDOW_ENDS[pick], PARAMS)
    assert result.mode == "from_scratch"
    assert_matches_reference(engine, events, WINDOW_ENDS[pick])


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
        materialise_window(engine, as_of, PARAMS)
    in_order = table_snapshot(engine)
    states = {t: posteriors_as_of(engine, t, PARAMS) for t in WINDOW_ENDS}

    # Rerun every partition: identical rows, nothing appended.
    for as_of in WINDOW_ENDS:
        assert (
            materialise_window(engine, as_of, PARAMS).mode == "incremental"
            or as_of == WINDOW_ENDS[0]
        )
    assert table_snapshot(engine) == in_order

    # Backfill the same range backwards from empty tables.
    reset(engine)
    load_events(engine, events)
    for as_of in reversed(WINDOW_ENDS):
        materialise_window(engine, as_of, PARAMS)
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
        materialise_window(engine, as_of, PARAMS)
    assert table_snapshot(engine)["aggregates"] == in_order["aggregates"]


def test_changed_settings_and_a_backfill_recompute_history(engine):
    events = _fixed_events()
    reset(engine)
    load_events(engine, events)
    for as_of in WINDOW_ENDS:
        materialise_window(engine, as_of, PARAMS)
    changed = PosteriorParameters(
        weight_click=2.0,
        weight_purchase=4.0,
        prior_alpha=2.0,
        prior_beta=5.0,
        half_life_days=1 / 96,
        attribution_window_hours=0.25,
    )
    results = [materialise_window(engine, as_of, changed) for as_of in WINDOW_ENDS]
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
    first = materialise_window(engine, WINDOW_ENDS[0], PARAMS)
    second = materialise_window(engine, WINDOW_ENDS[1], PARAMS)
    assert (first.impressions, first.clicks, first.late_corrections) == (1, 0, 0)
    assert (second.impressions, second.clicks, second.late_corrections) == (0, 1, 1)
    assert second.mode == "incremental"
    assert_matches_reference(engine, events, WINDOW_ENDS[1])


def _fixed_events() -> list[Event]:
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
