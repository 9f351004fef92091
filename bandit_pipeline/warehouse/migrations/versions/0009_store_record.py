"""The warehouse's record of what the online store holds: flag changes
(bandit_flag_events) and published snapshots (bandit_publications), so that an emptied
store can be restored.

Revision ID: 0009_store_record
Revises: 0008_decay_function
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0009_store_record"
down_revision = "0008_decay_function"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0009_store_record")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
