"""Vectorised reading and validation of events, with the Python validator as the fallback.

JSON Lines are read a block of lines at a time (:data:`BLOCK_BYTES`) by pyarrow's JSON
reader, and Parquet a batch of rows at a time (CSV goes through the Python path); every
column is then checked with ``pyarrow.compute``. The checks accept only rows that
:class:`~.events.EventValidator` certainly accepts, with the same cleaned values (a
strict subset of its rules): ids of
1-256 printable ASCII characters, not blank; names that match the name rule; a known
event type; timestamps in one form, ``YYYY-MM-DDTHH:MM:SS.ffffff`` with ``+00:00``, ``Z``
or no offset, a real calendar instant inside the allowed range; ``slot`` an integer in
range; ``explore`` a boolean; ``variant`` only with an ``experiment``; in a historical
ingest, ``ingested_at`` of the same form and not before ``occurred_at``.

Every other row goes through the Python path (:func:`.readers.jsonl_record` and the
validator), which gives the exact reason and keeps the raw line. So does every line
whose JSON the two parsers might read differently: a line that does not start with
``{`` and end with ``}``, holds a backslash (an escape) or more than a few brackets, or
has an unknown field holding a number that is not a finite double or a nested value
(orjson refuses NaN, infinities and deep nesting where pyarrow's reader does not); a
block with a lone carriage return (Python's reader ends a line there, pyarrow does not)
goes through the Python path whole, and a run of lines that pyarrow cannot read at all
is halved until the lines that break it are found. Rows come out in the file's order
with the Python path's line numbers, so the batches are the same as the Python path
makes them (``bandit_pipeline_tests/test_ingest_vectorised.py`` holds the two paths to
the same rows and rejections).
"""

from __future__ import annotations

import functools
import gc
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from bandit_pipeline.identifiers import MAX_ID_LENGTH, NAME_REGEX
from bandit_pipeline.ingest.copy_text import arrow_lines
from bandit_pipeline.ingest.events import (
    EVENT_COLUMNS,
    EVENT_TYPES,
    MAX_SLOT,
    VARIANTS,
    EventRow,
    EventValidator,
)
from bandit_pipeline.ingest.readers import (
    PARQUET_BATCH_ROWS,
    SourceRecord,
    detect_format,
    jsonl_record,
    open_binary,
    open_parquet,
    parquet_record,
    read_records,
)
from bandit_pipeline.ingest.validation import EARLIEST_PLAUSIBLE, warehouse_time

# About 8,000 events of JSON Lines: large enough that pyarrow's per-call costs vanish,
# small enough that a block's rows as Python tuples stay well under a batch's memory.
BLOCK_BYTES = 2 * 1024 * 1024
# Accepted rows are made into Python tuples this many at a time.
CONVERT_ROWS = 1024
# A run of lines that pyarrow cannot read is halved down to this many lines, which then
# go through the Python path.
MIN_SPLIT_LINES = 64
# A line with more '{' and '[' than this goes through the Python path (orjson refuses
# nesting deeper than 1024; most events hold one object and no array).
MAX_BRACKETS = 64

# Every column the validator reads: text, but for slot and explore. A live ingest ignores
# ingested_at, and reads it as an unknown field.
_TYPES = {"slot": pa.int64(), "explore": pa.bool_()}
_SCHEMA = pa.schema(
    [(name, _TYPES.get(name, pa.string())) for name in EVENT_COLUMNS],
)

# 1-256 printable ASCII characters, not all spaces (the length is checked apart).
_ID = r"^ *[!-~][ -~]*$"
_NAME = f"^{NAME_REGEX}$"
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}(\+00:00|Z)?$"
_SECONDS = "%Y-%m-%d %H:%M:%S"
_EARLIEST = warehouse_time(EARLIEST_PLAUSIBLE)
# Bytes that make an id or a name whatever their order (an id also needs no space then).
_ID_BYTES = np.zeros(256, dtype=bool)
_ID_BYTES[ord("!") : ord("~") + 1] = True
_NAME_BYTES = np.zeros(256, dtype=bool)
_NAME_BYTES[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")] = True
_MAX_NAME_LENGTH = 64  # as NAME_REGEX
# Every array of the vectorised path comes from the system allocator's pool: pyarrow's
# default (mimalloc) keeps blocks it freed, and an ingest's peak memory grew with the file.
_POOL = pa.system_memory_pool()


class _PooledCompute:
    """``pyarrow.compute`` with every result allocated from :data:`_POOL`."""

    def __getattr__(self, name: str) -> Any:
        return functools.partial(getattr(pc, name), memory_pool=_POOL)


_pc = _PooledCompute()
_EVENT_TYPES = pa.array(sorted(EVENT_TYPES))
_VARIANTS = pa.array(sorted(VARIANTS))
_LF, _CR, _OPEN, _CLOSE, _BRACKET, _BACKSLASH = (ord(c) for c in "\n\r{}[\\")


@dataclass(slots=True)
class ValidRows:
    """Rows of consecutive input records that the vectorised checks accepted, each in
    :data:`~.events.EVENT_COLUMNS` order as the validator would have made it (or as its
    line of COPY text, :func:`.copy_text.copy_line` of that row)."""

    rows: list[EventRow] | list[bytes]


Item = SourceRecord | ValidRows


def event_records(
    path: str, fmt: str | None, validator: EventValidator, *, copy_text: bool = False
) -> Iterator[Item]:
    """The events of ``path`` in order: runs of rows already validated, and records for
    the Python path (:func:`.readers.read_records`' records, with the same numbers).
    With ``copy_text`` the validated rows come as lines of COPY text (:mod:`.copy_text`)
    rather than tuples."""
    fmt = detect_format(path, fmt)
    checks = _Checks(validator, copy_text=copy_text)
    if fmt == "jsonl":
        yield from _jsonl_items(path, checks)
    elif fmt == "parquet":
        yield from _parquet_items(path, checks)
    else:
        yield from read_records(path, fmt)


class _Checks:
    """The validator's settings as the vectorised checks use them."""

    def __init__(self, validator: EventValidator, *, copy_text: bool = False) -> None:
        self.copy_text = copy_text
        self.latest = warehouse_time(validator.latest_allowed.astimezone(UTC))
        self.namespace = validator.default_namespace
        self.historical = validator.historical
        self.schema = (
            _SCHEMA
            if self.historical
            else pa.schema([field for field in _SCHEMA if field.name != "ingested_at"])
        )
        self.parse = pj.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="infer")

    def accepted(self, table: pa.Table) -> tuple[np.ndarray, _Columns]:
        """Which rows of ``table`` (columns as :attr:`schema`) are certainly valid, and
        their values as the validator makes them."""
        column = table.column
        occurred, ok = self._moments(column("occurred_at"))
        ok = _and(ok, _pc.is_in(column("event_type"), value_set=_EVENT_TYPES))
        for name in ("event_id", "user_id", "request_id", "item_id"):
            ok = _and(ok, _is_id(column(name)))
        for name in ("bandit_policy_id", "experiment"):
            ok = _and(ok, _absent_or(column(name), _is_id))
        variant = column("variant")
        ok = _and(
            ok,
            _pc.or_(
                _pc.is_null(variant),
                _pc.and_(
                    _pc.is_in(variant, value_set=_VARIANTS), _pc.is_valid(column("experiment"))
                ),
            ),
        )
        slot = column("slot")
        ok = _and(ok, _absent_or(slot, _slot_in_range))
        ok = _and(ok, _absent_or(column("namespace"), _is_name))
        ok = _and(ok, _is_name(column("surface")))
        ingested: Any = None
        if self.historical:
            raw = column("ingested_at")
            moment, fine = self._moments(raw)
            absent = _pc.is_null(raw)
            ok = _and(
                ok, _pc.or_kleene(absent, _pc.and_kleene(fine, _pc.greater_equal(moment, occurred)))
            )
            ingested = _pc.if_else(absent, occurred, moment)
        mask = ok.to_numpy(zero_copy_only=False)
        if not mask.any():
            return mask, _Columns([], 0)
        keep = pa.array(mask, memory_pool=_POOL)
        arrays = {
            "occurred_at": occurred,
            "ingested_at": ingested,
            "namespace": _pc.coalesce(column("namespace"), self.namespace),
            "explore": _pc.coalesce(column("explore"), False),
        }
        columns = [
            None
            if (array := arrays[name] if name in arrays else column(name)) is None
            else _pc.filter(array, keep)
            for name in EVENT_COLUMNS
        ]
        if self.copy_text:
            columns = [arrow_lines(columns, self.historical, _POOL)]
        return mask, _Columns(columns, int(mask.sum()))

    def _moments(self, text: Any) -> tuple[Any, Any]:
        """The canonical text (``warehouse_time``) of each timestamp, and whether it is
        certainly a valid one in the allowed range."""
        shaped = _pc.coalesce(_pc.match_substring_regex(text, _TIME), False)
        # In the one form (ASCII), the canonical text is the first 26 characters with a
        # space for the T; the others are left null.
        ascii_only = _pc.if_else(shaped, text, pa.scalar(None, pa.string()))
        canonical = _pc.binary_replace_slice(
            _pc.binary_replace_slice(ascii_only, start=26, stop=64, replacement=""),
            start=10,
            stop=11,
            replacement=" ",
        )
        ok = _and(
            shaped,
            _pc.and_(
                _pc.greater_equal(canonical, _EARLIEST), _pc.less_equal(canonical, self.latest)
            ),
        )
        # A real calendar instant: pyarrow's ISO 8601 cast refuses 02-30, 24:00 and :60,
        # but for the whole array; then each is parsed and written back, and a time that
        # does not come back the same (02-30 comes back as 03-02) is not one.
        seconds = _pc.binary_replace_slice(canonical, start=19, stop=64, replacement="")
        try:
            _pc.cast(seconds, pa.timestamp("s"))
        except pa.ArrowInvalid:
            parsed = _pc.strptime(seconds, format=_SECONDS, unit="s", error_is_null=True)
            ok = _and(ok, _pc.equal(_pc.strftime(parsed, format=_SECONDS), seconds))
        return canonical, ok


class _Columns:
    """Accepted rows as arrays in :data:`~.events.EVENT_COLUMNS` order (None: a column
    of nulls), made into Python tuples a slice at a time, so that only a slice's worth
    of Python objects exists beyond the batches; or as one array of lines of COPY text,
    made into ``bytes`` the same way."""

    def __init__(self, arrays: list[Any], count: int) -> None:
        self.arrays = arrays
        self.count = count

    def rows(self, start: int, stop: int) -> list[EventRow]:
        size = stop - start
        gc_was_enabled = gc.isenabled()
        # Tuples of strings hold no cycles; collecting while tens of thousands of them
        # are made would cost about as much as making them.
        gc.disable()
        try:
            lists = [
                [None] * size if array is None else array.slice(start, size).to_pylist()
                for array in self.arrays
            ]
            return lists[0] if len(lists) == 1 else list(zip(*lists, strict=True))
        finally:
            if gc_was_enabled:
                gc.enable()


class _Pending:
    """The accepted rows of a block, piece by piece, handed out in order."""

    def __init__(self) -> None:
        self.pieces: deque[_Columns] = deque()
        self.offset = 0

    def add(self, columns: _Columns) -> None:
        if columns.count:
            self.pieces.append(columns)

    def take(self, count: int) -> Iterator[ValidRows]:
        """The next ``count`` rows, in runs of at most :data:`CONVERT_ROWS`."""
        while count:
            piece = self.pieces[0]
            stop = min(piece.count, self.offset + count, self.offset + CONVERT_ROWS)
            yield ValidRows(piece.rows(self.offset, stop))
            count -= stop - self.offset
            self.offset = stop
            if stop == piece.count:
                self.pieces.popleft()
                self.offset = 0


def _and(left: Any, right: Any) -> Any:
    """Both true, a null counting as false."""
    return _pc.and_(_pc.coalesce(left, False), _pc.coalesce(right, False))


def _absent_or(values: Any, check: Any) -> Any:
    return _pc.or_(_pc.is_null(values), _pc.coalesce(check(values), False))


def _is_id(values: Any) -> Any:
    fits = _length_between(values, 1, MAX_ID_LENGTH)
    if _only_bytes(values, _ID_BYTES):  # the common case, without a regex
        return fits
    return _and(_pc.match_substring_regex(values, _ID), fits)


def _is_name(values: Any) -> Any:
    if _only_bytes(values, _NAME_BYTES):
        return _length_between(values, 1, _MAX_NAME_LENGTH)
    return _pc.match_substring_regex(values, _NAME)


def _length_between(values: Any, low: int, high: int) -> Any:
    length = _pc.binary_length(values)
    return _pc.and_(_pc.greater_equal(length, low), _pc.less_equal(length, high))


def _only_bytes(values: Any, allowed: np.ndarray) -> bool:
    """Whether every byte of every string of ``values`` is one of ``allowed``."""
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        _, offsets, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        bounds = np.frombuffer(offsets, dtype=np.int32)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        if not allowed[np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]]].all():
            return False
    return True


def _slot_in_range(values: Any) -> Any:
    return _pc.and_(_pc.greater_equal(values, 0), _pc.less_equal(values, MAX_SLOT))


# --- JSON Lines


def _jsonl_items(path: str, checks: _Checks) -> Iterator[Item]:
    line_number = 1
    with open_binary(path) as handle:
        rest = b""
        while chunk := handle.read(BLOCK_BYTES):
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than a block
                rest = data
                continue
            rest = data[cut:]
            line_number = yield from _block(data[:cut], line_number, checks)
        if rest:
            yield from _block(rest, line_number, checks)


def _block(block: bytes, first: int, checks: _Checks) -> Iterator[Item]:
    """The items of ``block``, whole lines whose first is line ``first``; returns the
    number of the line after it."""
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            # As Python's reader sees it; no line ending is ever replaced.
            block = block.decode("utf-8", "replace").encode("utf-8")
    carriage_returns = block.count(b"\r")
    if carriage_returns and carriage_returns != block.count(b"\r\n"):
        return (yield from _python_block(block, first))
    lines = _Lines(block)
    accepted = np.zeros(lines.count, dtype=bool)
    pending = _Pending()
    for start, stop in _runs(lines.candidates()):
        for piece, table in _parsed(block, lines, start, stop, checks):
            mask, columns = checks.accepted(table)
            accepted[piece[mask]] = True
            pending.add(columns)
    yield from _interleave(
        accepted, pending, lambda index: jsonl_record(first + index, lines.text(block, index))
    )
    return first + lines.count


class _Lines:
    """Where the lines of a block start and end (without their line ending)."""

    def __init__(self, block: bytes) -> None:
        self.bytes = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(self.bytes == _LF)
        self.complete = len(ends)
        if not block.endswith(b"\n"):
            ends = np.append(ends, len(block))
        self.ends = ends
        self.starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
        self.count = len(ends)

    def candidates(self) -> np.ndarray:
        """Lines that pyarrow may read: ``{`` first, ``}`` last (before an optional
        carriage return), no backslash, few brackets."""
        data, starts, ends = self.bytes, self.starts, self.ends
        if not len(data):
            return np.zeros(0, dtype=bool)
        top = len(data) - 1
        last = np.clip(ends - 1, 0, top)
        last = np.where(data[last] == _CR, last - 1, last)
        ok = (last > starts) & (data[np.minimum(starts, top)] == _OPEN)
        ok &= data[np.clip(last, 0, top)] == _CLOSE
        backslashes = np.flatnonzero(data == _BACKSLASH)
        if len(backslashes):
            ok[self._lines_of(backslashes)] = False
        brackets = np.flatnonzero((data == _OPEN) | (data == _BRACKET))
        if len(brackets) > self.count:
            per_line = np.bincount(self._lines_of(brackets), minlength=self.count)
            ok &= per_line <= MAX_BRACKETS
        return ok

    def _lines_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ends, positions)

    def text(self, block: bytes, index: int) -> str:
        """Line ``index`` as Python's reader yields it, with its line ending."""
        stop = int(self.ends[index]) + (index < self.complete)
        return block[int(self.starts[index]) : stop].decode("utf-8")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) ranges of consecutive true values of ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _parsed(
    block: bytes, lines: _Lines, start: int, stop: int, checks: _Checks
) -> Iterator[tuple[np.ndarray, pa.Table]]:
    """Lines [start, stop) read by pyarrow, one row a line, with their line indexes; a
    run pyarrow cannot read, or reads as another number of rows, is halved until the
    pieces are read or small (and then left to the Python path)."""
    low = int(lines.starts[start])
    high = min(int(lines.ends[stop - 1]) + 1, len(block))
    data = pa.py_buffer(block).slice(low, high - low)
    options = pj.ReadOptions(use_threads=False, block_size=max(high - low, 1) + 1)
    try:
        table = pj.read_json(
            pa.BufferReader(data),
            read_options=options,
            parse_options=checks.parse,
            memory_pool=_POOL,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        table = None
    if table is not None and table.num_rows == stop - start:
        indexes = np.arange(start, stop)
        known = checks.schema.names
        safe = _safe_extras(table, known)
        if safe is None:
            yield indexes, table.select(known)
        else:
            # Rows whose unknown fields orjson might refuse are left to the Python path.
            yield (
                indexes[safe],
                _pc.filter(table.select(known), pa.array(safe, memory_pool=_POOL)),
            )
        return
    if stop - start <= MIN_SPLIT_LINES:
        return
    middle = (start + stop) // 2
    yield from _parsed(block, lines, start, middle, checks)
    yield from _parsed(block, lines, middle, stop, checks)


def _safe_extras(table: pa.Table, known: list[str]) -> np.ndarray | None:
    """Which rows hold only unknown fields that both parsers read alike (strings,
    booleans, 64-bit integers, finite doubles, nulls); None when all rows do."""
    safe = None
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in known:
            continue
        kind = column.type
        if (
            pa.types.is_string(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_null(kind)
            or pa.types.is_int64(kind)
            or pa.types.is_timestamp(kind)
        ):
            continue
        if pa.types.is_float64(kind):
            fine = _pc.or_(_pc.is_null(column), _pc.coalesce(_pc.is_finite(column), False))
        else:
            fine = _pc.is_null(column)
        fine = fine.to_numpy(zero_copy_only=False)
        safe = fine if safe is None else safe & fine
    return safe


def _python_block(block: bytes, first: int) -> Iterator[Item]:
    """The block through Python's own reader; returns the number of the next line."""
    number = first - 1
    for number, line in enumerate(io.StringIO(block.decode("utf-8"), newline=""), start=first):
        record = jsonl_record(number, line)
        if record is not None:
            yield record
    return number + 1


def _interleave(accepted: np.ndarray, pending: _Pending, record: Any) -> Iterator[Item]:
    """Runs of accepted rows and, between them, the records of the other lines
    (``record(index)``, None for a blank line), in line order."""
    previous = 0
    for index in [*np.flatnonzero(~accepted).tolist(), len(accepted)]:
        if index > previous:
            yield from pending.take(index - previous)
        previous = index + 1
        if index < len(accepted) and (item := record(index)) is not None:
            yield item


# --- Parquet


def _parquet_items(path: str, checks: _Checks) -> Iterator[Item]:
    row_number = 0
    for batch in open_parquet(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        table = _parquet_table(batch, checks.schema)
        pending = _Pending()
        if table is None:
            accepted = np.zeros(batch.num_rows, dtype=bool)
        else:
            accepted, columns = checks.accepted(table)
            pending.add(columns)
        first = row_number + 1

        def record(index: int, batch: pa.RecordBatch = batch, first: int = first) -> SourceRecord:
            return parquet_record(first + index, batch.slice(index, 1).to_pylist()[0])

        yield from _interleave(accepted, pending, record)
        row_number += batch.num_rows


def _parquet_table(batch: pa.RecordBatch, schema: pa.Schema) -> pa.Table | None:
    """The batch's known columns in ``schema``'s types, or None when one of them
    has another type (the whole batch then goes through the Python path)."""
    names = batch.schema.names
    if len(set(names)) != len(names):
        return None
    columns = []
    for field in schema:
        if field.name not in names:
            columns.append(pa.nulls(batch.num_rows, field.type, memory_pool=_POOL))
            continue
        column = batch.column(field.name)
        kind = column.type
        if field.type == pa.string():
            fits = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        elif field.type == pa.int64():
            fits = pa.types.is_integer(kind)
        else:
            fits = pa.types.is_boolean(kind)
        if not (fits or pa.types.is_null(kind)):
            return None
        try:
            columns.append(_pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return pa.Table.from_arrays(columns, schema=schema)
