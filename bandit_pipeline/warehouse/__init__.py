"""The warehouse: engine, migrations and the SQL files in ``sql/`` that run there."""

from bandit_pipeline.warehouse.engine import dialect_of, make_engine
from bandit_pipeline.warehouse.sql_files import read_sql, sql_statements

__all__ = ["dialect_of", "make_engine", "read_sql", "sql_statements"]
