"""Plain records the services hand to the faces (never ORM objects)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cached_property
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

    @classmethod
    def from_values(cls, values: Iterable[Any], states: Mapping[str, TaskState]) -> TaskRecord:
        """A record of values in field order (its state by name), made without the frozen
        dataclass's ``object.__setattr__`` per field, which costs twice as much: a job may
        have 1,000 tasks."""
        record = object.__new__(cls)
        fields = record.__dict__
        fields.update(zip(_TASK_FIELDS, values, strict=True))
        fields["state"] = states[fields["state"]]
        return record

    @property
    def simulated_primaries(self) -> int:
        """Progress in primaries (``primaries_done``)."""
        return primaries_done(
            self.state, self.requested_primaries, self.progress_done, self.progress_total
        )


def primaries_done(
    state: TaskState, requested: int | None, progress_done: float, progress_total: float
) -> int:
    """A task's progress in primaries: reported ones, or the done fraction of its requested
    share. A completed task ran its share, or more where it counted its primaries past it (an
    engine that runs whole batches): then the count its results are normalised to."""
    requested = requested or 0
    if state == TaskState.COMPLETED:
        if requested and progress_total == requested:
            return max(int(progress_done), requested)
        return requested
    if progress_total <= 0:
        return 0
    fraction = min(max(progress_done / progress_total, 0.0), 1.0)
    return min(int(fraction * requested), requested)


_TASK_FIELDS = tuple(f.name for f in fields(TaskRecord))


@dataclass(frozen=True)
class TaskTally:
    """A job's tasks in one state, added up."""

    count: int = 0
    progress_done: float = 0.0
    progress_total: float = 0.0
    with_total: int = 0  # how many report a total
    percent: float = 0.0  # the sum of their percents, each min(100, 100 · done / total)
    requested_primaries: int = 0
    simulated_primaries: int = 0


@dataclass(frozen=True)
class TaskSummary:
    """What a job's summary shows of its tasks, without every task: their tallies by state,
    and the stage its most recently updated running task reported."""

    tallies: Mapping[TaskState, TaskTally]
    stage: str | None = None

    def tally(self, state: TaskState) -> TaskTally:
        return self.tallies.get(state, _NO_TASKS)

    @property
    def count(self) -> int:
        return sum(t.count for t in self.tallies.values())

    @classmethod
    def of(cls, tasks: Iterable[TaskRecord]) -> TaskSummary:
        """The summary of tasks at hand (storage sums the same from the table)."""
        sums: dict[TaskState, list[float]] = {}
        stage_key: tuple[bool, datetime | None, int] | None = None
        stage = None
        for task in tasks:
            row = sums.get(task.state)
            if row is None:
                row = sums[task.state] = [0, 0.0, 0.0, 0, 0.0, 0, 0]
            row[0] += 1
            row[1] += task.progress_done
            row[2] += task.progress_total
            if task.progress_total > 0:
                row[3] += 1
                row[4] += min(100.0, 100.0 * task.progress_done / task.progress_total)
            row[5] += task.requested_primaries or 0
            row[6] += task.simulated_primaries
            if task.state == TaskState.RUNNING and task.stage:
                key = (task.last_update_at is not None, task.last_update_at, task.index)
                if stage_key is None or _later(key, stage_key):
                    stage_key, stage = key, task.stage
        tallies = {
            state: TaskTally(int(c), done, total, int(n), pct, int(req), int(sim))
            for state, (c, done, total, n, pct, req, sim) in sums.items()
        }
        return cls(tallies, stage)


_NO_TASKS = TaskTally()


def _later(a: tuple[bool, datetime | None, int], b: tuple[bool, datetime | None, int]) -> bool:
    """Whether task key ``a`` (has an update time, the time, the index) comes after ``b``."""
    if a[0] != b[0]:
        return a[0]
    if a[1] != b[1] and a[1] is not None and b[1] is not None:
        return a[1] > b[1]
    return a[2] > b[2]


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
    # Lists carry the tasks' summary, read from the table, instead of every task.
    summary: TaskSummary | None = None

    @cached_property
    def task_summary(self) -> TaskSummary:
        """The summary of the job's tasks: the one read with it, or that of its tasks."""
        return self.summary if self.summary is not None else TaskSummary.of(self.tasks)


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
