"""The exploration candidate pool.

Revision ID: 0003_candidate_pool
Revises: 0002_posteriors
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0003_candidate_pool"
down_revision = "0002_posteriors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0003_candidate_pool")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
