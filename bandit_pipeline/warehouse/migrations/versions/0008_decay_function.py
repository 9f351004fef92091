"""The decay of evidence as one SQL function, bandit_decay().

Revision ID: 0008_decay_function
Revises: 0007_decisions_skipped_shown
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0008_decay_function"
down_revision = "0007_decisions_skipped_shown"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0008_decay_function")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
