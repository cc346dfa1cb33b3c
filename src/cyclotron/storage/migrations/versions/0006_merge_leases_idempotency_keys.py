"""merge leases and idempotency keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 12:00:00.000000

A merge holds a lease like a task (``merge_owner``, ``merge_expires_at``) and counts its
attempts, so a merge cut short by a crash is taken up again; a submission sent with an
``Idempotency-Key`` keeps its answer for the same key sent again (``idempotency_keys``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cyclotron.storage.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("merge_owner", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column(
                "merge_expires_at",
                cyclotron.storage.tables.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch.add_column(
            sa.Column("merge_attempts", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "key", name="uq_idempotency_keys_owner_key"),
    )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("merge_attempts")
        batch.drop_column("merge_expires_at")
        batch.drop_column("merge_owner")
