"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from bandit_pipeline.warehouse.migrate import run_sql_file

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("schema/${up_revision}")


def downgrade() -> None:
    raise NotImplementedError("the warehouse only migrates forward")
