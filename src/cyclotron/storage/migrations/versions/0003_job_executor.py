"""job executor

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00.000000

The executor a job was sent to when it is not its service's (a YAPTIDE batch job: ``slurm``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("executor", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("executor")
