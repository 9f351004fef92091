"""Random malformed rows: every row ends up inserted or rejected, never lost, no crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bandit_pipeline.ingest import ingest_records
from bandit_pipeline.ingest.events import EVENT_COLUMNS, EventValidator
from bandit_pipeline.ingest.readers import SourceRecord
from bandit_pipeline.ingest.validation import Rejected
from bandit_pipeline_tests.helpers import DEFAULTS, event, scalar

NOW = datetime.now(UTC)

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(
        [
            "impression",
            "click",
            "purchase",
            "",
            " ",
            "2026-11-01T00:00:00Z",
            "2026-13-45",
            "9999-12-31T23:59:59",
            "true",
            "-1",
            "7",
            "treatment",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)
field_names = st.sampled_from((*EVENT_COLUMNS, "extra"))


@st.composite
def messy_rows(draw):
    """A valid event with some fields replaced by junk or removed."""
    row = event(draw(st.text(min_size=1, max_size=20)))
    row["occurred_at"] = (NOW - timedelta(minutes=draw(st.integers(0, 10_000)))).isoformat()
    for name in draw(st.lists(field_names, max_size=5)):
        if draw(st.booleans()):
            row[name] = draw(junk)
        else:
            row.pop(name, None)
    return row


@hypothesis_settings(max_examples=600, deadline=None)
@given(messy_rows())
def test_validator_accepts_or_rejects_with_a_reason(fields):
    validator = EventValidator.from_settings(DEFAULTS, NOW)
    try:
        row = validator(fields)
    except Rejected as exc:
        reason = str(exc)
        row = None
    if row is None:
        assert reason.split(":")[0]  # a reason that names the problem
        return
    assert len(row) == len(EVENT_COLUMNS)
    values = dict(zip(EVENT_COLUMNS, row, strict=True))
    assert values["event_type"] in {"impression", "click", "add_to_cart", "purchase"}
    assert all(isinstance(values[k], str) and values[k] for k in ("event_id", "user_id", "item_id"))
    assert values["slot"] is None or values["slot"] >= 0
    assert isinstance(values["explore"], bool)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(messy_rows(), min_size=1, max_size=40))
def test_every_row_is_inserted_or_rejected(engine, settings, batch):
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM bandit_rewards")
        connection.exec_driver_sql("DELETE FROM bandit_rewards_rejected")
    records = [
        SourceRecord(n, json.dumps(fields, default=str), fields)
        for n, fields in enumerate(batch, start=1)
    ]
    report = ingest_records(engine, records, settings, batch_size=7)

    assert report.read == len(batch)
    assert report.inserted + report.duplicate + report.rejected == len(batch)
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == report.inserted
    distinct_rejects = len({r.raw for r, f in zip(records, batch, strict=True) if _rejected(f)})
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards_rejected") == distinct_rejects


def _rejected(fields) -> bool:
    try:
        EventValidator.from_settings(DEFAULTS, datetime.now(UTC))(fields)
    except Rejected:
        return True
    return False
