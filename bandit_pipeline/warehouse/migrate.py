"""Versioned schema migrations (Alembic) whose DDL lives in ``sql/schema/``.

Each revision under ``migrations/versions`` runs the SQL file of the same name for the
engine's dialect, inside one transaction, so an upgrade either lands whole or not at all.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from bandit_pipeline.warehouse.sql import sql_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def run_sql_file(name: str) -> None:
    """Execute ``sql/NAME.<dialect>.sql`` statement by statement (inside a revision)."""
    bind = op.get_bind()
    for statement in sql_file(name, bind.dialect.name).statements:
        op.execute(statement)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the warehouse to ``revision``; returns (before, after). Safe to run again."""
    config = _config()
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
