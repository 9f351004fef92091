"""Rows sent as COPY text land exactly as rows written by psycopg's ``write_row``.

A large file's parser process sends each batch as COPY text (:mod:`.copy_text`), made a
row at a time for the rows the Python validator took and a block at a time by pyarrow for
those the vectorised checks took. Both encoders must write the same bytes for a row, and
the table must then hold the same values, of the same types, as when the ingest writes
the rows' tuples itself: on the fast path's COPY and on the merge's, live and historical,
with strings that need escaping (backslashes, tabs, newlines, carriage returns, ``\\N``
spelled out, unicode).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bandit_pipeline.ingest import ingest_events, vectorised
from bandit_pipeline.ingest.copy_text import (
    CopyRows,
    arrow_lines,
    copy_line,
    copy_rows,
    validated_lines,
)
from bandit_pipeline.ingest.events import EVENT_COLUMNS, EventValidator
from bandit_pipeline.ingest.loader import IngestReport, PostgresEventWriter, split_batches
from bandit_pipeline.ingest.parse_process import batches_from_process
from bandit_pipeline.ingest.readers import read_records
from bandit_pipeline.ingest.validation import warehouse_time
from bandit_pipeline.ingest.vectorised import event_records
from bandit_pipeline.settings import load_settings
from bandit_pipeline_tests.helpers import DEFAULTS, event, rows
from bandit_pipeline_tests.test_ingest_vectorised import files
from bandit_pipeline_tests.test_validation_property import NOW as VECTORISED_NOW

# Strings that COPY's text format must escape or could misread, and unicode. The
# validator refuses control characters in ids, but the encoding holds for any text
# PostgreSQL stores (everything but NUL).
TRICKY = [
    "a\\b",
    "\\",
    "\\\\",
    "\\N",
    "\\.",
    "ends with \\",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "\r\n",
    "\\t not a tab",
    "é ü ß",
    "日本語",
    "emoji 😀",
    "quote \" and ' ",
    "  spaced  ",
    "x" * 256,
    "é" * 256,
]
texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        min_size=1,
        max_size=12,
    ),
)
NOW = datetime.now(UTC)


def instant(draw) -> str:
    minutes = draw(st.floats(0, 60 * 24 * 400))
    return warehouse_time(NOW - timedelta(minutes=minutes))


@st.composite
def event_rows(draw, historical: bool) -> tuple:
    """A row as the validator makes it (EVENT_COLUMNS order), with any text in its ids."""
    occurred = instant(draw)
    experiment = draw(st.one_of(st.none(), texts))
    return (
        draw(texts),
        draw(st.sampled_from(["impression", "click", "add_to_cart", "purchase"])),
        occurred,
        max(occurred, instant(draw)) if historical else None,
        draw(st.sampled_from(["default", "a.b-c_d"])),
        draw(st.sampled_from(["home", "pdp"])),
        draw(texts),
        draw(texts),
        draw(texts),
        draw(st.one_of(st.none(), st.integers(0, 10_000))),
        draw(st.booleans()),
        draw(st.one_of(st.none(), texts)),
        experiment,
        None if experiment is None else draw(st.sampled_from([None, "treatment", "control"])),
    )


def arrow_encoded(batch: list[tuple], historical: bool) -> list[bytes]:
    """The rows through the vectorised path's encoder, from columns as it holds them."""
    columns = list(zip(*batch, strict=True))
    types = {"slot": pa.int64(), "explore": pa.bool_()}
    arrays = [
        None
        if all(value is None for value in values)
        else pa.chunked_array([pa.array(values, types.get(name, pa.string()))])
        for name, values in zip(EVENT_COLUMNS, columns, strict=True)
    ]
    return arrow_lines(arrays, historical, pa.default_memory_pool()).to_pylist()


@hypothesis_settings(max_examples=200, deadline=None)
@given(data=st.data(), historical=st.booleans())
def test_both_encoders_write_the_same_bytes(data, historical):
    batch = data.draw(st.lists(event_rows(historical), min_size=1, max_size=20))
    lines = [copy_line(row) for row in batch]
    assert arrow_encoded(batch, historical) == lines
    for line, row in zip(lines, batch, strict=True):
        # One line a row, and a field a column: no tab or newline is left unescaped.
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert line.count(b"\t") == len(row) - 1 - (not historical)


def test_a_batch_keeps_the_first_row_of_each_event_id():
    def row(event_id: str, slot: int) -> tuple:
        at = "2026-01-01 00:00:00.000000"
        return (event_id, "click", at, None, "d", "s", "u", "r", "i", slot, True, None, None, None)

    rows_ = [row("a\\b", 1), row("a\tb", 2), row("a\\b", 3)]
    batch = copy_rows([copy_line(r) for r in rows_], historical=False)
    assert (batch.rows, batch.distinct, len(batch)) == (3, 2, 3)
    assert batch.data == copy_line(rows_[0]) + copy_line(rows_[1])


@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=files(), historical=st.booleans(), batch_size=st.integers(1, 50))
def test_the_vectorised_paths_copy_text_is_the_python_paths_rows_encoded(
    tmp_path_factory, monkeypatch, data, historical, batch_size
):
    """Over the files of test_ingest_vectorised (every kind of bad line among good ones),
    in small blocks: the parser's COPY text is the Python path's rows, encoded."""
    monkeypatch.setattr(vectorised, "BLOCK_BYTES", 512)
    path = tmp_path_factory.mktemp("copy_text") / "events.jsonl"
    path.write_bytes(data)
    validator = EventValidator.from_settings(DEFAULTS, VECTORISED_NOW, historical=historical)

    def batches(records, validate) -> list:
        split = split_batches(records, validate, batch_size, str(path), IngestReport())
        return [(copy_rows(batch.rows, historical), batch.rejects) for batch in split]

    python = [
        (copy_rows([copy_line(row) for row in batch.rows], historical), batch.rejects)
        for batch in split_batches(
            read_records(str(path)), validator, batch_size, str(path), IngestReport()
        )
    ]
    lines = event_records(str(path), None, validator, copy_text=True)
    assert batches(lines, validated_lines(validator)) == python


def tricky_rows(historical: bool) -> list[tuple]:
    """A row per tricky string, in every text column at once."""
    at = warehouse_time(NOW - timedelta(minutes=5))
    return [
        (f"tricky-{n}-{text}", "click", at, at if historical else None, "default", "home")
        + (text,) * 3
        + (n, n % 2 == 0, text, text, "control")
        for n, text in enumerate(TRICKY)
    ]


def stored(engine, historical: bool) -> list[tuple]:
    """Every row of bandit_rewards with each value's type; a live ingest's ingested_at is
    the warehouse's clock, so it is left out there."""
    columns = [c for c in EVENT_COLUMNS if historical or c != "ingested_at"]
    got = rows(engine, f"SELECT {', '.join(columns)} FROM bandit_rewards ORDER BY event_id")
    return [tuple((type(v).__name__, v) for v in row) for row in got]


def write(engine, batch, *, merge: bool) -> int:
    writer = PostgresEventWriter()
    writer.fast_path = not merge
    with engine.begin() as connection:
        inserted = writer(connection, batch)
    assert (writer.copied_batches, writer.merged_batches) == ((0, 1) if merge else (1, 0))
    return inserted


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), historical=st.booleans(), merge=st.booleans())
def test_copy_text_stores_the_rows_write_row_stores(pg_engine, data, historical, merge):
    batch = data.draw(st.lists(event_rows(historical), min_size=1, max_size=30))
    batch += [*tricky_rows(historical), batch[0]]  # and a repeated event_id
    distinct = len({row[0] for row in batch})

    def reset() -> None:
        with pg_engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE bandit_rewards")

    reset()
    assert write(pg_engine, batch, merge=merge) == distinct
    expected = stored(pg_engine, historical)
    for lines in ([copy_line(row) for row in batch], arrow_encoded(batch, historical)):
        reset()
        encoded = copy_rows(lines, historical)
        assert (len(encoded), encoded.distinct) == (len(batch), distinct)
        assert write(pg_engine, encoded, merge=merge) == distinct
        assert stored(pg_engine, historical) == expected


# --- The whole ingest: a file through the parser process lands as one parsed in process.

VALID_TRICKY = [text for text in TRICKY if text.isprintable() and text.strip()]


def tricky_file(path, fmt: str, now: datetime) -> None:
    """Valid events with tricky strings in their ids, a repeated event_id and two bad
    lines, as JSON Lines or Parquet (whose strings reach the vectorised checks with their
    backslashes)."""
    at = (now - timedelta(minutes=5)).isoformat(timespec="microseconds")
    events = [event(f"e{i}", occurred_at=at, slot=i % 9) for i in range(300)]
    for n, text in enumerate(VALID_TRICKY):
        ids = {"user_id": text, "item_id": text, "bandit_policy_id": text, "experiment": text}
        events.append(event(f"t{n}", occurred_at=at, **ids))
        # Without microseconds: the Python validator's path, whatever the text.
        seconds = (now - timedelta(minutes=5)).isoformat(timespec="seconds")
        events.append(event(f"p{n}", occurred_at=seconds, **ids))
    events.append(event("e1", occurred_at=at, user_id="a repeat: not stored"))
    events += [event("x", slot=-1), event("y", occurred_at="2026-02-30T00:00:00")]
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(events), path)
    else:
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")


@pytest.mark.parametrize("historical", [False, True])
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_file_through_the_parser_process_lands_the_same_rows(
    pg_engine, tmp_path, historical, fmt
):
    settings = load_settings(warehouse_url=pg_engine.url.render_as_string(hide_password=False))
    path = tmp_path / f"e.{fmt}"
    tricky_file(path, fmt, datetime.now(UTC))
    results = []
    for parse_process in (False, True):
        with pg_engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE bandit_rewards, bandit_rewards_rejected")
        report = ingest_events(
            pg_engine, str(path), settings, batch_size=64, historical=historical,
            parse_process=parse_process,
        )  # fmt: skip
        rejected = rows(pg_engine, "SELECT raw, reason FROM bandit_rewards_rejected ORDER BY 1")
        counts = (report.read, report.inserted, report.duplicate, report.rejected)
        results.append((counts, report.reasons, stored(pg_engine, historical), rejected))
        # Again: every batch holds known ids, and goes through the merge.
        again = ingest_events(
            pg_engine, str(path), settings, batch_size=64, historical=historical,
            parse_process=parse_process,
        )  # fmt: skip
        assert (again.inserted, again.duplicate) == (0, report.inserted + report.duplicate)
    assert results[0] == results[1]
    counts, _, landed, _ = results[0]
    assert counts == (len(landed) + 3, len(landed), 1, 2)
    assert any("\\" in value for row in landed for _, value in row if isinstance(value, str))


def test_the_parser_process_sends_copy_text_for_postgres_only(tmp_path):
    path = tmp_path / "e.jsonl"
    tricky_file(path, "jsonl", datetime.now(UTC))
    validator = EventValidator.from_settings(DEFAULTS, datetime.now(UTC))
    for copy_text in (False, True):
        batches = list(
            batches_from_process(
                str(path), None, validator, 100, IngestReport(), copy_text=copy_text
            )
        )
        kinds = {type(batch.rows) for batch in batches}
        assert kinds == ({CopyRows} if copy_text else {list})


def test_the_parser_process_still_feeds_sqlite(sqlite_engine, tmp_path):
    settings = load_settings(warehouse_url=sqlite_engine.url.render_as_string(hide_password=False))
    path = tmp_path / "e.jsonl"
    tricky_file(path, "jsonl", datetime.now(UTC))
    report = ingest_events(sqlite_engine, str(path), settings, batch_size=64, parse_process=True)
    assert (report.inserted, report.duplicate, report.rejected) == (report.read - 3, 1, 2)
