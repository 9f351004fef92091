"""Decision traces record the candidates the ranker already showed (skipped_shown).

Revision ID: 0007_decisions_skipped_shown
Revises: 0006_decisions
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0007_decisions_skipped_shown"
down_revision = "0006_decisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0007_decisions_skipped_shown")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
