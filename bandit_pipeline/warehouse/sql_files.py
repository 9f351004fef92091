"""Load the readable ``.sql`` files under ``sql/``.

A file ``NAME.sql`` serves every dialect; ``NAME.postgresql.sql`` and ``NAME.sqlite.sql``
hold a dialect's own variant and win over the shared one.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

SQL_DIR = Path(os.environ.get("BANDIT_SQL_DIR", Path(__file__).resolve().parents[2] / "sql"))


@cache
def read_sql(name: str, dialect: str | None = None) -> str:
    """The text of ``sql/NAME[.dialect].sql``."""
    candidates = [SQL_DIR / f"{name}.{dialect}.sql"] if dialect else []
    candidates.append(SQL_DIR / f"{name}.sql")
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"no SQL file for {name!r} (dialect {dialect}) under {SQL_DIR}")


def sql_statements(text: str) -> list[str]:
    """Split a file into statements on ``;`` at line ends, dropping comment-only lines.

    The files in ``sql/`` keep to one convention so this stays simple: a statement ends
    with ``;`` as the last character of a line, and no string literal spans such a line.
    """
    statements, current = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
