"""The empirical prior of new items: table bandit_priors, and the latest-posteriors view
with the prior in effect.

Revision ID: 0013_empirical_prior
Revises: 0012_inlined_epoch
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = "0013_empirical_prior"
down_revision = "0012_inlined_epoch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/0013_empirical_prior")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
