"""The one loader of the readable ``.sql`` files under ``sql/``.

The conventions every file keeps, so that analysts can read and run them as they are:

- ``NAME.sql`` serves every dialect; ``NAME.postgresql.sql``, ``NAME.sqlite.sql`` and
  ``NAME.spark.sql`` (Spark SQL, warehouse/spark.py) hold a dialect's own variant and win
  over the shared one.
- A statement ends with ``;`` as the last character of a line, and no string literal
  spans such a line. Comment-only lines are dropped.
- ``{{ include dir/name }}`` stands for the first statement of ``sql/dir/name.sql`` (of
  the same dialect), typically as a subquery: ``FROM ({{ include pool/candidates }}) AS
  pool``. It is the only substitution: values always travel as bind parameters.
- A comment line ``-- timestamps: as_of, window_start`` declares the bind parameters that
  carry instants; they are bound as UTC timestamps (``timestamptz`` on PostgreSQL, the
  canonical text on SQLite, ``TIMESTAMP`` in a UTC session on Spark, whose ``spark.sql``
  takes the same ``:name`` markers as named arguments). An included file's declarations
  hold where it is included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Engine, TextClause, bindparam, text

if TYPE_CHECKING:
    from bandit_pipeline.warehouse.spark import SparkWarehouse

# An installed wheel carries the files inside the package; a checkout keeps them at the top.
_PACKAGED_SQL = Path(__file__).resolve().parents[1] / "sql"
SQL_DIR = _PACKAGED_SQL if _PACKAGED_SQL.is_dir() else Path(__file__).resolve().parents[2] / "sql"
_INCLUDE = re.compile(r"\{\{\s*include\s+([a-z_]+/[a-z_]+)\s*\}\}")
_TIMESTAMPS = re.compile(r"^\s*--\s*timestamps:(.*)$")


@dataclass(frozen=True)
class SqlFile:
    """The statements of one file, includes expanded, and its timestamp parameters."""

    name: str
    statements: tuple[str, ...]
    timestamps: frozenset[str]

    def clauses(self) -> list[TextClause]:
        """Every statement as a SQLAlchemy clause with its timestamp parameters typed."""
        return [self._clause(statement) for statement in self.statements]

    def clause(self) -> TextClause:
        """The file's only statement as a clause (a file of several is an error here)."""
        if len(self.statements) != 1:
            raise ValueError(f"sql/{self.name} holds {len(self.statements)} statements, not 1")
        return self._clause(self.statements[0])

    def _clause(self, statement: str) -> TextClause:
        typed = [
            bindparam(name, type_=DateTime(timezone=True))
            for name in sorted(self.timestamps)
            if _uses(statement, name)
        ]
        return text(statement).bindparams(*typed) if typed else text(statement)


def sql_path(name: str, dialect: str | None = None) -> Path:
    """The file that holds ``NAME`` for ``dialect``: its own variant, else the shared one."""
    candidates = [SQL_DIR / f"{name}.{dialect}.sql"] if dialect else []
    candidates.append(SQL_DIR / f"{name}.sql")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no SQL file for {name!r} (dialect {dialect}) under {SQL_DIR}")


@cache
def sql_file(name: str, dialect: str | None = None) -> SqlFile:
    """``sql/NAME[.dialect].sql``, read once per process."""
    statements, timestamps = _parse(sql_path(name, dialect).read_text(encoding="utf-8"))

    def expand(match: re.Match[str]) -> str:
        included = sql_file(match.group(1), dialect)
        timestamps.update(included.timestamps)
        return included.statements[0]

    expanded = tuple(_INCLUDE.sub(expand, statement) for statement in statements)
    declared_unused = {p for p in timestamps if not any(_uses(s, p) for s in expanded)}
    if declared_unused:
        raise ValueError(f"sql/{name} declares unused timestamps {sorted(declared_unused)}")
    return SqlFile(name, expanded, frozenset(timestamps))


def sql_statement(name: str, dialect: str | None = None) -> TextClause:
    """The one statement of ``sql/NAME[.dialect].sql`` as a typed clause."""
    return sql_file(name, dialect).clause()


def parameter_names(statement: str) -> frozenset[str]:
    """The bind parameters (``:name``) of ``statement``."""
    return frozenset(re.findall(r"(?<![:\w]):(\w+)\b", statement))


def _uses(statement: str, parameter: str) -> bool:
    """Whether ``:parameter`` is a bind parameter of ``statement`` (``::type`` casts are not)."""
    return re.search(rf"(?<![:\w]):{parameter}\b", statement) is not None


def _parse(body: str) -> tuple[list[str], set[str]]:
    statements: list[str] = []
    timestamps: set[str] = set()
    current: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if declared := _TIMESTAMPS.match(line):
            timestamps.update(p.strip() for p in declared.group(1).split(",") if p.strip())
            continue
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements, timestamps


def query_rows(warehouse: Engine | SparkWarehouse, name: str, params: Mapping[str, Any]) -> list:
    """The rows of the query ``sql/NAME`` on an engine or a Spark warehouse, for the few
    readers that serve both (rows with attributes named by the columns on both)."""
    if not isinstance(warehouse, Engine):
        return warehouse.rows(name, params)
    with warehouse.connect() as connection:
        return connection.execute(sql_statement(name), params).all()
