"""The impression-key index ends with ingested_at, so the window job finds a key's
earlier rows from the index alone.

Revision ID: 0010_impression_key_time
Revises: 0009_store_record
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0010_impression_key_time"
down_revision = "0009_store_record"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0010_impression_key_time")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
