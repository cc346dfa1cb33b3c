"""yaptide face

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:57:09.646408

Accounts, logins and clusters of the YAPTIDE face; the job and task columns it keeps.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cyclotron.storage.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("cluster_access", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "username", name="uq_users_provider_username"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "logins",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("refresh_jti", sa.String(length=32), nullable=True),
        sa.Column("previous_refresh_jti", sa.String(length=32), nullable=True),
        sa.Column("rotated_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.create_index("ix_logins_user", ["user_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("yaptide_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("attrs", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("update_key_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_jobs_yaptide_id", ["yaptide_id"], unique=True)

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_primaries", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("estimated_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "last_update_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("worker_ref", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("worker_ref")
        batch_op.drop_column("last_update_at")
        batch_op.drop_column("estimated_seconds")
        batch_op.drop_column("requested_primaries")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_yaptide_id")
        batch_op.drop_column("update_key_sha256")
        batch_op.drop_column("attrs")
        batch_op.drop_column("yaptide_id")

    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.drop_index("ix_logins_user")

    op.drop_table("logins")
    op.drop_table("users")
    op.drop_table("clusters")
