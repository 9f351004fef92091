"""Ingestion into the Spark lake (docs/spark.md): each event once without a unique index,
whole batches only, bad rows kept aside with their reason, and what the dedup horizon
bounds. Runs on the session's local Spark (conftest.py)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bandit_pipeline.policy import reference_posteriors
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline.spark_window import materialise_window_spark, posteriors_as_of_spark
from bandit_pipeline.warehouse import spark_ingest
from bandit_pipeline.warehouse.spark import SparkWarehouse
from bandit_pipeline.warehouse.spark_ingest import SequenceTaken, ingest_events_spark
from bandit_pipeline_tests.helpers import (
    FUTURE_SCAN,
    PARAMS,
    START,
    WINDOW_ENDS,
    assert_close,
    event,
    timed_event,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

SETTINGS = default_settings()
BAD_LINES = [
    "not json at all",
    '{"event_id": "bad-type", "event_type": "teleport"}',
]


def _file(tmp_path, n: int, seed: int, name: str = "events.jsonl") -> tuple[str, set[str]]:
    """A JSON Lines file of ``n`` generated impressions with their outcomes, one event
    repeated inside the file, and two bad lines; and its distinct event_ids."""
    now = datetime.now(UTC)
    events = list(
        generate_events(["a", "b", "c"], n, start=now - timedelta(hours=1), end=now, seed=seed)
    )
    path = tmp_path / name
    write_jsonl(path, [*events, events[0]])
    with open(path, "a") as handle:
        handle.write("\n".join(BAD_LINES) + "\n")
    return str(path), {e["event_id"] for e in events}


def _visible_ids(warehouse: SparkWarehouse) -> list[str]:
    return [r.event_id for r in warehouse.table_rows("bandit_rewards", "event_id")]


def _stored_rows(warehouse: SparkWarehouse, table: str) -> int:
    """Every row the files of a table hold, committed or not."""
    return warehouse.spark.table(f"{warehouse.database}.{table}").count()


def test_a_file_ingested_twice_keeps_each_event_and_each_bad_row_once(new_warehouse, tmp_path):
    warehouse = new_warehouse()
    path, ids = _file(tmp_path, 300, seed=1)
    first = ingest_events_spark(warehouse, path, SETTINGS, batch_size=250)
    read = first.read
    assert (first.inserted, first.duplicate, first.rejected) == (len(ids), 1, len(BAD_LINES))
    assert read == len(ids) + 1 + len(BAD_LINES)
    assert first.batches == -(-read // 250)

    again = ingest_events_spark(warehouse, path, SETTINGS, batch_size=100)
    assert (again.read, again.inserted, again.duplicate) == (read, 0, len(ids) + 1)
    assert sorted(_visible_ids(warehouse)) == sorted(ids)
    rejected = warehouse.table_rows("bandit_rewards_rejected", "line_number")
    assert [r.raw for r in rejected] == BAD_LINES
    assert rejected[0].reason.startswith("not valid JSON")
    assert rejected[1].reason.startswith("event_type: unknown 'teleport'")
    assert {r.source for r in rejected} == {path}
    # ingested_at is the batch's acceptance time, its hour the partition.
    stored = warehouse.table_rows("bandit_rewards", "event_id")
    assert all(r.ingested_hour == r.ingested_at.replace(minute=0, second=0, microsecond=0)
               for r in stored)  # fmt: skip
    assert all(r.ingested_at >= r.occurred_at - SETTINGS.max_clock_skew for r in stored)


class Crash(RuntimeError):
    pass


def test_an_ingest_that_dies_before_its_commit_leaves_nothing_visible(
    new_warehouse, tmp_path, monkeypatch
):
    warehouse = new_warehouse()
    path, ids = _file(tmp_path, 200, seed=2)
    real_commit = spark_ingest._write_commit_file
    commits = []

    def dies_on_the_third(*args, **kwargs):
        if len(commits) == 2:
            raise Crash("the ingest dies after writing its rows, before its commit file")
        commits.append(args[1])
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(spark_ingest, "_write_commit_file", dies_on_the_third)
    with pytest.raises(Crash):
        ingest_events_spark(warehouse, path, SETTINGS, batch_size=100)
    visible = _visible_ids(warehouse)
    assert len(visible) == 200  # two whole batches of 100 rows, no bad row among them
    assert _stored_rows(warehouse, "bandit_rewards") > len(visible)  # the dead batch's rows

    monkeypatch.setattr(spark_ingest, "_write_commit_file", real_commit)
    rerun = ingest_events_spark(warehouse, path, SETTINGS, batch_size=100)
    assert rerun.inserted == len(ids) - 200
    assert sorted(_visible_ids(warehouse)) == sorted(ids)
    assert len(warehouse.table_rows("bandit_rewards_rejected", "line_number")) == 2


def _events(prefix: str, n: int) -> list[dict]:
    return [
        {**event(f"{prefix}{k}"), "occurred_at": datetime.now(UTC) - timedelta(minutes=5)}
        for k in range(n)
    ]


@pytest.mark.parametrize("overlap", [True, False])
def test_a_batch_that_loses_the_race_for_its_commit(new_warehouse, monkeypatch, overlap):
    """Two writers of one lake (two sessions): the other commits first, under the sequence
    number this batch wanted. With events in common, this batch's rows are abandoned and
    written again without them; without, it commits as it is under the next number."""
    mine = new_warehouse()
    other = SparkWarehouse(mine.spark, mine.location, mine.database)
    batch = _events("e", 6)
    theirs = batch[:3] + _events("x", 2) if overlap else _events("x", 2)
    real_commit = spark_ingest._write_commit_file
    raced = []

    def the_other_commits_first(warehouse, sequence, *args):
        if warehouse is mine and not raced:
            raced.append(other.append_events(theirs))
        return real_commit(warehouse, sequence, *args)

    monkeypatch.setattr(spark_ingest, "_write_commit_file", the_other_commits_first)
    frame = mine.spark.createDataFrame(
        [spark_ingest._spark_row(_as_row(e), n) for n, e in enumerate(batch)],
        schema=spark_ingest.BATCH_SCHEMA,
    )
    done = spark_ingest.commit_batch(mine, frame, source="mine")
    assert raced == [len(theirs)]
    assert done.sequence == 2
    assert (done.attempts, done.events) == ((2, 3) if overlap else (1, 6))
    want = {e["event_id"] for e in batch + theirs}
    assert sorted(_visible_ids(mine)) == sorted(want)
    assert _stored_rows(mine, "bandit_rewards") == len(want) + (6 if overlap else 0)


def _as_row(values: dict) -> tuple:
    """A validator's row of an event mapping (ingest.events.EVENT_COLUMNS order)."""
    from bandit_pipeline.ingest.events import EVENT_COLUMNS

    return tuple(values.get(c) for c in EVENT_COLUMNS)


def test_racing_ingests_store_each_event_once(new_warehouse, tmp_path):
    first = new_warehouse()
    second = SparkWarehouse(first.spark, first.location, first.database)
    path, ids = _file(tmp_path, 150, seed=3)
    reports, failures = [], []

    def ingest(warehouse):
        try:
            reports.append(ingest_events_spark(warehouse, path, SETTINGS, batch_size=120))
        except Exception as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=ingest, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    assert sum(r.inserted for r in reports) == len(ids)
    assert sorted(_visible_ids(first)) == sorted(ids)
    assert len(first.table_rows("bandit_rewards_rejected", "line_number")) == 2


def test_beyond_the_dedup_horizon_a_resent_event_is_stored_again_without_changing_posteriors(
    new_warehouse,
):
    """The horizon bounds what an ingest reads. An event re-sent after it is stored a
    second time; every posterior stays that of the events counted once, since an
    impression key counts its earliest impression and outcomes (docs/spark.md)."""
    warehouse = new_warehouse(dedup_horizon=timedelta(hours=1))
    params = replace(PARAMS, half_life_days=1.0, attribution_window_hours=24.0)
    events = [
        timed_event("i", "impression", START, 1),
        timed_event("c", "click", START, 2),
        timed_event("j", "impression", START, 3, request_id="r2", item_id="i2"),
    ]
    warehouse.append_events(events)
    resent_at = START + timedelta(hours=3, minutes=5)
    resent = [replace(e, ingested_at=resent_at) for e in events[:2]]
    warehouse.append_events(resent)
    assert len(_visible_ids(warehouse)) == 5  # the horizon ended 1 h before the re-send

    # From scratch, from scratch again before the re-send, then the re-send's window.
    for as_of in (WINDOW_ENDS[0], START + timedelta(hours=3), START + timedelta(hours=3.25)):
        result = materialise_window_spark(warehouse, as_of, params, future_scan=FUTURE_SCAN)
        assert_close(
            reference_posteriors(events, as_of, params),
            posteriors_as_of_spark(warehouse, as_of, params),
            as_of,
        )
    # The re-sent impression is no new impression; the window's outcome counts, which
    # count rows, do count the re-sent click again (docs/spark.md).
    assert (result.mode, result.impressions, result.clicks) == ("incremental", 0, 1)


def test_a_commit_file_is_never_replaced(new_warehouse):
    warehouse = new_warehouse()
    spark_ingest._write_commit_file(warehouse, 1, "a" * 32, "events", 1, 0, "first")
    with pytest.raises(SequenceTaken):
        spark_ingest._write_commit_file(warehouse, 1, "b" * 32, "events", 1, 0, "second")
    warehouse.execute("posteriors/refresh_tables")
    log = warehouse.table_rows("bandit_ingest_batches", "sequence")
    assert [(r.batch_id, r.source) for r in log] == [("a" * 32, "first")]


def test_the_cli_loads_events_and_the_catalog_into_the_lake(spark, tmp_path):
    """``db upgrade``, ``ingest`` and ``catalog load`` with a spark:// warehouse (here on
    the session's local Spark, which the command's session joins)."""
    from click.testing import CliRunner

    from bandit_pipeline.cli import main

    path, ids = _file(tmp_path, 40, seed=4)
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"item_id": "a", "price": 3.0}\n{"item_id": ""}\n')
    url = f"spark://local[2]?warehouse={tmp_path}/lake&database=cli_lake"
    env = {"BANDIT_WAREHOUSE_URL": url}
    for args, says in (
        (["db", "upgrade"], f"ready at {tmp_path}/lake"),
        (["ingest", path], f"inserted={len(ids)} duplicate=1 rejected=2"),
        (["ingest", path], f"inserted=0 duplicate={len(ids) + 1} rejected=2"),
        (["catalog", "load", str(catalog)], "upserted=1 duplicate=0 rejected=1"),
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
        assert says in result.output, result.output
    lake = SparkWarehouse(spark, str(tmp_path / "lake"), "cli_lake")
    assert sorted(_visible_ids(lake)) == sorted(ids)
    assert [r.item_id for r in lake.table_rows("item_catalog", "item_id")] == ["a"]
