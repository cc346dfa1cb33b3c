"""The database tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no 64-bit autoincrement type other than INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_service", "state", "service"),
        Index("ix_jobs_owner", "owner_id"),
        Index("ix_jobs_yaptide_id", "yaptide_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    number: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    owner_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    stage: Mapped[str] = mapped_column(String(32), nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ntasks: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    input_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Every UPDATE of a job row (state, stage, progress bookkeeping) moves it.
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleaned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The YAPTIDE face's id of the job ("20241119-162441-<uuid4>DIRECT"), when it made the job.
    yaptide_id: Mapped[str | None] = mapped_column(String(64))
    # What a face keeps about its jobs and the core never reads (title, input type, platform).
    attrs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # SHA-256 of the job's update key, with which workers report (never the key itself).
    update_key_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when the job was sent elsewhere than its service's executor (``slurm``); such jobs
    # are never admitted or claimed by the dispatcher.
    executor: Mapped[str | None] = mapped_column(String(32))


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "index", name="uq_tasks_job_index"),
        Index("ix_tasks_state", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    index: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pgid: Mapped[int | None] = mapped_column(Integer)
    progress_done: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    progress_total: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The task's share of the job's primaries, for services that count them.
    requested_primaries: Mapped[int | None] = mapped_column(BigInteger)
    estimated_seconds: Mapped[int | None] = mapped_column(Integer)
    last_update_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The stage the running attempt last reported, for plug-ins that report stages.
    stage: Mapped[str | None] = mapped_column(String(32))
    # What a remote executor calls its run of this task (a Celery task id), for cancelling.
    worker_ref: Mapped[str | None] = mapped_column(String(255))


class EventRow(Base):
    """Append-only log of everything that happened to a job."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_events_job_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    # 1, 2, 3, ... per job with no gap, in commit order (see storage/events.py).
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    task_index: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AdmissionCursorRow(Base):
    """Per service: the user who received the last admission (round-robin position)."""

    __tablename__ = "admission_cursors"

    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_user_id: Mapped[int | None] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    label: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserRow(Base):
    """An account of the YAPTIDE face: local (password) or Keycloak."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("provider", "username", name="uq_users_provider_username"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    cluster_access: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class LoginRow(Base):
    """One login (the ``sid`` of its tokens): refresh rotation state and revocation."""

    __tablename__ = "logins"
    __table_args__ = (Index("ix_logins_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # The absolute cap: no refresh reaches past it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    refresh_jti: Mapped[str | None] = mapped_column(String(32))
    previous_refresh_jti: Mapped[str | None] = mapped_column(String(32))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClusterRow(Base):
    """A SLURM cluster jobs may be sent to, and who may use it."""

    __tablename__ = "clusters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
