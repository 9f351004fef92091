"""Versioned migrations: up from empty, safe to re-run, in place without losing rows."""

from __future__ import annotations

from sqlalchemy import inspect

from bandit_pipeline.ingest import ingest_records
from bandit_pipeline.ingest.readers import SourceRecord
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import current_revision, head_revision, upgrade
from bandit_pipeline_tests.helpers import WAREHOUSE_TABLES, event, scalar

FIRST_REVISION = "0001_initial"


def test_upgrade_from_empty_then_again_is_a_no_op(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    assert current_revision(engine) is None
    assert upgrade(engine) == (None, head_revision())
    assert upgrade(engine) == (head_revision(), head_revision())
    assert set(WAREHOUSE_TABLES) <= set(inspect(engine).get_table_names())


def test_postgres_warehouse_is_at_head_with_the_indexes(pg_engine):
    assert current_revision(pg_engine) == head_revision()
    assert upgrade(pg_engine) == (head_revision(), head_revision())
    indexes = {
        ix["name"]: ix["column_names"] for ix in inspect(pg_engine).get_indexes("bandit_rewards")
    }
    assert indexes["bandit_rewards_ingested_at_idx"] == ["ingested_at"]
    assert indexes["bandit_rewards_impression_key_time_idx"] == [
        "namespace",
        "surface",
        "request_id",
        "item_id",
        "ingested_at",
    ]
    assert "bandit_rewards_impression_key_idx" not in indexes


def test_existing_warehouse_upgrades_in_place_without_losing_rows(tmp_path):
    from bandit_pipeline.settings import load_settings

    url = f"sqlite:///{tmp_path}/w.db"
    engine = make_engine(url)
    upgrade(engine, FIRST_REVISION)
    records = [SourceRecord(i, "", event(f"e{i}")) for i in range(25)]
    ingest_records(engine, records, load_settings(warehouse_url=url))

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == 25
