"""The warehouse: engine, migrations and the SQL files in ``sql/`` that run there."""

from bandit_pipeline.warehouse.engine import make_engine
from bandit_pipeline.warehouse.sql import sql_file, sql_statement

__all__ = ["make_engine", "sql_file", "sql_statement"]
