"""Posterior pipeline: runs, reward aggregates, posteriors, the latest view.

Revision ID: 0002_posteriors
Revises: 0001_initial
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0002_posteriors"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0002_posteriors")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
