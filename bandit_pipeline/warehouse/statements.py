"""SQL files as SQLAlchemy clauses that run unchanged on PostgreSQL and SQLite."""

from __future__ import annotations

import re
from functools import cache

from sqlalchemy import DateTime, TextClause, bindparam, text

from bandit_pipeline.warehouse.sql_files import read_sql, sql_statements

# Parameters that carry instants: bound as UTC timestamps (timestamptz on PostgreSQL,
# the canonical text on SQLite).
TIMESTAMP_PARAMS = ("as_of", "window_start", "future_scan_start", "previous_as_of", "decided_at")
_INCLUDE = re.compile(r"\{([a-z_]+/[a-z_]+)\}")


def _expanded(name: str) -> str:
    """The first statement of ``sql/NAME.sql``; ``{dir/file}`` includes another file's
    statement as a subquery."""
    body = sql_statements(read_sql(name))[0]
    return _INCLUDE.sub(lambda match: _expanded(match.group(1)), body)


@cache
def sql_statement(name: str) -> TextClause:
    """``sql/NAME.sql`` as a clause with its timestamp parameters typed."""
    return typed_text(_expanded(name))


def typed_text(body: str) -> TextClause:
    typed = [
        bindparam(p, type_=DateTime(timezone=True)) for p in TIMESTAMP_PARAMS if f":{p}" in body
    ]
    return text(body).bindparams(*typed) if typed else text(body)
