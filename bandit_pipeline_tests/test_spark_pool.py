"""The catalog, the candidate pool and its publication, and the kill switch, on the Spark
warehouse (docs/spark.md): against PostgreSQL on the same catalog and events, published to
the test Redis. Runs on the session's local Spark (conftest.py)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bandit_pipeline.ingest import load_catalog
from bandit_pipeline.monitoring import quality
from bandit_pipeline.monitoring.alerts import evaluate_ctr_alerts
from bandit_pipeline.monitoring.killswitch import (
    KillSwitchPolicy,
    evaluate_killswitch,
    reset_killswitch,
)
from bandit_pipeline.monitoring.rollups import MetricsScope, newest_rollup_run
from bandit_pipeline.pool import build_candidate_pool, snapshot_version
from bandit_pipeline.spark_pool import build_candidate_pool_spark, publish_pools_spark
from bandit_pipeline.spark_window import materialise_window_spark
from bandit_pipeline.store_record import restore, set_flag
from bandit_pipeline.warehouse.spark import metric_view_statement
from bandit_pipeline.warehouse.spark_ingest import load_catalog_spark
from bandit_pipeline.warehouse.sql import sql_file
from bandit_pipeline.window_update import materialise_window
from bandit_pipeline_tests.helpers import (
    DEFAULT_PARAMS,
    DEFAULTS,
    FUTURE_SCAN,
    START,
    WINDOW_ENDS,
    delete_redis_keys,
    load_events,
    rows,
    timed_event,
    traffic,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

POOL = replace(DEFAULTS.pool_parameters(), surfaces=("home", "cart"), graduation_impressions=20.0)
BAD = '{"item_id": "bad", "availability": 7}'
CATALOG = [
    # item_id, category, price, availability, freshness
    ("fresh-1", "shoes", 50.0, 0.9, 0.9),
    ("fresh-2", "shoes", 60.0, 0.5, 0.6),
    ("shoes-3", "shoes", 55.0, 0.8, 0.8),
    ("no-price", "shoes", None, 0.9, 0.9),
    ("outlier", "shoes", 5000.0, 0.9, 0.9),
    ("sold-out", "shoes", 50.0, 0.05, 0.9),
    ("stale", "shoes", 50.0, 0.9, 0.1),
    ("graduated", "shoes", 50.0, 0.9, 0.9),
]


def _catalog_file(path, items, *, bad: bool = True) -> str:
    lines = [
        json.dumps(
            {"item_id": i, "category": c, "price": p, "availability": a, "freshness_index": f}
        )
        for i, c, p, a, f in items
    ]
    if bad:
        lines.append(BAD)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _events() -> list:
    """30 explored impressions of 'graduated' on home (it graduates), a few of fresh-1 on
    home and cart with clicks."""
    events = [
        timed_event(f"g{n}", "impression", START, 1 + n * 0.1, request_id=f"g{n}",
                    item_id="graduated")
        for n in range(30)
    ]  # fmt: skip
    for n, surface in enumerate(("home", "home", "cart")):
        events.append(timed_event(f"f{n}", "impression", START, 2, surface=surface,
                                  request_id=f"f{n}", item_id="fresh-1"))  # fmt: skip
        events.append(timed_event(f"c{n}", "click", START, 3, surface=surface,
                                  request_id=f"f{n}", item_id="fresh-1"))  # fmt: skip
    return events


@pytest.mark.postgres
def test_the_pool_on_spark_is_postgresqls_and_publishes(
    pg_engine, new_warehouse, redis_store, redis_prefix, tmp_path
):
    path = _catalog_file(tmp_path / "catalog.jsonl", CATALOG)
    on_postgres = load_catalog(pg_engine, path, DEFAULTS)
    lake = new_warehouse()
    on_spark = load_catalog_spark(lake, path, DEFAULTS)
    assert (on_spark.inserted, on_spark.rejected) == (on_postgres.inserted, on_postgres.rejected)
    assert (on_spark.inserted, on_spark.rejected) == (len(CATALOG), 1)

    events = _events()
    load_events(pg_engine, events)
    lake.append_events(events)
    as_of = WINDOW_ENDS[0]
    materialise_window(pg_engine, as_of, DEFAULT_PARAMS, future_scan=FUTURE_SCAN)
    materialise_window_spark(lake, as_of, DEFAULT_PARAMS, future_scan=FUTURE_SCAN)

    want = build_candidate_pool(pg_engine, as_of, "default", POOL, DEFAULT_PARAMS)
    have = build_candidate_pool_spark(lake, as_of, "default", POOL, DEFAULT_PARAMS)
    assert (have.eligible, have.excluded) == (want.eligible, want.excluded)
    assert have.excluded["home"]["graduated"] == 1
    stored = rows(
        pg_engine,
        "SELECT surface, item_id, alpha, beta, evidence FROM bandit_candidate_pool"
        " ORDER BY surface, item_id",
    )
    lake_rows = lake.table_rows("bandit_candidate_pool", "surface,item_id")
    assert [(r.surface, r.item_id) for r in lake_rows] == [(r[0], r[1]) for r in stored]
    for want_row, have_row in zip(stored, lake_rows, strict=True):
        have_values = (have_row.alpha, have_row.beta, have_row.evidence)
        for w, h in zip(want_row[2:], have_values, strict=True):
            assert math.isclose(w, h, rel_tol=1e-9), (want_row, have_row)

    # The quality suites pass on the lake with the same rows as on PostgreSQL.
    for check, args in (
        (quality.check_rewards, ()),
        (quality.check_aggregates, ()),
        (quality.check_posteriors, (DEFAULT_PARAMS,)),
        (quality.check_pool, (POOL,)),
    ):
        on_lake, on_pg = check(lake, as_of, *args), check(pg_engine, as_of, *args)
        assert (on_lake.success, on_lake.rows) == (True, on_pg.rows), on_lake
        assert on_pg.success
    # A posterior below its prior fails its suite, naming the expectation.
    lake.spark.sql(
        "INSERT INTO bandit_posteriors PARTITION (as_of = :as_of)"
        " VALUES ('default', 'home', 'broken', 0.5, 1.0)",
        args={"as_of": as_of},
    )
    broken = quality.check_posteriors(lake, as_of, DEFAULT_PARAMS)
    assert not broken.success
    assert broken.failures == ["expect_column_values_to_be_between(alpha): 1 unexpected"]

    # Publishing: each surface's snapshot in the store, recorded in the lake.
    published = publish_pools_spark(lake, redis_store, as_of, "default", POOL.surfaces)
    assert published == {s: want.eligible[s] for s in POOL.surfaces}
    home = redis_store.load("default", "home")
    assert home.version == snapshot_version(as_of)
    assert list(home.item_ids) == sorted(r.item_id for r in lake_rows if r.surface == "home")
    fresh = home.item_ids.index("fresh-1")
    assert math.isclose(home.alpha[fresh], next(
        r.alpha for r in lake_rows if (r.surface, r.item_id) == ("home", "fresh-1")
    ), rel_tol=1e-12)  # fmt: skip
    records = lake.table_rows("bandit_publications", "surface")
    assert [(r.surface, r.version, r.items) for r in records] == [
        ("cart", snapshot_version(as_of), want.eligible["cart"]),
        ("home", snapshot_version(as_of), want.eligible["home"]),
    ]
    # An emptied store comes back from the lake's record: the snapshots and the flags.
    set_flag(lake, redis_store, "default", "bandit_explore_slots", "2", actor="test")
    delete_redis_keys(redis_prefix)
    report = restore(lake, redis_store, "default")
    assert report.emptied
    assert report.snapshots == dict.fromkeys(POOL.surfaces, snapshot_version(as_of))
    assert report.flags == {"bandit_explore_slots": "2"}
    assert list(redis_store.load("default", "home").item_ids) == list(home.item_ids)
    assert not restore(lake, redis_store, "default").restored

    # An older window's pool is not built or published over a newer one.
    older = as_of - timedelta(minutes=15)
    assert build_candidate_pool_spark(lake, older, "default", POOL, DEFAULT_PARAMS).skipped
    assert publish_pools_spark(lake, redis_store, older, "default", POOL.surfaces) == {
        "home": None,
        "cart": None,
    }


def test_a_catalog_load_upserts_items_and_keeps_the_earliest_first_seen(new_warehouse, tmp_path):
    lake = new_warehouse()
    first = _catalog_file(tmp_path / "first.jsonl", CATALOG[:3], bad=False)
    load_catalog_spark(lake, first, DEFAULTS)
    before = {r.item_id: r for r in lake.table_rows("item_catalog", "item_id")}
    early = datetime(2026, 1, 1, tzinfo=UTC)
    later = tmp_path / "later.jsonl"
    later.write_text(
        json.dumps({"item_id": "fresh-2", "category": "shoes", "price": 65.0,
                    "availability": 0.7, "freshness_index": 0.5,
                    "first_seen_at": early.isoformat()}) + "\n"
        + json.dumps({"item_id": "new", "category": "bags", "price": 20.0,
                      "availability": 1.0, "freshness_index": 1.0}) + "\n"
        + BAD + "\n"
    )  # fmt: skip
    report = load_catalog_spark(lake, str(later), DEFAULTS)
    assert (report.inserted, report.rejected) == (2, 1)
    load_catalog_spark(lake, str(later), DEFAULTS)  # again: the same catalog, one bad row
    after = {r.item_id: r for r in lake.table_rows("item_catalog", "item_id")}
    assert sorted(after) == ["fresh-1", "fresh-2", "new", "shoes-3"]
    assert (after["fresh-2"].price, after["fresh-2"].availability) == (65.0, 0.7)
    assert after["fresh-2"].first_seen_at == early.replace(tzinfo=None)
    untouched = [
        {k: v for k, v in r.asDict().items() if k != "batch_id"}
        for r in (before["fresh-1"], after["fresh-1"])
    ]
    assert untouched[0] == untouched[1]
    # Loaded twice: first seen at the first load, updated by the second.
    assert after["new"].first_seen_at < after["new"].updated_at
    rejected = lake.table_rows("item_catalog_rejected", "line_number")
    assert [(r.raw, r.line_number) for r in rejected] == [(BAD, 3)]


def test_the_safeguards_act_on_the_lakes_rollups(new_warehouse, redis_store):
    """Exploration far below the baseline for an hour: on the lake, the CTR alert opens an
    episode and notifies it once, the kill switch trips the surface in the store and
    records it, and a deliberate reset re-arms it."""
    lake = new_warehouse()
    events = [e for window in range(4) for e in traffic(window, 0.0, 0.3, 12, 20)]
    lake.append_events(events)
    for as_of in WINDOW_ENDS[:4]:
        materialise_window_spark(
            lake, as_of, DEFAULT_PARAMS, future_scan=FUTURE_SCAN, metrics=MetricsScope("default")
        )
    newest = newest_rollup_run(lake)
    assert newest == WINDOW_ENDS[3]
    sent = []

    def notify(message: dict) -> bool:
        sent.append(message)
        return True

    thresholds = replace(DEFAULTS.alert_thresholds(), min_explore_impressions=20)
    opened = evaluate_ctr_alerts(lake, "default", newest, thresholds, notify)
    assert [(c.surface, c.action) for c in opened] == [("home", "opened"), ("home", "notified")]
    assert [m["surface"] for m in sent] == ["home"]
    assert evaluate_ctr_alerts(lake, "default", newest, thresholds, notify) == []
    (episode,) = lake.rows("alerts/open_alerts", {"namespace": "default"})
    assert episode.notified_at is not None

    policy = KillSwitchPolicy("relative", threshold=0.5, min_explore_impressions=20)
    (change,) = evaluate_killswitch(lake, redis_store, "default", newest, policy)
    assert (change.surface, change.action) == ("home", "trip")
    assert change.figures["bandit_explore_impressions"] == 48
    assert redis_store.killswitch("default", "home").tripped
    assert evaluate_killswitch(lake, redis_store, "default", newest, policy) == []  # stays
    reset_killswitch(lake, redis_store, "default", "home", "checked", actor="test")
    assert not redis_store.killswitch("default", "home").tripped
    events = lake.table_rows("bandit_killswitch_events", "at")
    assert [(e.surface, e.action, e.actor) for e in events] == [
        ("home", "trip", "killswitch_sensor"),
        ("home", "reset", "test"),
    ]


def test_the_lakes_metric_view_is_the_other_engines():
    """The lake's session view holds bandit_explore_metrics's query as it is."""
    view = "CREATE VIEW bandit_explore_metrics AS"
    shared = next(s for s in sql_file("schema/0004_monitoring_views").statements if view in s)
    spark = metric_view_statement()
    temporary = "CREATE OR REPLACE TEMPORARY VIEW bandit_explore_metrics AS"
    assert spark.startswith(temporary)
    assert spark.split(temporary, 1)[1] == shared.split(view, 1)[1]


def test_the_lakes_candidates_query_is_the_shared_one_but_for_the_newest_posterior():
    """pool/candidates.spark.sql differs from pool/candidates.sql only in how it finds each
    item's newest posterior (before the CTE ``decayed``)."""
    shared = sql_file("pool/candidates").statements[0]
    spark = sql_file("pool/candidates", "spark").statements[0]
    tail = "decayed AS ("
    assert spark[spark.index(tail) :] == shared[shared.index(tail) :]
    assert (
        spark[: spark.index("newest_posteriors AS (")]
        == shared[: shared.index("catalog_posteriors AS MATERIALIZED (")]
    )
