"""Stream records out of JSON Lines, CSV and Parquet files without reading them whole.

Each record keeps the text it came from (or a JSON rendering of it), so a row that
fails validation can be kept aside exactly as it arrived.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


# Parquet rows are read this many at a time.
PARQUET_BATCH_ROWS = 10_000


class SourceError(OSError):
    """The input cannot be read at all (missing, unreadable, wrong format)."""


@dataclass(slots=True)
class SourceRecord:
    """One input row: the parsed mapping, or the reason it could not be parsed."""

    line_number: int
    raw: str
    fields: dict[str, Any] | None
    parse_error: str | None = None


def detect_format(path: str, declared: str | None = None) -> str:
    """The format named by ``declared`` or by the file's suffix (stdin defaults to jsonl)."""
    if declared:
        if declared not in FORMATS:
            raise SourceError(f"unknown format {declared!r}; expected one of {', '.join(FORMATS)}")
        return declared
    if path == "-":
        return "jsonl"
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    for suffix in reversed(suffixes):
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
    raise SourceError(f"cannot tell the format of {path!r}; pass --format jsonl|csv|parquet")


def read_records(path: str, fmt: str | None = None) -> Iterator[SourceRecord]:
    """Yield the records of ``path`` (``-`` for stdin) one at a time."""
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        yield from _parquet_records(path)
        return
    with _open_text(path) as handle:
        if fmt == "jsonl":
            yield from _jsonl_records(handle)
        else:
            yield from _csv_records(handle)


def count_records(path: str, fmt: str | None = None) -> int | None:
    """How many records ``path`` holds, cheaply (for a progress bar): Parquet's row count,
    the lines of a text file (less a CSV header). None for stdin."""
    if path == "-":
        return None
    fmt = detect_format(path, fmt)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        opener = gzip.open if path.endswith(".gz") else open
        lines = last = 0
        with opener(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1]
        lines += bool(last) and last != ord("\n")  # a last line without its newline
    except OSError as exc:
        raise SourceError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    return max(0, lines - 1) if fmt == "csv" else lines


def _open_text(path: str) -> IO[str]:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
        return open(path, encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise SourceError(f"cannot read {path!r}: {exc.strerror or exc}") from exc


def open_binary(path: str) -> IO[bytes]:
    """``path`` (``-`` for stdin, ``.gz`` uncompressed on the fly) for reading bytes."""
    if path == "-":
        return sys.stdin.buffer
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise SourceError(f"cannot read {path!r}: {exc.strerror or exc}") from exc


def _jsonl_records(handle: IO[str]) -> Iterator[SourceRecord]:
    for line_number, line in enumerate(handle, start=1):
        record = jsonl_record(line_number, line)
        if record is not None:
            yield record


def jsonl_record(line_number: int, line: str) -> SourceRecord | None:
    """The record of one line of JSON Lines (with its line ending), or None for a blank
    line."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        text = line.rstrip("\r\n")
        if text.strip():
            return SourceRecord(line_number, text, None, f"not valid JSON: {exc}")
        return None
    if type(value) is not dict:
        return SourceRecord(line_number, line.rstrip("\r\n"), None, "not a JSON object")
    return SourceRecord(line_number, line, value)


def _csv_records(handle: IO[str]) -> Iterator[SourceRecord]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise SourceError(f"cannot read the CSV header: {exc}") from exc
    names = [name.strip() for name in header]
    width = len(names)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield SourceRecord(reader.line_num, "", None, f"malformed CSV: {exc}")
            continue
        if not values:
            continue
        raw = orjson.dumps(dict(zip(names, values, strict=False))).decode()
        if len(values) != width:
            yield SourceRecord(
                reader.line_num, raw, None, f"expected {width} CSV fields, found {len(values)}"
            )
            continue
        # Empty CSV cells mean "absent".
        yield SourceRecord(
            reader.line_num, raw, {k: v for k, v in zip(names, values, strict=True) if v != ""}
        )


def open_parquet(path: str) -> Any:
    """The ``pyarrow.parquet.ParquetFile`` of ``path``, or SourceError."""
    import pyarrow.parquet as pq

    if path == "-":
        raise SourceError("Parquet cannot be read from stdin; pass a file path")
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {path!r} as Parquet: {exc}") from exc


def _parquet_records(path: str) -> Iterator[SourceRecord]:
    row_number = 0
    for batch in open_parquet(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for fields in batch.to_pylist():
            row_number += 1
            yield parquet_record(row_number, fields)


def parquet_record(row_number: int, fields: dict[str, Any]) -> SourceRecord:
    """The record of one Parquet row, as ``to_pylist`` gives it (nulls mean absent)."""
    fields = {k: v for k, v in fields.items() if v is not None}
    return SourceRecord(row_number, orjson.dumps(fields, default=str).decode(), fields)
