"""Event ingestion on real PostgreSQL and on SQLite: good, duplicate, bad, crash, race."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bandit_pipeline.ingest import IngestReport, ingest_events, ingest_records
from bandit_pipeline.ingest.events import EventValidator
from bandit_pipeline.ingest.loader import PostgresEventWriter, load
from bandit_pipeline.ingest.parse_process import MIN_BYTES
from bandit_pipeline.ingest.readers import SourceError, SourceRecord, count_records, read_records
from bandit_pipeline.settings import load_settings
from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline_tests.helpers import event, rows, scalar


def write_events(path, events):
    write_jsonl(path, events)
    return str(path)


def test_good_events_land_with_every_column(engine, settings, tmp_path):
    occurred = datetime(2026, 11, 1, 12, 30, 15, 250000, tzinfo=UTC)
    path = write_events(
        tmp_path / "e.jsonl",
        [
            event("e1", occurred_at=occurred.isoformat(), experiment="x", variant="treatment"),
            event("e2", event_type="click", occurred_at="2026-11-01T13:30:15.25+01:00"),
        ],
    )
    before = datetime.now(UTC) - timedelta(seconds=5)
    report = ingest_events(engine, path, settings)
    after = datetime.now(UTC) + timedelta(seconds=5)

    assert (report.read, report.inserted, report.duplicate, report.rejected) == (2, 2, 0, 0)
    got = rows(
        engine,
        "SELECT event_id, event_type, namespace, surface, user_id, request_id, item_id, slot,"
        " explore, bandit_policy_id, experiment, variant FROM bandit_rewards ORDER BY event_id",
    )
    assert [tuple(r) for r in got] == [
        (
            "e1",
            "impression",
            "default",
            "home",
            "u1",
            "r-e1",
            "item-1",
            2,
            True,
            "ts-v1",
            "x",
            "treatment",
        ),
        ("e2", "click", "default", "home", "u1", "r-e2", "item-1", 2, True, "ts-v1", None, None),
    ]
    # Both spell the same instant (one in UTC, one at +01:00).
    times = rows(engine, "SELECT occurred_at, ingested_at FROM bandit_rewards ORDER BY event_id")
    for occurred_at, ingested_at in times:
        assert as_utc(occurred_at) == occurred
        assert before <= as_utc(ingested_at) <= after


def as_utc(value) -> datetime:
    """Timestamps come back as aware datetimes (PostgreSQL) or canonical text (SQLite)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def test_same_file_twice_inserts_each_event_once(engine, settings, tmp_path):
    now = datetime.now(UTC)
    events = list(
        generate_events(["a", "b", "c"], 300, start=now - timedelta(hours=1), end=now, seed=3)
    )
    path = write_events(tmp_path / "e.jsonl", events)
    first = ingest_events(engine, path, settings, batch_size=64)
    second = ingest_events(engine, path, settings, batch_size=64)

    assert first.inserted == len(events)
    assert first.duplicate == 0
    assert second.inserted == 0
    assert second.duplicate == len(events)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == len(events)


def test_repeated_event_id_within_a_batch_counts_as_duplicate(engine, settings, tmp_path):
    path = write_events(
        tmp_path / "e.jsonl",
        [event("same"), event("same", item_id="item-2"), event("other")],
    )
    report = ingest_events(engine, path, settings)
    assert (report.inserted, report.duplicate) == (2, 1)
    # The first occurrence wins.
    assert scalar(engine, "SELECT item_id FROM bandit_rewards WHERE event_id = 'same'") == "item-1"


BAD_ROWS = [
    ({"event_type": "hover"}, "event_type: unknown 'hover'"),
    ({"event_type": None}, "event_type: missing"),
    ({"event_id": None}, "event_id: missing"),
    ({"item_id": ""}, "item_id: missing"),
    ({"user_id": {"id": 1}}, "user_id: expected a string, got dict"),
    ({"request_id": True}, "request_id: expected a string, got bool"),
    ({"occurred_at": "yesterday"}, "occurred_at: not an ISO 8601 timestamp"),
    ({"occurred_at": 1764300000}, "occurred_at: expected an ISO 8601 string, got int"),
    ({"occurred_at": "2999-01-01T00:00:00Z"}, "is in the future"),
    ({"occurred_at": "1970-01-01T00:00:00Z"}, "is before 2000"),
    ({"slot": -1}, "slot: must be >= 0, got -1"),
    ({"slot": "third"}, "slot: expected an integer, got 'third'"),
    ({"slot": 2.5}, "slot: expected an integer, got float"),
    ({"explore": "maybe"}, "explore: expected true or false"),
    ({"surface": "home page!"}, "surface: expected 1-64 letters"),
    ({"variant": "treatment"}, "experiment: missing while variant is set"),
    ({"variant": "B", "experiment": "x"}, "variant: expected treatment or control"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_ROWS)
def test_bad_row_is_kept_aside_with_its_reason(engine, settings, tmp_path, change, reason):
    bad = event("bad", **{k: v for k, v in change.items() if v is not None})
    for key, value in change.items():
        if value is None:
            bad.pop(key, None)
    path = write_events(tmp_path / "e.jsonl", [event("good"), bad])

    report = ingest_events(engine, path, settings)

    assert (report.read, report.inserted, report.rejected) == (2, 1, 1)
    kept = rows(engine, "SELECT raw, reason, source, line_number FROM bandit_rewards_rejected")
    assert len(kept) == 1
    raw, stored_reason, source, line_number = kept[0]
    assert reason in stored_reason
    assert orjson.loads(raw) == bad
    assert (source, line_number) == (path, 2)


def test_unparsable_lines_are_rejected_and_the_rest_loads(engine, settings, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text(
        orjson.dumps(event("ok")).decode()
        + "\n{not json\n[1, 2]\n\n"
        + orjson.dumps(event("ok2")).decode()
        + "\n"
    )
    report = ingest_events(engine, str(path), settings)
    assert (report.read, report.inserted, report.rejected) == (4, 2, 2)
    reasons = {r for (r,) in rows(engine, "SELECT reason FROM bandit_rewards_rejected")}
    assert any(r.startswith("not valid JSON") for r in reasons)
    assert "not a JSON object" in reasons


def test_rejected_rows_land_once_when_the_file_is_ingested_again(engine, settings, tmp_path):
    path = write_events(tmp_path / "e.jsonl", [event("good"), event("bad", slot=-4)])
    ingest_events(engine, path, settings)
    again = ingest_events(engine, path, settings)
    assert again.rejected == 1  # still reported ...
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == 1  # ... kept once


def test_historical_import_keeps_the_producer_time(engine, settings, tmp_path):
    occurred = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    late = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    path = write_events(
        tmp_path / "e.jsonl",
        [
            event("h1", occurred_at=occurred.isoformat()),
            event("h2", occurred_at=occurred.isoformat(), ingested_at=late.isoformat()),
            event("h3", occurred_at=late.isoformat(), ingested_at=occurred.isoformat()),
        ],
    )
    report = ingest_events(engine, path, settings, historical=True)
    assert (report.inserted, report.rejected) == (2, 1)
    got = dict(rows(engine, "SELECT event_id, ingested_at FROM bandit_rewards"))
    assert as_utc(got["h1"]) == occurred
    assert as_utc(got["h2"]) == late
    assert "ingested_at: earlier than occurred_at" in scalar(
        engine, "SELECT reason FROM bandit_rewards_rejected"
    )


def test_ingested_at_in_a_live_ingest_is_the_warehouse_clock(engine, settings, tmp_path):
    path = write_events(tmp_path / "e.jsonl", [event("x", ingested_at="2026-01-01T00:00:00Z")])
    ingest_events(engine, path, settings)
    ingested = as_utc(scalar(engine, "SELECT ingested_at FROM bandit_rewards"))
    assert ingested > datetime.now(UTC) - timedelta(minutes=1)


def test_csv_and_parquet_inputs(engine, settings, tmp_path):
    csv_path = tmp_path / "e.csv"
    columns = [
        "event_id",
        "event_type",
        "occurred_at",
        "surface",
        "user_id",
        "request_id",
        "item_id",
        "slot",
        "explore",
        "experiment",
        "variant",
    ]
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        base = event("c1")
        writer.writerow([base.get(c, "") for c in columns[:-4]] + ["2", "true", "", ""])
        writer.writerow(
            [
                "c2",
                "click",
                base["occurred_at"],
                "home",
                "u1",
                "r-c1",
                "item-1",
                "",
                "0",
                "exp",
                "control",
            ]
        )
        writer.writerow(
            ["c3", "impression", base["occurred_at"], "home", "u1", "r", "i", "-2", "f", "", ""]
        )
        writer.writerow(["c4", "impression"])  # short row
    report = ingest_events(engine, str(csv_path), settings)
    assert (report.read, report.inserted, report.rejected) == (4, 2, 2)
    assert scalar(engine, "SELECT slot FROM bandit_rewards WHERE event_id = 'c2'") is None
    assert scalar(engine, "SELECT variant FROM bandit_rewards WHERE event_id = 'c2'") == "control"

    table = pa.Table.from_pylist(
        [event("p1"), event("p2", slot=None), event("p3", event_type="nope")]
    )
    parquet_path = tmp_path / "e.parquet"
    pq.write_table(table, parquet_path)
    report = ingest_events(engine, str(parquet_path), settings)
    assert (report.read, report.inserted, report.rejected) == (3, 2, 1)


class Crash(RuntimeError):
    pass


def crash_after(records, count):
    for index, record in enumerate(records):
        if index == count:
            raise Crash("simulated crash")
        yield record


def test_crash_mid_file_leaves_whole_batches_and_a_rerun_completes(engine, settings, tmp_path):
    now = datetime.now(UTC)
    events = list(generate_events(["a", "b"], 500, start=now - timedelta(hours=1), end=now, seed=5))
    path = write_events(tmp_path / "e.jsonl", events)
    batch = 100

    with pytest.raises(Crash):
        ingest_records(engine, crash_after(read_records(path), 350), settings, batch_size=batch)
    landed = scalar(engine, "SELECT COUNT(*) FROM bandit_rewards")
    assert landed % batch == 0
    assert landed <= 350

    report = ingest_events(engine, path, settings, batch_size=batch)
    assert report.duplicate == landed
    assert report.inserted == len(events) - landed
    assert scalar(engine, "SELECT COUNT(DISTINCT event_id) FROM bandit_rewards") == len(events)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == len(events)


def test_two_racing_ingests_insert_each_event_once(engine, settings, tmp_path):
    now = datetime.now(UTC)
    events = list(
        generate_events(["a", "b", "c"], 4000, start=now - timedelta(hours=1), end=now, seed=9)
    )
    path = write_events(tmp_path / "e.jsonl", events)
    env = {"BANDIT_WAREHOUSE_URL": settings.warehouse_url, "BANDIT_INGEST_BATCH_SIZE": "500"}
    command = [sys.executable, "-m", "bandit_pipeline.cli", "ingest", path]
    procs = [
        subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    inserted = sum(int(out.split("inserted=")[1].split()[0]) for out in outputs)
    assert inserted == len(events)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == len(events)


def test_records_are_counted_for_the_progress_bar(tmp_path):
    rows_ = [event(f"c{i}") for i in range(5)]
    jsonl = tmp_path / "e.jsonl"
    write_jsonl(jsonl, rows_)
    assert count_records(str(jsonl)) == len(list(read_records(str(jsonl)))) == 5
    jsonl.write_bytes(jsonl.read_bytes().rstrip(b"\n"))  # no newline after the last line
    assert count_records(str(jsonl)) == 5
    table = tmp_path / "e.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted(rows_[0]))
        writer.writeheader()
        writer.writerows(rows_)
    assert count_records(str(table)) == 5
    parquet = tmp_path / "e.parquet"
    pq.write_table(pa.Table.from_pylist(rows_), parquet)
    assert count_records(str(parquet)) == 5
    assert count_records("-") is None
    with pytest.raises(SourceError, match="cannot read"):
        count_records(str(tmp_path / "missing.jsonl"))


def test_any_bytes_end_up_inserted_or_rejected_never_a_failed_batch(engine, settings, tmp_path):
    """NUL, invalid UTF-8 and escaped lone surrogates: PostgreSQL refuses NUL and lone
    surrogates in text, so the raw line is stored with them escaped."""
    good = [orjson.dumps(event(f"g{i}")) for i in range(4)]
    hostile = [
        b'{"event_id": "n1", "event_type": "impr\x00ession"}',  # a raw NUL byte
        b"\x00\x00\x00",
        b'{"event_id": "b1", "user_id": "\xff\xfe"}',  # not UTF-8
        b'{"event_id": "s1", "event_type": "click", "user_id": "\\ud800"}',
        orjson.dumps(event("nul-id", user_id="u\x00")),
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join([good[0], *hostile, *good[1:]]) + b"\n")
    report = ingest_events(engine, str(path), settings, batch_size=3)
    assert (report.read, report.inserted, report.rejected) == (9, 4, 5)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == 4
    stored = [r[0] for r in rows(engine, "SELECT raw FROM bandit_rewards_rejected ORDER BY 1")]
    assert len(stored) == 5
    assert "\\x00\\x00\\x00" in stored
    assert not any("\x00" in raw for raw in stored)
    again = ingest_events(engine, str(path), settings, batch_size=3)
    assert (again.inserted, again.duplicate) == (0, 4)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == 5

    # A producer inside Python can hand over any str, lone surrogates included.
    records = [SourceRecord(1, '{"event_id": "\ud800"}', {"event_id": "\ud800"})]
    assert ingest_records(engine, records, settings).rejected == 1
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == 6


@pytest.mark.parametrize("historical", [False, True])
def test_postgres_batches_copy_straight_in_and_fall_back_to_the_merge_on_known_ids(
    pg_engine, tmp_path, historical
):
    """New batches take the fast COPY; a batch with known ids is merged instead, the
    batch after it too, and the fast path resumes once a merged batch is all new."""
    settings = load_settings(warehouse_url=pg_engine.url.render_as_string(hide_password=False))

    def records(ids: list[str]) -> list[SourceRecord]:
        return [SourceRecord(i, "", event(event_id)) for i, event_id in enumerate(ids)]

    def ingest(ids: list[str]) -> tuple[IngestReport, PostgresEventWriter]:
        writer = PostgresEventWriter()
        validate = EventValidator.from_settings(settings, datetime.now(UTC), historical=historical)
        report = load(pg_engine, records(ids), validate, writer, "bandit_rewards_rejected", 10, "t")
        return report, writer

    first, writer = ingest([f"a{i}" for i in range(30)])
    assert (first.inserted, writer.copied_batches, writer.merged_batches) == (30, 3, 0)

    # batch 1: new; batch 2: half known (merged); batch 3: new, after a batch with known
    # ids (merged, all new); batch 4: the fast path again.
    ids = (
        [f"b{i}" for i in range(10)]
        + [f"a{i}" for i in range(5)]
        + [f"b{i}" for i in range(10, 15)]
    )
    ids += [f"b{i}" for i in range(15, 35)]
    second, writer = ingest(ids)
    assert (second.inserted, second.duplicate) == (35, 5)
    assert (writer.copied_batches, writer.merged_batches) == (2, 2)
    assert scalar(pg_engine, "SELECT COUNT(*) FROM bandit_rewards") == 65
    live = scalar(
        pg_engine,
        "SELECT COUNT(*) FROM bandit_rewards WHERE ingested_at > occurred_at + interval '1 minute'",
    )
    # A live ingest stamps the warehouse's clock on both paths; a historical one keeps the
    # producer's time (here occurred_at, five minutes ago).
    assert live == (0 if historical else 65)


@pytest.mark.parametrize("parse_process", [False, True])
def test_a_file_parsed_in_a_second_process_lands_as_in_one(pg_engine, tmp_path, parse_process):
    """The same file, good and bad lines, gives the same report and rows whether it is
    parsed in the ingest's process or in a second one; the progress hears every row."""
    settings = load_settings(warehouse_url=pg_engine.url.render_as_string(hide_password=False))
    now = datetime.now(UTC)
    events = list(generate_events(["a", "b"], 900, start=now - timedelta(hours=1), end=now, seed=4))
    path = tmp_path / "e.jsonl"
    write_jsonl(path, events)
    with open(path, "ab") as handle:
        handle.write(orjson.dumps(event("nul\x00")) + b"\nnot json\n")
    heard: list[int] = []
    report = ingest_events(
        pg_engine, str(path), settings, batch_size=100, on_progress=heard.append,
        parse_process=parse_process,
    )  # fmt: skip
    assert (report.read, report.inserted, report.rejected) == (len(events) + 2, len(events), 2)
    assert sum(heard) == report.read
    assert report.batches == -(-report.read // 100)
    assert set(report.reasons) == {"event_id", "not valid JSON"}
    assert scalar(pg_engine, "SELECT COUNT(*) FROM bandit_rewards") == len(events)
    assert scalar(pg_engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == 2


def test_an_unreadable_file_fails_the_second_process_with_its_reason(pg_engine, tmp_path):
    settings = load_settings(warehouse_url=pg_engine.url.render_as_string(hide_password=False))
    path = tmp_path / "e.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match=r"cannot read .* as Parquet"):
        ingest_events(pg_engine, str(path), settings, parse_process=True)


def test_the_parser_process_ends_when_the_ingest_is_killed(pg_engine, tmp_path):
    """SIGKILL of the ingest leaves no parser behind: its next send fails and it exits."""
    now = datetime.now(UTC)
    events = generate_events(["a", "b"], 150_000, start=now - timedelta(hours=1), end=now)
    path = tmp_path / "e.jsonl"
    write_jsonl(path, events)
    assert path.stat().st_size >= MIN_BYTES  # the ingest parses it in a second process
    env = {
        **os.environ,
        "BANDIT_WAREHOUSE_URL": pg_engine.url.render_as_string(hide_password=False),
        "BANDIT_INGEST_BATCH_SIZE": "5000",
    }
    command = [sys.executable, "-m", "bandit_pipeline.cli", "ingest", str(path)]
    ingest = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    children = Path(f"/proc/{ingest.pid}/task/{ingest.pid}/children")
    deadline = time.monotonic() + 60
    while scalar(pg_engine, "SELECT COUNT(*) FROM bandit_rewards") == 0:
        assert time.monotonic() < deadline
        assert ingest.poll() is None
        time.sleep(0.05)
    parsers = [int(pid) for pid in children.read_text().split()]
    assert parsers, "no parser process"
    ingest.kill()
    ingest.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in parsers):
        assert time.monotonic() < deadline, "the parser outlived the ingest"
        time.sleep(0.1)
    landed = scalar(pg_engine, "SELECT COUNT(*) FROM bandit_rewards")
    assert landed % 5000 == 0  # whole batches only
