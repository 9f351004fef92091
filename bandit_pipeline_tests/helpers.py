"""Small helpers shared by the tests."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text

from bandit_pipeline.defs.resources import WarehouseResource
from bandit_pipeline.ingest.validation import warehouse_time
from bandit_pipeline.policy import LoggedEvent
from bandit_pipeline.settings import Settings, default_settings
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade

# --- The test servers (``make test`` makes sure they answer) and the warehouse tables.

REDIS_URL = os.environ.get("BANDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_URL = os.environ.get(
    "BANDIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")
WAREHOUSE_TABLES = (
    "bandit_rewards",
    "bandit_rewards_rejected",
    "item_catalog",
    "item_catalog_rejected",
    "bandit_reward_aggregates",
    "bandit_posteriors",
    "bandit_posterior_runs",
    "bandit_candidate_pool",
    "bandit_metric_deltas",
    "bandit_experiments",
    "bandit_alerts",
    "bandit_killswitch_events",
    "bandit_decisions",
    "bandit_flag_events",
    "bandit_publications",
    "bandit_decision_snapshots",
    "bandit_decision_propensities",
    "bandit_priors",
)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def unique_name(prefix: str = "bandit_test") -> str:
    """A name of this test run alone: a database, a Redis key prefix."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def with_database(url: str, database: str) -> str:
    """``url`` with its database replaced."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def fresh_database(*, migrated: bool = True, prefix: str = "bandit_test") -> Iterator[str]:
    """A new database on the test server, dropped afterwards; yields its SQLAlchemy URL
    (psycopg 3), with the warehouse schema when ``migrated``."""
    name = unique_name(prefix)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(ADMIN_URL, name).replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        if migrated:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_redis_keys(prefix: str) -> None:
    """Delete every key under ``prefix`` on the test Redis."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def event(event_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid impression event, a few minutes old, with ``overrides`` applied."""
    row = {
        "event_id": event_id,
        "event_type": "impression",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "namespace": "default",
        "surface": "home",
        "user_id": "u1",
        "request_id": f"r-{event_id}",
        "item_id": "item-1",
        "slot": 2,
        "explore": True,
        "bandit_policy_id": "ts-v1",
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).all()


# --- Settings: the documented defaults, whatever the environment of the test run holds.

# The partitions of the tests' windows (November 2026); a deployment sets its own.
PARTITIONS_START = "2026-11-01-00:00"
DEFAULTS = default_settings()
DEFAULT_PARAMS = DEFAULTS.posterior_parameters()
FUTURE_SCAN = DEFAULTS.max_clock_skew
# Short half-life and attribution window so that decay and the window matter in a few hours.
PARAMS = replace(DEFAULT_PARAMS, half_life_days=1 / 24, attribution_window_hours=0.5)


def stamp(engine: Engine, moment: datetime) -> datetime | str:
    """A timestamp as the warehouse's driver takes it (SQLite stores ISO text)."""
    return warehouse_time(moment) if engine.dialect.name == "sqlite" else moment


# --- Event streams written straight into the warehouse, and their windows.

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
N_WINDOWS = 6
WINDOW_ENDS = [START + WINDOW * (k + 1) for k in range(N_WINDOWS)]
EXPERIMENT = "x"  # the experiment of test events that carry a variant
POSTERIOR_TABLES = (
    "bandit_reward_aggregates",
    "bandit_posteriors",
    "bandit_posterior_runs",
    "bandit_metric_deltas",
    "bandit_priors",
)
PROPERTY = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def logged_event(
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    ingested_at: datetime,
    surface: str,
    request_id: str,
    item_id: str,
    explore: bool,
    variant: str | None,
    namespace: str = "default",
) -> LoggedEvent:
    """An accepted event; one with a variant belongs to the experiment :data:`EXPERIMENT`."""
    experiment = EXPERIMENT if variant else None
    return LoggedEvent(
        event_id, event_type, occurred_at, ingested_at, namespace, surface, request_id,
        item_id, explore, experiment, variant,
    )  # fmt: skip


def timed_event(
    event_id: str,
    event_type: str,
    start: datetime,
    minute: float,
    lag_minutes: float = 0.0,
    *,
    surface: str = "home",
    request_id: str = "r1",
    item_id: str = "i1",
    explore: bool = True,
    variant: str | None = None,
) -> LoggedEvent:
    """An event ``minute`` minutes after ``start``, ingested ``lag_minutes`` later."""
    occurred = start + timedelta(minutes=minute)
    ingested = occurred + timedelta(minutes=lag_minutes)
    return logged_event(
        event_id, event_type, occurred, ingested, surface, request_id, item_id, explore, variant
    )


@st.composite
def event_streams(draw) -> list[LoggedEvent]:
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
            logged_event(
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


def traffic(
    window: int, explore_ctr: float, baseline_ctr: float, n_explore: int = 60, n_baseline: int = 200
) -> list[LoggedEvent]:
    """One window of impressions (and their clicks) with the given click-through rates."""
    rng = np.random.default_rng(window)
    begin = START + window * WINDOW
    events = []
    for kind, n, ctr in (("x", n_explore, explore_ctr), ("b", n_baseline, baseline_ctr)):
        for i in range(n):
            at = begin + timedelta(seconds=float(rng.uniform(0, 800)))
            key = f"w{window}-{kind}-{i}"
            explore = kind == "x"
            events.append(logged_event(f"{key}-i", "impression", at, at, "home", key, "item",
                                       explore, None))  # fmt: skip
            if rng.random() < ctr:
                click = at + timedelta(seconds=5)
                events.append(logged_event(f"{key}-c", "click", click, click, "home", key, "item",
                                           explore, None))  # fmt: skip
    return events


def as_of(window: int) -> datetime:
    """The end of the ``window``-th window after :data:`START`."""
    return START + (window + 1) * WINDOW


def reset(engine: Engine) -> None:
    """Empty the events and everything the job derives from them."""
    with engine.begin() as connection:
        for table in ("bandit_rewards", *POSTERIOR_TABLES):
            connection.execute(text(f"DELETE FROM {table}"))


def load_events(engine: Engine, events: list[LoggedEvent]) -> None:
    """Straight into the table, bypassing ingest validation (clock skew is allowed here)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, ingested_at,"
                " namespace, surface, user_id, request_id, item_id, slot, explore, experiment,"
                " variant) VALUES (:event_id, :event_type, :occurred_at, :ingested_at,"
                " :namespace, :surface, 'u', :request_id, :item_id, 0, :explore,"
                " :experiment, :variant)"
            ),
            [
                {
                    **asdict(e),
                    "occurred_at": stamp(engine, e.occurred_at),
                    "ingested_at": stamp(engine, e.ingested_at),
                }
                for e in events
            ],
        )


def warehouse_resource(engine: Engine, settings: Settings) -> WarehouseResource:
    """The warehouse resource of ``settings``, on ``engine``'s database: for the jobs and
    sensors the tests run through Dagster."""
    url = engine.url.render_as_string(hide_password=False)
    return WarehouseResource.from_settings(settings.model_copy(update={"warehouse_url": url}))


def assert_close(want, have, context) -> None:
    """The same items with the same posteriors, to a relative 1e-9."""
    assert want.keys() == have.keys(), context
    for item, values in want.items():
        for w, h in zip(values, have[item], strict=True):
            assert math.isclose(w, h, rel_tol=1e-9, abs_tol=1e-12), (context, item, values, have)


def one_item_with_late_outcomes(window_start: datetime) -> list[LoggedEvent]:
    """Impressions of one item before the window whose outcomes arrive in it, and
    impressions in the window with their outcomes: terms of both signs and many sizes."""
    kinds = ("click", "add_to_cart", "purchase")
    events = []
    before = window_start - timedelta(hours=6)
    for k in range(300):
        request = f"b{k}"
        events.append(timed_event(f"bi{k}", "impression", before, 1.1 * k, request_id=request))
        if k % 4:  # ingested 400 minutes later: inside the window, a late outcome
            events.append(
                timed_event(f"bo{k}", kinds[k % 3], before, 1.1 * k + 2, 400, request_id=request)
            )
    inside = window_start + timedelta(hours=1)
    for k in range(300):
        request = f"w{k}"
        events.append(timed_event(f"wi{k}", "impression", inside, 3 * k, request_id=request))
        if k % 3:
            events.append(
                timed_event(f"wo{k}", kinds[k % 7 % 3], inside, 3 * k + 1, request_id=request)
            )
    return events


def reorder_staged_keys(connection: Connection) -> Iterator[str]:
    """Rewrite the staged bandit_window_keys in three different row orders, yielding after
    each: what a statement over them gives must not depend on the order it reads them in."""
    for order in ("request_id", "md5(request_id)", "request_id DESC"):
        connection.execute(
            text(
                "CREATE TEMP TABLE reordered AS SELECT * FROM bandit_window_keys "
                f"ORDER BY {order}; DROP TABLE bandit_window_keys; "
                "ALTER TABLE reordered RENAME TO bandit_window_keys"
            )
        )
        yield order
