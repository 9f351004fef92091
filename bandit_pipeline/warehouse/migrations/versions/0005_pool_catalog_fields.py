"""The candidate pool keeps the catalog fields it was chosen on.

Revision ID: 0005_pool_catalog_fields
Revises: 0004_monitoring
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0005_pool_catalog_fields"
down_revision = "0004_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0005_pool_catalog_fields")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
