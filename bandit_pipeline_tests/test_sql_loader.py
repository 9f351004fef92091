"""The SQL loader: every file in sql/ loads, includes expand, timestamps are typed."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import DateTime

from bandit_pipeline.warehouse import sql as sql_module
from bandit_pipeline.warehouse.sql import SQL_DIR, sql_file, sql_statement

DIALECTS = ("postgresql", "sqlite")


def all_names() -> list[tuple[str, str | None]]:
    """Every (name, dialect) the sql/ folder holds."""
    found = set()
    for path in SQL_DIR.rglob("*.sql"):
        relative = path.relative_to(SQL_DIR).as_posix().removesuffix(".sql")
        name, _, dialect = relative.partition(".")
        found.add((name, dialect or None))
    return sorted(found, key=lambda pair: (pair[0], pair[1] or ""))


@pytest.mark.parametrize(("name", "dialect"), all_names())
def test_every_file_loads_with_includes_expanded(name, dialect):
    loaded = sql_file(name, dialect)
    assert loaded.statements or name.startswith("schema/")
    for statement in loaded.statements:
        # Nothing is left to substitute: values travel as bind parameters.
        assert "{{" not in statement
        assert not re.search(r"\{[a-z_]+\}", statement), statement


def test_include_brings_the_included_statement_and_its_timestamps():
    including = sql_file("posteriors/stage_window_keys")
    included = sql_file("posteriors/window_keys")
    assert included.statements[0] in including.statements[-1]
    assert included.timestamps <= including.timestamps
    assert "future_scan_start" in including.timestamps


def test_declared_timestamps_are_bound_as_timestamps_and_others_are_not():
    clause = sql_statement("posteriors/insert_posteriors_incremental")
    params = clause.compile().binds
    assert isinstance(params["as_of"].type, DateTime)
    assert isinstance(params["previous_as_of"].type, DateTime)
    assert not isinstance(params["as_of_epoch"].type, DateTime)
    assert not isinstance(params["half_life_seconds"].type, DateTime)


def test_a_declared_timestamp_the_file_never_uses_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "typo.sql").write_text("-- timestamps: as_off\nSELECT :as_of;\n")
    monkeypatch.setattr(sql_module, "SQL_DIR", tmp_path)
    sql_file.cache_clear()
    try:
        with pytest.raises(ValueError, match="as_off"):
            sql_file("demo/typo")
    finally:
        sql_file.cache_clear()


def test_a_dialect_variant_wins_over_the_shared_file():
    assert sql_file("ingest/insert_events", "sqlite").statements[0].count("?") == 14
    with pytest.raises(FileNotFoundError, match="ingest/insert_events"):
        sql_file("ingest/insert_events")


def test_clause_refuses_a_file_of_several_statements():
    assert len(sql_file("posteriors/delete_partition").statements) > 1
    with pytest.raises(ValueError, match="statements, not 1"):
        sql_statement("posteriors/delete_partition")
