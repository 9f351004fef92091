"""The candidate pool and its publication, on PostgreSQL and SQLite, to Redis and SQLite."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bandit_pipeline.pool import (
    KEEP_POOLS,
    build_candidate_pool,
    publish_pools,
    snapshot_version,
)
from bandit_pipeline_tests.helpers import DEFAULT_PARAMS, DEFAULTS, rows, stamp

AS_OF = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POSTERIOR = DEFAULT_PARAMS
POOL = replace(DEFAULTS.pool_parameters(), surfaces=("home", "cart"), graduation_impressions=50.0)

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


@pytest.fixture
def warehouse(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO item_catalog (namespace, item_id, category, price, availability,"
                " freshness_index) VALUES ('default', :i, :c, :p, :a, :f)"
            ),
            [dict(zip("icpaf", row, strict=True)) for row in CATALOG],
        )
        # 'graduated' has 60 impressions of evidence on home, 'fresh-1' has a little.
        connection.execute(
            text(
                "INSERT INTO bandit_posteriors (namespace, surface, item_id, as_of, alpha, beta)"
                " VALUES ('default', 'home', :item, :as_of, :alpha, :beta)"
            ),
            [
                {"item": "graduated", "as_of": stamp(engine, AS_OF), "alpha": 11.0, "beta": 51.0},
                {"item": "fresh-1", "as_of": stamp(engine, AS_OF - timedelta(days=14)),
                 "alpha": 3.0, "beta": 5.0},
            ],
        )  # fmt: skip
    return engine


def test_pool_keeps_eligible_items_and_counts_exclusions(warehouse):
    result = build_candidate_pool(warehouse, AS_OF, "default", POOL, POSTERIOR)
    assert not result.skipped
    assert result.eligible == {"home": 3, "cart": 4}
    assert result.excluded["home"] == {
        "no_price": 1, "price_outlier": 1, "unavailable": 1, "not_fresh": 1, "graduated": 1,
    }  # fmt: skip
    assert "graduated" not in result.excluded["cart"]  # evidence is per surface
    pool = {
        row[0]: (row[1], row[2])
        for row in rows(
            warehouse,
            "SELECT item_id, alpha, beta FROM bandit_candidate_pool WHERE surface = 'home'",
        )
    }
    assert set(pool) == {"fresh-1", "fresh-2", "shoes-3"}
    # fresh-1's evidence decayed by one half-life; items without posterior have the prior.
    assert pool["fresh-1"] == pytest.approx((1.0 + 2.0 * 0.5, 1.0 + 4.0 * 0.5))
    assert pool["fresh-2"] == (1.0, 1.0)


def test_older_windows_are_skipped_and_only_the_newest_pools_kept(warehouse):
    for k in range(KEEP_POOLS + 3):
        build_candidate_pool(
            warehouse, AS_OF + k * timedelta(minutes=15), "default", POOL, POSTERIOR
        )
    stored = rows(warehouse, "SELECT DISTINCT as_of FROM bandit_candidate_pool")
    assert len(stored) == KEEP_POOLS
    assert build_candidate_pool(warehouse, AS_OF, "default", POOL, POSTERIOR).skipped


def test_publish_puts_the_pool_in_the_store_and_never_goes_back(warehouse, store):
    build_candidate_pool(warehouse, AS_OF, "default", POOL, POSTERIOR)
    published = publish_pools(warehouse, store, AS_OF, "default", POOL.surfaces)
    assert published == {"home": 3, "cart": 4}
    snapshot = store.load("default", "home")
    assert snapshot.version == snapshot_version(AS_OF)
    assert snapshot.as_of == AS_OF
    assert sorted(snapshot.item_ids) == ["fresh-1", "fresh-2", "shoes-3"]
    position = snapshot.item_ids.index("fresh-1")
    assert snapshot.alpha[position] == pytest.approx(2.0)

    later = AS_OF + timedelta(minutes=15)
    build_candidate_pool(warehouse, later, "default", POOL, POSTERIOR)
    publish_pools(warehouse, store, later, "default", POOL.surfaces)
    # Re-publishing an older window (a rerun during a backfill) leaves the newer one.
    assert publish_pools(warehouse, store, AS_OF, "default", POOL.surfaces) == {
        "home": None, "cart": None,
    }  # fmt: skip
    assert store.current_version("default", "home") == snapshot_version(later)


def test_a_publish_cut_short_leaves_each_surface_whole_and_a_rerun_completes_it(warehouse, store):
    """A publish is atomic per surface, not across surfaces: a publisher that dies after
    home leaves home on the new version and cart on the old, each whole; the rerun of
    the window publishes the rest."""
    build_candidate_pool(warehouse, AS_OF, "default", POOL, POSTERIOR)
    publish_pools(warehouse, store, AS_OF, "default", POOL.surfaces)
    later = AS_OF + timedelta(minutes=15)
    build_candidate_pool(warehouse, later, "default", POOL, POSTERIOR)
    publish_pools(warehouse, store, later, "default", ("home",))  # then the publisher died
    home, cart = store.load("default", "home"), store.load("default", "cart")
    assert (home.version, cart.version) == (snapshot_version(later), snapshot_version(AS_OF))
    assert len(home.item_ids) == len(home.alpha) == len(home.beta) == 3
    assert len(cart.item_ids) == len(cart.alpha) == len(cart.beta) == 4
    assert publish_pools(warehouse, store, later, "default", POOL.surfaces) == {
        "home": 3, "cart": 4,
    }  # fmt: skip
    assert {store.current_version("default", s) for s in POOL.surfaces} == {snapshot_version(later)}


def test_a_rerun_of_an_older_window_never_publishes(warehouse, store):
    later = AS_OF + timedelta(minutes=15)
    build_candidate_pool(warehouse, later, "default", POOL, POSTERIOR)
    # The older window's pool was never built (or was pruned): nothing to publish, even
    # into an empty store.
    assert publish_pools(warehouse, store, AS_OF, "default", POOL.surfaces) == {
        "home": None, "cart": None,
    }  # fmt: skip
    assert store.current_version("default", "home") is None
