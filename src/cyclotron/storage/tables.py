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
    text,
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

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """One call per value where ``process_result_value`` would add a second: SQLite's text
        (``2026-11-23 10:00:02.123456``) is parsed here directly. A job's tasks hold three
        times each, and a job may have 1,000 tasks."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                return datetime.fromisoformat(value + "+00:00")  # (replace() costs 4 times more)
            return self.process_result_value(value, dialect)

        return process


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"
    # Each listing's filter and order (newest first: created_at, then number) has an index
    # whose prefix is its filter; a filter on states reads one range per state
    # (storage/listing.py). docs/architecture.md lists which query takes which.
    __table_args__ = (
        Index("ix_jobs_created", "created_at", "number"),
        Index("ix_jobs_owner_created", "owner_id", "created_at", "number"),
        Index("ix_jobs_state_created", "state", "created_at", "number"),
        Index("ix_jobs_owner_state_created", "owner_id", "state", "created_at", "number"),
        Index("ix_jobs_service_state_created", "service", "state", "created_at", "number"),
        # /user/simulations by end time.
        Index("ix_jobs_owner_ended", "owner_id", "ended_at", "created_at", "number"),
        # Retention: the jobs whose files are still there, by service and end time.
        Index(
            "ix_jobs_uncleaned_end",
            "service",
            "ended_at",
            sqlite_where=text("cleaned_at IS NULL"),
            postgresql_where=text("cleaned_at IS NULL"),
        ),
        Index("ix_jobs_input_hash", "input_hash"),
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
    # The lease of the merge this server runs (MERGING_RUNNING): who holds it and until when,
    # as a task's lease; and how many merges were started (a lost one runs again).
    merge_owner: Mapped[str | None] = mapped_column(String(128))
    merge_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merge_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "index", name="uq_tasks_job_index"),
        # By state, and the most recently ended of a state (throughput estimates).
        Index("ix_tasks_state_ended", "state", "ended_at"),
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


class JobCountRow(Base):
    """How many jobs each (owner, service, state, face) has: the sum of its rows' ``n``.

    Triggers on ``jobs`` (migration 0007) append +1 and -1 rows as jobs are stored, change
    state and go; nothing updates a row in place, so concurrent writers never wait on each
    other here. The dispatcher folds the rows of each key changed since its last fold into
    one (storage/counts.py), so a total reads a few rows per key, whatever the jobs number.
    """

    __tablename__ = "job_counts"
    __table_args__ = (Index("ix_job_counts_key", "owner_id", "service", "state", "yaptide"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    # Whether the jobs are simulations of the YAPTIDE face (``yaptide_id`` set).
    yaptide: Mapped[bool] = mapped_column(Boolean, nullable=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)


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


class IdempotencyKeyRow(Base):
    """A submission made with an ``Idempotency-Key``: the same key from the same owner within
    a day gets this answer again instead of a second job (services/intake/store.py)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("owner_id", "key", name="uq_idempotency_keys_owner_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    # SHA-256 of the request as its face reads it (route, fields, files' digests).
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
