"""SQLAlchemy engines for PostgreSQL (production) and SQLite (embedded default)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from bandit_pipeline.policy import decay_factor

SUPPORTED_DIALECTS = ("postgresql", "sqlite")

# Every PostgreSQL session of the product: timestamps without an offset are UTC, whatever
# the server's default zone; and no JIT compilation. The job's window statements are
# planned as large (a million rows), so the server would spend seconds compiling them
# with JIT for a run of a few seconds (docs/performance.md).
POSTGRES_SESSION_OPTIONS = "-c timezone=UTC -c jit=off"


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for ``url``; SQLite files get their folder, WAL mode and a busy timeout
    so that a concurrent ingest waits instead of failing."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ValueError(f"unsupported warehouse dialect {parsed.get_backend_name()!r}")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # A bare postgresql:// means psycopg 3 in SQLAlchemy 2.1; say it explicitly.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 60})
    else:
        kwargs.setdefault("connect_args", {"options": POSTGRES_SESSION_OPTIONS})
    engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The posterior SQL is shared with PostgreSQL, where bandit_epoch() and bandit_decay()
    # are SQL functions (migrations 0002 and 0008) and power() is built in.
    dbapi_connection.create_function("bandit_epoch", 1, sqlite_epoch, deterministic=True)
    dbapi_connection.create_function("bandit_decay", 2, _decay, deterministic=True)
    dbapi_connection.create_function("power", 2, _power, deterministic=True)
    dbapi_connection.create_function("bandit_timestamp", 1, sqlite_timestamp, deterministic=True)
    # PostgreSQL's LEAST and GREATEST, which skip NULLs (SQLite's min() and max() of
    # several arguments return NULL as soon as one is NULL).
    dbapi_connection.create_function("least", -1, _least, deterministic=True)
    dbapi_connection.create_function("greatest", -1, _greatest, deterministic=True)
    for name, function in (
        ("floor", math.floor),
        ("ln", math.log),
        ("exp", math.exp),
        ("sqrt", math.sqrt),
    ):
        dbapi_connection.create_function(name, 1, _nullable(function), deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def aware_timestamp(value: datetime | str) -> datetime:
    """A warehouse timestamp as the driver returned it, made timezone-aware: SQLite returns
    the canonical text, which is UTC, and so is a naive value."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sqlite_epoch(value: str | None) -> float | None:
    """Seconds since the epoch of a warehouse timestamp text (UTC)."""
    if value is None:
        return None
    return aware_timestamp(value).timestamp()


def sqlite_timestamp(seconds: float | None) -> str | None:
    """The canonical warehouse text of an epoch time (the inverse of sqlite_epoch)."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="microseconds")


def _nullable(function):
    def wrapped(value):
        return None if value is None else function(value)

    return wrapped


def _decay(elapsed_seconds: float | None, half_life_seconds: float | None) -> float | None:
    if elapsed_seconds is None or half_life_seconds is None:
        return None
    return decay_factor(elapsed_seconds, half_life_seconds)


def _least(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _greatest(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _power(base: float | None, exponent: float | None) -> float | None:
    if base is None or exponent is None:
        return None
    return math.pow(base, exponent)


_LOST = ("terminating connection", "server closed the connection", "connection already closed",
         "consuming input failed", "ssl connection has been closed")  # fmt: skip
_UNREACHABLE = ("connection failed", "could not connect", "connection refused",
                "connection timed out", "name or service not known", "unable to open")  # fmt: skip


def warehouse_failure(exc: BaseException) -> str:
    """What went wrong with the warehouse, in one line: "unreachable", "connection lost"
    or "error", then the driver's first line (which names no password)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    lowered = first.lower()
    if getattr(exc, "connection_invalidated", False) or any(m in lowered for m in _LOST):
        kind = "connection lost"
    elif any(m in lowered for m in _UNREACHABLE):
        kind = "unreachable"
    else:
        kind = "error"
    return f"{kind}: {first}"
