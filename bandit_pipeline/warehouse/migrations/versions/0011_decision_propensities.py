"""Off-policy evaluation's record of the logged decisions: the snapshot each decision
drew from (bandit_decision_snapshots) and the served policy's propensity of each choice
(bandit_decision_propensities).

Revision ID: 0011_decision_propensities
Revises: 0010_impression_key_time
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0011_decision_propensities"
down_revision = "0010_impression_key_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0011_decision_propensities")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
