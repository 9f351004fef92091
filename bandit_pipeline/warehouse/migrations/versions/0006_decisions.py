"""Serving decision traces (bandit_decisions).

Revision ID: 0006_decisions
Revises: 0005_pool_catalog_fields
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0006_decisions"
down_revision = "0005_pool_catalog_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0006_decisions")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
