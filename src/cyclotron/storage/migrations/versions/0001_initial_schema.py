"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 02:33:02.594927
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cyclotron.storage.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admission_cursors",
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("last_user_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("service"),
    )
    op.create_table(
        "api_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("revoked_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "jobs",
        sa.Column(
            "number",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("ntasks", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("input_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "admitted_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("started_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cleaned_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_event_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
        sa.UniqueConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_owner", ["owner_id"], unique=False)
        batch_op.create_index("ix_jobs_state_service", ["state", "service"], unique=False)

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("task_index", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("job_id", "seq", name="uq_events_job_seq"),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column(
            "lease_expires_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("pgid", sa.Integer(), nullable=True),
        sa.Column("progress_done", sa.Float(), nullable=False),
        sa.Column("progress_total", sa.Float(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("started_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", cyclotron.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "index", name="uq_tasks_job_index"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_state")

    op.drop_table("tasks")
    op.drop_table("events")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state_service")
        batch_op.drop_index("ix_jobs_owner")

    op.drop_table("jobs")
    op.drop_table("api_keys")
    op.drop_table("admission_cursors")
