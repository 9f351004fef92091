"""Validated events in PostgreSQL's COPY text format, made where they are parsed.

A large file's parser process (:mod:`.parse_process`) sends each batch as the bytes that
``COPY bandit_rewards ... FROM STDIN`` reads, so the ingest process passes them to the
server as they are, with no work a row (docs/performance.md, "Ingest"). The rows the
vectorised checks accepted are written a block at a time by ``pyarrow.compute``
(:func:`arrow_lines`), the others a row at a time (:func:`copy_line`); both write the same
bytes for the same row, and the table holds the same values as when the rows are written
with psycopg's ``write_row`` (``bandit_pipeline_tests/test_ingest_copy_text.py``).

The format, PostgreSQL's text format of COPY: one line a row, its fields separated by a
tab; a backslash, tab, newline and carriage return in a value written as ``\\\\``,
``\\t``, ``\\n`` and ``\\r``; NULL as ``\\N``; booleans ``t`` and ``f``; integers in
decimal; an instant as its canonical text (``warehouse_time``) followed by ``+00``, so that
it means UTC whatever the session's time zone. The text is UTF-8. The columns are those of
``sql/ingest/copy_events.postgresql.sql`` and ``copy_stage.postgresql.sql``: a live
ingest's rows leave ``ingested_at`` out (the warehouse's clock fills it in).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from bandit_pipeline.ingest.events import EVENT_COLUMNS, EventRow

NULL = "\\N"
# After an instant's canonical text (which has no offset): it is UTC.
UTC_OFFSET = "+00"
_INSTANTS = frozenset({"occurred_at", "ingested_at"})
_OCCURRED_AT = EVENT_COLUMNS.index("occurred_at")
_INGESTED_AT = EVENT_COLUMNS.index("ingested_at")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = r"[\\\t\n\r]"

Row = TypeVar("Row")


@dataclass(slots=True)
class CopyRows:
    """The rows of one batch as COPY text: ``data`` holds ``distinct`` lines, the first
    row of each event_id in the batch; ``rows`` counts the batch's rows with the repeats
    (its length, as the list of rows it stands for). ``historical``: the lines hold
    ``ingested_at``."""

    data: bytes
    rows: int
    distinct: int
    historical: bool

    def __len__(self) -> int:
        return self.rows


def copy_rows(lines: list[bytes], historical: bool) -> CopyRows:
    """One batch's lines (:func:`copy_line`, :func:`arrow_lines`) joined, each event_id
    once. The first field of a line is its escaped event_id, and escaping is one to one,
    so equal ids are equal first fields."""
    ids = [line[: line.index(b"\t")] for line in lines]
    kept = first_per_key(lines, ids)
    return CopyRows(b"".join(kept), len(lines), len(kept), historical)


def first_per_key(rows: list[Row], keys: Sequence[Hashable]) -> list[Row]:
    """``rows`` without the repeats of a key (``keys[i]`` is row i's), keeping the first."""
    if len(set(keys)) == len(rows):
        return rows
    seen: set[Hashable] = set()
    return [row for row, key in zip(rows, keys, strict=True) if not (key in seen or seen.add(key))]


def validated_lines(validate: Callable[[dict[str, Any]], EventRow]) -> Callable[..., bytes]:
    """``validate`` giving each valid row as its line of COPY text (:func:`copy_line`)."""

    def check(fields: dict[str, Any]) -> bytes:
        return copy_line(validate(fields))

    return check


def copy_line(row: EventRow) -> bytes:
    """A validated row (:data:`~.events.EVENT_COLUMNS` order) as one line of COPY text;
    without ``ingested_at`` when the row has none (a live ingest)."""
    fields = [_field(value) for value in row]
    fields[_OCCURRED_AT] += UTC_OFFSET
    if row[_INGESTED_AT] is None:
        del fields[_INGESTED_AT]
    else:
        fields[_INGESTED_AT] += UTC_OFFSET
    return ("\t".join(fields) + "\n").encode("utf-8")


def _field(value: Any) -> str:
    if value is None:
        return NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    if type(value) is int:
        return str(value)
    return value.translate(_ESCAPES)


def arrow_lines(arrays: list[Any], historical: bool, pool: pa.MemoryPool) -> pa.Array:
    """Rows given as columns (:data:`~.events.EVENT_COLUMNS` order: strings, the slot as
    an integer, explore as a boolean, instants as their canonical text; None for a column
    of nulls) as lines of COPY text, one binary value a row; the same bytes as
    :func:`copy_line` writes for each row."""
    fields = []
    for name, array in zip(EVENT_COLUMNS, arrays, strict=True):
        if name == "ingested_at" and not historical:
            continue
        if array is None:
            fields.append(pa.scalar(NULL))
            continue
        kind = array.type
        if pa.types.is_boolean(kind):
            text = pc.if_else(array, "t", "f", memory_pool=pool)
        elif pa.types.is_integer(kind):
            text = pc.cast(array, pa.string(), memory_pool=pool)
        else:
            text = _escaped(array, pool)
            if name in _INSTANTS:
                text = pc.binary_join_element_wise(text, UTC_OFFSET, "", memory_pool=pool)
        fields.append(pc.coalesce(text, NULL, memory_pool=pool))
    lines = pc.binary_join_element_wise(*fields, "\t", memory_pool=pool)
    lines = pc.binary_join_element_wise(lines, "", "\n", memory_pool=pool)
    return pc.cast(lines, pa.binary(), memory_pool=pool)


def _escaped(text: Any, pool: pa.MemoryPool) -> Any:
    if not pc.any(pc.match_substring_regex(text, _SPECIAL, memory_pool=pool)).as_py():
        return text
    for plain, escape in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = pc.replace_substring(text, plain, escape, memory_pool=pool)
    return text
