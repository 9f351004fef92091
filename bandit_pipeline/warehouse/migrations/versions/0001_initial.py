"""Initial schema: bandit_rewards, bandit_rewards_rejected, item_catalog.

Revision ID: 0001_initial
Revises:
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0001_initial")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
