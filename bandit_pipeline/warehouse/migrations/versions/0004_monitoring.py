"""Metric rollups, experiment readout, alerts and kill-switch events.

Revision ID: 0004_monitoring
Revises: 0003_candidate_pool
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0004_monitoring"
down_revision = "0003_candidate_pool"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0004_monitoring")
    run_sql_file("schema/0004_monitoring_views")
    run_sql_file("schema/0004_monitoring_rollups")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
