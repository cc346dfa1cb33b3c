"""task stage

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00.000000

The stage a running task last reported (AlphaFold 3's ``data_pipeline``, ``diffusion``…),
so that a job's summary can show where it is without reading its event log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("stage", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("stage")
