"""Plain records the services hand to the faces (never ORM objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cyclotron.domain.states import JobStage, JobState, TaskState


class ErrorKind:
    """Why a job or task failed, as stored beside its message."""

    INVALID = "invalid"  # the plug-in refused the input
    EXIT = "exit"  # non-zero exit status
    TIME_LIMIT = "time_limit"
    LOST = "lost"  # lease expired with no attempt left
    EXECUTOR = "executor"  # the executor could not start it
    MERGE = "merge"
    OUTPUT = "output"  # the run ended well but left outputs the plug-in cannot read
    LIMIT = "limit"  # a sandbox limit stopped it (output quota, CPU time)


@dataclass(frozen=True)
class TaskRecord:
    job_id: str
    index: int
    state: TaskState
    attempt: int
    seed: int
    progress_done: float
    progress_total: float
    exit_code: int | None
    error: str | None
    started_at: datetime | None
    ended_at: datetime | None
    requested_primaries: int | None = None
    estimated_seconds: int | None = None
    last_update_at: datetime | None = None
    stage: str | None = None  # the stage the running attempt last reported, if any

    @property
    def simulated_primaries(self) -> int:
        """Progress in primaries: reported ones, or the done fraction of the requested share."""
        requested = self.requested_primaries or 0
        if self.state == TaskState.COMPLETED:
            return requested
        if self.progress_total <= 0:
            return 0
        fraction = min(max(self.progress_done / self.progress_total, 0.0), 1.0)
        return min(int(fraction * requested), requested)


@dataclass(frozen=True)
class JobRecord:
    id: str
    number: int
    owner_id: int
    service: str
    name: str
    state: JobState
    stage: JobStage
    priority: int
    ntasks: int
    error: str | None
    error_kind: str | None
    created_at: datetime
    updated_at: datetime
    admitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    cleaned_at: datetime | None
    last_event_seq: int = 0
    input_key: str | None = None
    tasks: tuple[TaskRecord, ...] = field(default=())
    yaptide_id: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """Who is asking: a user id (an owner of jobs, see ``ACCOUNT_OWNERS``), and whether they
    may see every job."""

    user_id: int | None
    admin: bool

    def may_see(self, owner_id: int) -> bool:
        return self.admin or self.user_id == owner_id


ANONYMOUS_ADMIN = Caller(user_id=None, admin=True)


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a listing shows; None means any."""

    owner_id: int | None = None
    states: frozenset[JobState] | None = None
    service: str | None = None
    name_contains: str | None = None


# Owners of jobs come in two kinds that must never merge: users of API keys only
# (``cyclotron keys create --user-id N``, N below this) and YAPTIDE accounts, whose jobs are
# owned by ``ACCOUNT_OWNERS + account id`` (a key made for an account, ``--account``, is theirs).
ACCOUNT_OWNERS = 1_000_000_000


def account_owner(account_id: int) -> int:
    """The owner id of a YAPTIDE account's jobs."""
    return ACCOUNT_OWNERS + account_id
