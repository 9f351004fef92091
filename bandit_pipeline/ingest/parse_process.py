"""Reading and validating a large file in a second process, beside the warehouse writes.

Parsing and validating events costs CPU beside what PostgreSQL spends storing them
(about 4 us an event through the vectorised checks of :mod:`.vectorised`, 9 us through
the Python validator alone), and in one process the two share one interpreter lock: the
writer thread that feeds COPY waits while the parser holds it. In a process of its own
the parser uses a core of its own, and the ingest process only receives whole batches
and writes them, so the ingest runs at close to the speed of the warehouse
(docs/performance.md).

The parser sends each batch over a pipe as soon as it is validated and waits while the
pipe is full, so memory stays at a few batches. What it sends is what the
in-process path yields (:class:`Batch`), with the running counts of rows read and of
rejection reasons, so the report is the same; for PostgreSQL a batch's valid rows come
already in COPY's text format, each event_id once (:mod:`.copy_text`), and the ingest
process passes them to the server as they are. If the ingest process dies, the parser's
next send fails and it exits; if the parser fails, the ingest raises its error.
"""

from __future__ import annotations

import marshal
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from bandit_pipeline.ingest.copy_text import CopyRows, copy_rows, validated_lines
from bandit_pipeline.ingest.events import EventValidator
from bandit_pipeline.ingest.loader import Batch, IngestReport, Validator, split_batches
from bandit_pipeline.ingest.readers import SourceError, SourceRecord, read_records
from bandit_pipeline.ingest.vectorised import ValidRows, event_records

# Files at least this large are parsed in a second process; below it, starting the
# process (about half a second) costs more than it saves.
MIN_BYTES = 16 * 1024 * 1024


def worth_a_process(path: str) -> bool:
    """Whether ``path`` is a regular file large enough to parse in a second process."""
    if path == "-":
        return False
    try:
        return Path(path).is_file() and Path(path).stat().st_size >= MIN_BYTES
    except OSError:
        return False


def batches_from_process(
    path: str,
    fmt: str | None,
    validate: Validator,
    batch_size: int,
    report: IngestReport,
    *,
    vectorised: bool = True,
    copy_text: bool = False,
) -> Iterator[Batch]:
    """The batches of ``path`` as :func:`split_batches` makes them, parsed and validated
    in a second process (events through :mod:`.vectorised` unless ``vectorised`` is
    false); ``report`` gets the rows read and the rejection reasons. With ``copy_text``
    (events into PostgreSQL) each batch's valid rows come as :class:`.copy_text.CopyRows`,
    ready for COPY, instead of tuples.

    The parser is this module run as a program (``python -m``), not a multiprocessing
    child, so no caller's main module is imported again in it. It gets its job on its
    standard input and sends length-prefixed pickles on its standard output.
    """
    # Its error output goes to a file, so that no amount of it can block the parser.
    with tempfile.TemporaryFile() as errors:
        parser = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        try:
            job = (path, fmt, validate, batch_size, vectorised, copy_text)
            yield from _batches(parser, path, job, report, errors)
        finally:
            if parser.poll() is None:
                parser.kill()
            parser.wait()
            if parser.stdout is not None:
                parser.stdout.close()


def _batches(
    parser: subprocess.Popen, path: str, job: tuple, report: IngestReport, errors: IO[bytes]
) -> Iterator[Batch]:
    if parser.stdin is None or parser.stdout is None:
        raise RuntimeError("the parser process has no pipes")
    parser.stdin.write(pickle.dumps(job))
    parser.stdin.close()
    while True:
        kind, payload = _receive(parser.stdout)
        if kind == "missing":
            parser.wait(timeout=30)
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip().splitlines()
            last = detail[-1] if detail else f"exit code {parser.returncode}"
            raise RuntimeError(f"the parser process of {path!r} failed: {last}")
        if kind == "error":
            raise payload
        report.read, report.reasons = payload["read"], payload["reasons"]
        report.vectorised = payload["vectorised"]
        if kind == "done":
            return
        yield payload["batch"]


_LENGTH = struct.Struct("!Q")
_MARSHAL, _PICKLE = b"M", b"P"


def _receive(stream: IO[bytes]) -> tuple[str, Any]:
    """The next message from the parser, or ("missing", None) when it ended early."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return "missing", None
    (length,) = _LENGTH.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return "missing", None
    if body[:1] == _MARSHAL:
        kind, payload, batch = marshal.loads(body[1:])
        if batch is not None:
            rows, rejects = batch
            # COPY text travels as the tuple of its fields, rows as a list.
            payload["batch"] = Batch(CopyRows(*rows) if type(rows) is tuple else rows, rejects)
        return kind, payload
    return pickle.loads(body[1:])


def _send(stream: IO[bytes], kind: str, payload: Any) -> None:
    """A message to the ingest. Batches and counts hold only bytes, strings, numbers,
    None and containers of them, which marshal writes and reads several times faster
    than pickle (both processes run the same interpreter); anything else is pickled."""
    try:
        batch = payload.get("batch") if isinstance(payload, dict) else None
        counts = {k: v for k, v in payload.items() if k != "batch"} if batch else payload
        rows = None
        if batch is not None:
            valid = batch.rows
            if type(valid) is CopyRows:
                valid = (valid.data, valid.rows, valid.distinct, valid.historical)
            rows = (valid, batch.rejects)
        body = _MARSHAL + marshal.dumps((kind, counts, rows))
    except ValueError:  # something marshal cannot write
        body = _PICKLE + pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(body)))
    stream.write(body)
    stream.flush()


def _parse(
    path: str,
    fmt: str | None,
    validate: Validator,
    size: int,
    vectorised: bool,
    copy_text: bool,
    out: IO[bytes],
) -> None:
    """The parser: validate ``path`` batch by batch and send each batch with the counts
    (its valid rows as COPY text with ``copy_text``)."""
    report = IngestReport()

    def counts(**more: Any) -> dict[str, Any]:
        return {
            "read": report.read,
            "reasons": report.reasons,
            "vectorised": report.vectorised,
            **more,
        }

    try:
        copy_text = copy_text and isinstance(validate, EventValidator)
        if vectorised and isinstance(validate, EventValidator):
            records: Iterable[SourceRecord | ValidRows] = event_records(
                path, fmt, validate, copy_text=copy_text
            )
        else:
            records = read_records(path, fmt)
        check = validated_lines(validate) if copy_text else validate
        for batch in split_batches(records, check, size, path, report):
            if copy_text:
                batch.rows = copy_rows(batch.rows, validate.historical)
            _send(out, "batch", counts(batch=batch))
        _send(out, "done", counts())
    except SourceError as exc:
        _send(out, "error", exc)
    except Exception as exc:  # any other failure, named in the ingest's own error
        _send(out, "error", RuntimeError(f"parsing {path!r}: {exc!r}"))


def main() -> int:
    """Entry point of the parser process."""
    path, fmt, validate, size, vectorised, copy_text = pickle.loads(sys.stdin.buffer.read())
    try:
        _parse(path, fmt, validate, size, vectorised, copy_text, sys.stdout.buffer)
    except (BrokenPipeError, ConnectionResetError):
        # The ingest is gone; nothing is left to do (and nothing to flush at exit).
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
