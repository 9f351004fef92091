"""bandit_epoch() as a function the PostgreSQL planner inlines.

Revision ID: 0012_inlined_epoch
Revises: 0011_decision_propensities
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0012_inlined_epoch"
down_revision = "0011_decision_propensities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0012_inlined_epoch")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
