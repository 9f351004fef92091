"""The vectorised checks give exactly the rows and rejections of the Python validator.

Files that mix valid events with every kind of malformed line (bad values, bad types,
bad JSON, bad bytes, lines that pyarrow and orjson read differently) are read both ways;
the batches (rows with their values and types, rejected lines with their numbers, reasons
and raw text) and the counts must be the same. Other tests show that the vectorised
checks really take the clean rows, and that an ingest lands the same either way.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bandit_pipeline.ingest import ingest_events, vectorised
from bandit_pipeline.ingest.events import EventValidator
from bandit_pipeline.ingest.loader import IngestReport, split_batches
from bandit_pipeline.ingest.readers import read_records
from bandit_pipeline.ingest.vectorised import event_records
from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline_tests.helpers import DEFAULTS, event, rows
from bandit_pipeline_tests.test_validation_property import NOW, junk, messy_rows


def both_ways(path: Path, *, historical: bool = False, batch_size: int = 7, fmt=None):
    """The batches and report of ``path`` through the Python path and the vectorised one."""
    validator = EventValidator.from_settings(DEFAULTS, NOW, historical=historical)
    results = []
    for records in (
        read_records(str(path), fmt),
        event_records(str(path), fmt, validator),
    ):
        report = IngestReport()
        batches = [
            (batch.rows, batch.rejects)
            for batch in split_batches(records, validator, batch_size, str(path), report)
        ]
        results.append((batches, report))
    return results


def assert_same(path: Path, **options) -> IngestReport:
    (python, python_report), (fast, fast_report) = both_ways(path, **options)
    # Values and their types: True == 1 and 1 == 1.0 in Python, not in the warehouse.
    assert typed(fast) == typed(python)
    assert (fast_report.read, fast_report.reasons) == (python_report.read, python_report.reasons)
    assert python_report.vectorised == 0
    return fast_report


def typed(batches):
    return [
        ([tuple((type(v).__name__, v) for v in row) for row in rows_], rejects)
        for rows_, rejects in batches
    ]


def moment(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


# --- Lines: valid events spelled the ways producers spell them, and every kind of bad one.

TRICKY_TIMES = [
    (NOW + timedelta(minutes=59)).isoformat(timespec="microseconds"),
    (NOW + timedelta(hours=1, microseconds=1)).isoformat(timespec="microseconds"),
    (NOW + timedelta(hours=2)).isoformat(timespec="microseconds"),
    "2024-02-29T12:00:00.000001+00:00",
    "2023-02-29T12:00:00.000001+00:00",
    "2026-02-30T00:00:00.000000Z",
    "2026-04-31T00:00:00.000000",
    "2026-01-01T24:00:00.000000Z",
    "2026-01-01T23:59:60.000000Z",
    "2026-13-01T00:00:00.000000Z",
    "0000-01-01T00:00:00.000000Z",
    "1999-12-31T23:59:59.999999+00:00",
    "2000-01-01T00:00:00.000000+00:00",
    "9999-12-31T23:59:59.999999Z",
    "\uff12\uff10\uff12\uff16-01-01T00:00:00.000000Z",  # full-width digits
    "2026-01-01T00:00:00.000000Z\n",
    "",
]
timestamps = st.one_of(
    st.sampled_from(TRICKY_TIMES),
    st.one_of(
        st.floats(-120, 60 * 24 * 400).map(lambda m: moment(m).isoformat()),  # +00:00, maybe no us
        st.floats(0, 1000).map(lambda m: moment(m).replace(tzinfo=None).isoformat()),  # naive
        st.floats(0, 1000).map(lambda m: moment(m).isoformat().replace("+00:00", "Z")),
        st.floats(0, 1000).map(lambda m: moment(m).astimezone().isoformat()),  # local offset
        st.floats(0, 1000).map(lambda m: moment(m).isoformat(timespec="milliseconds")),
        st.floats(0, 1000).map(lambda m: moment(m).isoformat(sep=" ")),
        st.floats(0, 1000).map(lambda m: moment(m).isoformat().lower()),
        st.floats(0, 1000).map(lambda m: " " + moment(m).isoformat()),
        st.floats(0, 1000).map(lambda m: moment(m).isoformat().replace("+00:00", "-00:00")),
        st.datetimes(
            min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.isoformat()),
    ),
)
TRICKY_IDS = [" ", "  x ", "x" * 256, "x" * 257, "é" * 256, "a\u200bb", "\t", "12", "a\x7f", "a~"]
ids = st.one_of(
    st.sampled_from(TRICKY_IDS),
    st.from_regex(r"[a-z]{1,3}-[0-9]{1,6}", fullmatch=True),
    st.text(min_size=0, max_size=8),
    st.text(alphabet=st.characters(codec="ascii"), min_size=0, max_size=8),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
names = st.one_of(
    st.sampled_from(["home", "pdp", "cart", "default", "a.b-c_d", "x" * 64, "x" * 65]),
    st.sampled_from(["", " home", "home\n", "home page", "héllo", "123", "1e5", "-1"]),
    st.integers(0, 100),
    st.none(),
)
values = {
    "event_id": ids,
    "event_type": st.sampled_from(
        ["impression", "click", "add_to_cart", "purchase", "hover", "", "Click", None, 1]
    ),
    "occurred_at": timestamps,
    "ingested_at": st.one_of(timestamps, st.none(), st.integers(0, 2000000000)),
    "namespace": names,
    "surface": names,
    "user_id": ids,
    "request_id": ids,
    "item_id": ids,
    "slot": st.one_of(
        st.integers(-3, 10_003),
        st.sampled_from(["7", " 7", "-1", "x", 2.0, 2.5, 1e2, True, None, "", 2**64, -(2**63)]),
        st.sampled_from([10_000, 10_001, 99_999, 2**63 - 1]),
    ),
    "explore": st.one_of(
        st.booleans(), st.sampled_from(["true", "no", "maybe", 0, 1, 2, None, "", 1.0])
    ),
    "bandit_policy_id": st.one_of(ids, st.just("ts-v1")),
    "experiment": st.one_of(st.none(), st.just(""), st.just("exp-1"), ids),
    "variant": st.one_of(
        st.none(), st.sampled_from(["treatment", "control", "", "B", "Treatment"])
    ),
}
extras = st.dictionaries(
    st.sampled_from(["extra", "context", "x", "ingested_at_ms", ""]),
    st.one_of(
        junk,
        st.recursive(
            st.one_of(st.integers(), st.text(max_size=3), st.none()),
            lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner),
            max_leaves=4,
        ),
    ),
    max_size=2,
)


@st.composite
def good_events(draw) -> dict:
    row = event(draw(st.from_regex(r"ev-[0-9]{1,9}", fullmatch=True)))
    row["occurred_at"] = moment(draw(st.floats(0, 2000))).isoformat()
    row["surface"] = draw(st.sampled_from(["home", "pdp", "cart"]))
    row["slot"] = draw(st.integers(0, 10_000))
    row["explore"] = draw(st.booleans())
    if draw(st.booleans()):
        row["experiment"], row["variant"] = "exp-1", draw(st.sampled_from(["treatment", "control"]))
    if draw(st.booleans()):
        row["ingested_at"] = moment(draw(st.floats(-5, 2000))).isoformat()
    for name in draw(st.lists(st.sampled_from(["namespace", "bandit_policy_id", "slot"]))):
        row.pop(name, None)
    return row


@st.composite
def one_change(draw) -> dict:
    """A good event with one field set to a value of any kind."""
    row = draw(good_events())
    name = draw(st.sampled_from(sorted(values)))
    row[name] = draw(values[name])
    return row


@st.composite
def changed_events(draw) -> dict:
    """A good event with a few fields set to values of every kind, or removed."""
    row = draw(good_events())
    for name in draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=3)):
        if draw(st.booleans()):
            row[name] = draw(values[name])
        else:
            row.pop(name, None)
    row.update(draw(extras))
    return row


def as_json(draw, row: dict) -> bytes:
    """``row`` as a line, written the ways JSON writers write it."""
    style = draw(st.sampled_from(["orjson", "ascii", "unicode", "spaced"]))
    if style == "orjson":
        try:
            return orjson.dumps(row)
        except TypeError:  # an integer beyond 64 bits
            style = "ascii"
    if style == "spaced":
        return (" " + json.dumps(row, default=str) + " ").encode()
    text = json.dumps(row, ensure_ascii=style == "ascii", default=str)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8


hostile_lines = st.sampled_from(
    [
        b"",
        b"   ",
        b"\t",
        b"\x0c",
        b"not json",
        b"[1, 2]",
        b"5",
        b"null",
        b"{}",
        b"{not json}",
        b'{"a": 1} {"b": 2}',
        b'{"event_type": "click"',
        b"\xef\xbb\xbf{}",
        b"\x00\x00",
        b"\xff\xfe{}",
        b'{"event_id": "\xff"}',
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b'{"x": 1e400}',
        b'{"x": 1' + b"0" * 400 + b"}",
        b'{"x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"x": "a\tb"}',
        b'{"x": "\\ud800"}',
        b'{"x": "\\udc00"}',
        b'{"event_id": "a\\u0000"}',
        b'{"x": 1,}',
        b"{'x': 1}",
        b'{"x": 01}',
        b'{"x": tru}',
        b'{"x": 1} // comment',
        b"}{",
        b"{\r}",
        b"{}\r",
        b"\r",
    ]
)


# Unknown fields' values: NaN, infinities, overflowing numbers and deep nesting are what
# orjson refuses and pyarrow's reader may not; the others both read.
EXTRA_VALUES = [
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"1" + b"0" * 400,
    b"[" * 1100 + b"]" * 1100,
    b"1.5",
    b"-0",
    b"12345678901234567890123",
    b'"\\u00"',
    b"[1, {}]",
    b"{}",
    b'"2026-01-01T00:00:00"',
]


@st.composite
def lines(draw) -> list[bytes]:
    kind = draw(
        st.sampled_from(["good", "good", "one", "one", "changed", "messy", "hostile", "mix"])
    )
    if kind == "good":
        return [as_json(draw, draw(good_events()))]
    if kind == "one":
        return [as_json(draw, draw(one_change()))]
    if kind == "changed":
        return [as_json(draw, draw(changed_events()))]
    if kind == "messy":
        return [as_json(draw, draw(messy_rows()))]
    if kind == "hostile":
        return [draw(hostile_lines)]
    # A good event made bad in the bytes: duplicate or escaped keys, split, joined, cut.
    good = draw(good_events())
    text = orjson.dumps(good)
    name = draw(st.sampled_from(sorted(good)))
    change = draw(
        st.sampled_from(
            ["duplicate", "escaped", "split", "joined", "cut", "cr", "extra", "escapes"]
        )
    )
    if change == "extra":  # what orjson refuses and pyarrow's reader may not, in a valid event
        extra = draw(st.sampled_from(EXTRA_VALUES))
        return [text[:-1] + b',"extra":' + extra + b"}"]
    if change == "escapes":  # the same text spelled with escapes, or a control character
        target = draw(st.sampled_from([b'"u1"', b'"home"', b'"impression"', b'"item-1"']))
        spelled = draw(st.sampled_from([b"\\u0075", b"\\/", b"\\u0000", b"\\n", b"\\ud800"]))
        return [text.replace(target, target[:2] + spelled + target[2:], 1)]
    if change == "duplicate":
        value = json.dumps(draw(values.get(name, junk)), default=str).encode()
        return [text[:-1] + b',"' + name.encode() + b'":' + value + b"}"]
    if change == "escaped":
        escaped = name.replace("_", "\\u005f").replace("e", "\\u0065").encode()
        value = json.dumps(draw(junk), default=str).encode()
        return [text[:-1] + b',"' + escaped + b'":' + value + b"}"]
    if change == "split":
        at = text.index(b",")
        return [text[: at + 1], text[at + 1 :]]
    if change == "joined":
        return [text + b" " + orjson.dumps(draw(good_events()))]
    if change == "cut":
        return [text[: draw(st.integers(1, len(text) - 1))]]
    at = text.index(b",")
    return [text[: at + 1] + b"\r" + text[at + 1 :]]


@st.composite
def files(draw) -> bytes:
    body = [line for group in draw(st.lists(lines(), min_size=1, max_size=40)) for line in group]
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = ending.join(body)
    if draw(st.booleans()):
        data += ending
    return data


@hypothesis_settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=files(),
    historical=st.booleans(),
    batch_size=st.integers(1, 50),
    block=st.sampled_from([64, 512, 1 << 20]),
    split=st.sampled_from([1, 4, 64]),
)
def test_vectorised_path_gives_the_python_paths_rows_and_rejections(
    tmp_path_factory, monkeypatch, data, historical, batch_size, block, split
):
    """Small blocks and splits put block edges and halvings everywhere in a small file."""
    monkeypatch.setattr(vectorised, "BLOCK_BYTES", block)
    monkeypatch.setattr(vectorised, "MIN_SPLIT_LINES", split)
    path = tmp_path_factory.mktemp("vectorised") / "events.jsonl"
    path.write_bytes(data)
    assert_same(path, historical=historical, batch_size=batch_size)


def edge_lines() -> list[bytes]:
    """Single changes to a good event at the edges of each rule, and lines whose JSON the
    two parsers might read differently."""
    changes = [
        *({"occurred_at": value} for value in TRICKY_TIMES),
        *({"ingested_at": value} for value in [*TRICKY_TIMES, moment(60).isoformat()]),
        *(
            {name: value}
            for name in ("event_id", "user_id", "bandit_policy_id")
            for value in TRICKY_IDS
        ),
        *({"surface": value} for value in ["home\n", "x" * 65, "x" * 64, "a b", "", 5]),
        *({"namespace": value} for value in ["", "a b", "x" * 64, None]),
        *({"slot": value} for value in [-1, 0, 10_000, 10_001, "7", 7.0, None, True]),
        *({"explore": value} for value in ["true", 1, None, False]),
        {"variant": "treatment"},
        {"variant": "B", "experiment": "x"},
        {"variant": "control", "experiment": ""},
        {"variant": "", "experiment": "x"},
        {"event_type": "Click"},
    ]
    # orjson writes DEL and other characters as they are, json escapes them
    lines_ = [orjson.dumps({**event(f"edge{i}"), **change}) for i, change in enumerate(changes)]
    good = orjson.dumps(event("g1"))
    lines_ += [good[:-1] + b',"extra":' + value + b"}" for value in EXTRA_VALUES]
    lines_ += [
        good[:-1] + b',"user\\u005fid":"other"}',  # the same key twice, once escaped
        good.replace(b'"u1"', b'"u\\u0031"'),
    ]
    return lines_


def misaligned_lines() -> list[bytes]:
    """Runs of lines whose objects and lines are as many, but not one a line."""
    good = orjson.dumps(event("g1"))
    return [
        good + b" " + good,  # two objects on a line, then one on two lines
        good[: good.index(b",") + 1],
        good[good.index(b",") + 1 :],
        good + b" " + good,  # two objects on a line, then a blank line
        b"",
        good + b" " + good,  # two objects on a line, then a line of spaces
        b"   ",
    ]


@pytest.mark.parametrize("historical", [False, True])
@pytest.mark.parametrize("split", [1, 64])
def test_edge_cases_between_good_lines(tmp_path, monkeypatch, historical, split):
    monkeypatch.setattr(vectorised, "MIN_SPLIT_LINES", split)
    good = [orjson.dumps(event(f"g{i}")) for i in range(300)]
    edges = edge_lines()
    mixed = [line for pair in zip(good, edges, strict=False) for line in pair]
    mixed += good[len(edges) :] + misaligned_lines() + good[:20]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    report = assert_same(path, historical=historical, batch_size=50)
    if split == 1:  # every good line, and the edge lines that are valid in the one form
        assert report.vectorised >= 300


def test_a_clean_file_is_taken_whole_by_the_vectorised_checks(tmp_path):
    now = datetime.now(UTC)
    events = list(generate_events(["a", "b"], 3000, start=now - timedelta(hours=1), end=now))
    for number, row in enumerate(events):
        # isoformat drops the microseconds when they are 0: keep the one spelling
        row["occurred_at"] = datetime.fromisoformat(row["occurred_at"]).isoformat(
            timespec="microseconds"
        )
        if number % 3 == 0:
            row["experiment"], row["variant"] = "exp", "control"
    path = tmp_path / "e.jsonl"
    write_jsonl(path, events)
    for historical in (False, True):
        report = assert_same(path, historical=historical, batch_size=500)
        assert report.read == report.vectorised == len(events)


def test_only_the_malformed_rows_take_the_python_path(tmp_path):
    now = datetime.now(UTC)
    events = list(generate_events(["a"], 2000, start=now - timedelta(hours=1), end=now, seed=2))
    for row in events:
        row["occurred_at"] = datetime.fromisoformat(row["occurred_at"]).isoformat(
            timespec="microseconds"
        )
    lines_ = [orjson.dumps(row) for row in events]
    bad = {
        10: orjson.dumps(event("b1", slot=-1)),
        11: orjson.dumps(event("b2", event_type="hover")),
        500: b"not json",
        501: b"",  # blank: skipped, as the Python reader does
        900: orjson.dumps(event("b3", occurred_at="2026-02-30T00:00:00.000000+00:00")),
        1200: orjson.dumps(event("b4", user_id="a\x00b")),
        1500: orjson.dumps(event("b5", surface="home page")),
        1800: orjson.dumps(event("b6", variant="treatment")),
        1801: orjson.dumps(event("b7", user_id="ü")),  # valid, but not ASCII
    }
    for index, line in sorted(bad.items()):
        lines_.insert(index, line)
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(lines_) + b"\n")
    report = assert_same(path, batch_size=300)
    assert report.read == len(lines_) - 1
    assert report.vectorised == len(events)
    assert report.read - report.vectorised == len(bad) - 1


def test_a_line_pyarrow_cannot_read_costs_a_few_lines_not_the_block(tmp_path, monkeypatch):
    monkeypatch.setattr(vectorised, "MIN_SPLIT_LINES", 16)
    events = [event(f"e{i}") for i in range(2000)]
    events[700]["slot"] = "7"  # a string where pyarrow reads a number: the block fails
    path = tmp_path / "e.jsonl"
    write_jsonl(path, events)
    report = assert_same(path, batch_size=300)
    assert report.read == 2000
    assert 2000 - 16 <= report.vectorised < 2000


def test_a_lone_carriage_return_sends_its_block_through_python(tmp_path, monkeypatch):
    monkeypatch.setattr(vectorised, "BLOCK_BYTES", 4096)
    lines_ = [orjson.dumps(event(f"e{i}")) for i in range(200)]
    lines_[100] = lines_[100].replace(b",", b",\r", 1)  # Python reads two lines here
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(lines_) + b"\n")
    report = assert_same(path, batch_size=30)
    assert report.read == 201
    assert 0 < report.vectorised < 199


@pytest.mark.parametrize("historical", [False, True])
def test_parquet_through_the_vectorised_checks(tmp_path, historical):
    # Dated from the validator's clock (NOW), not from the wall clock: the suite may reach
    # this test minutes after NOW was taken.
    at = {"occurred_at": moment(5).isoformat()}
    good = [event(f"p{i}", slot=i % 5, ingested_at=moment(1).isoformat(), **at) for i in range(50)]
    bad = [
        event("q1", slot=-1, **at),
        event("q2", event_type="hover", **at),
        event("q3", surface="x y", **at),
        event("q4", occurred_at="2026-02-30T00:00:00.000000"),
        event("q5", user_id=" ", **at),
        event("q6", ingested_at=moment(60).isoformat(), **at),
    ]
    table = pa.Table.from_pylist(good[:25] + bad + good[25:])
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    report = assert_same(path, historical=historical, batch_size=9)
    assert report.read == 56
    assert report.vectorised == 50 + (not historical)  # q6 is valid in a live ingest

    # Columns of other types: the batch goes through the Python path, with the same result.
    odd = table.set_column(
        table.schema.get_field_index("slot"), "slot", table.column("slot").cast(pa.float64())
    )
    odd = odd.append_column("extra", pa.array([[1, 2]] * len(odd)))
    pq.write_table(odd, path)
    report = assert_same(path, historical=historical, batch_size=9)
    assert report.vectorised == 0


@pytest.mark.parametrize("vectorised_", [False, True])
def test_an_ingest_lands_the_same_rows_either_way(engine, settings, tmp_path, vectorised_):
    lines_ = [orjson.dumps(event(f"e{i}", slot=i % 7)) for i in range(300)]
    lines_[5] = orjson.dumps(event("bad", slot=-2))
    lines_[6] = b"{broken"
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(lines_) + b"\n")
    report = ingest_events(engine, str(path), settings, batch_size=64, vectorised=vectorised_)
    assert (report.read, report.inserted, report.rejected) == (300, 298, 2)
    assert report.vectorised == (298 if vectorised_ else 0)
    assert [tuple(r) for r in rows(engine, "SELECT COUNT(*), SUM(slot) FROM bandit_rewards")] == [
        (298, sum(i % 7 for i in range(300) if i not in (5, 6)))
    ]
    reasons = sorted(r for (r,) in rows(engine, "SELECT reason FROM bandit_rewards_rejected"))
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1] == "slot: must be >= 0, got -2"


def test_gzip_and_stdin_through_the_vectorised_checks(tmp_path, monkeypatch):
    lines_ = [orjson.dumps(event(f"e{i}")) for i in range(500)]
    lines_[3] = orjson.dumps(event("bad", slot=-1))
    data = b"\r\n".join(lines_) + b"\r\n"
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    report = assert_same(path, batch_size=64)
    assert report.read == 500
    assert report.vectorised >= 498  # an isoformat without microseconds takes the Python path

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin())
    validator = EventValidator.from_settings(DEFAULTS, NOW)
    report = IngestReport()
    batches = list(split_batches(event_records("-", None, validator), validator, 64, "-", report))
    assert (report.read, sum(len(b.rejects) for b in batches)) == (500, 1)
    assert report.vectorised >= 498


def test_a_live_ingest_reads_ingested_at_as_an_unknown_field(tmp_path):
    """A live ingest ignores ingested_at whatever it holds; a historical one checks it."""
    lines_ = [orjson.dumps(event(f"e{i}", ingested_at=1764300000 + i)) for i in range(300)]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(lines_) + b"\n")
    live = assert_same(path, batch_size=64)
    assert live.vectorised >= 298  # an isoformat without microseconds takes the Python path
    historical = assert_same(path, historical=True, batch_size=64)
    assert (historical.vectorised, historical.reasons) == (0, {"ingested_at": 300})
