"""Queries over jobs and tasks. Functions flush; the services layer commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Select, Table, bindparam, case, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Update

from cyclotron.domain.records import JobRecord, TaskRecord, TaskSummary
from cyclotron.domain.states import JOB_ACTIVE, JOB_TERMINAL, JobStage, JobState, TaskState
from cyclotron.storage import counts
from cyclotron.storage.tables import AdmissionCursorRow, EventRow, JobRow, TaskRow

_ACTIVE = [s.value for s in JOB_ACTIVE]
_TERMINAL = [s.value for s in JOB_TERMINAL]


def add_job(
    session: Session,
    row: JobRow,
    ntasks: int,
    seeds: Sequence[int] | None = None,
    primaries: Sequence[int] | None = None,
) -> JobRow:
    """Store a job and its tasks; task i gets ``seeds[i]`` (default ``i + 1``) and its share
    ``primaries[i]`` of the job's primaries, if counted."""
    session.add(row)
    session.flush()
    for index in range(ntasks):
        seed = seeds[index] if seeds is not None else index + 1
        session.add(
            TaskRow(
                job_id=row.id,
                index=index,
                state=TaskState.PENDING.value,
                seed=seed,
                requested_primaries=primaries[index] if primaries is not None else None,
                last_update_at=row.created_at,
            )
        )
    session.flush()
    return row


def pending_counts(session: Session, service: str, owner_id: int) -> tuple[int, int]:
    """Pending jobs of a service: all users, and this one."""
    pending = {JobState.PENDING.value}
    total = counts.count(session, service=service, states=pending)
    mine = counts.count(session, owner_id=owner_id, service=service, states=pending)
    return total, mine


# Built once: a job's every step reads its row or its tasks.
_FIND_JOB = select(JobRow).where(JobRow.id == bindparam("job"))
_JOB_TASKS = select(TaskRow).where(TaskRow.job_id == bindparam("job")).order_by(TaskRow.index)


def find_job(session: Session, job_id: str) -> JobRow | None:
    job: JobRow | None = session.scalar(_FIND_JOB, {"job": job_id})
    return job


_BY_YAPTIDE_ID = select(*JobRow.__table__.columns).where(JobRow.yaptide_id == bindparam("sid"))


def job_by_yaptide_id(session: Session, yaptide_id: str) -> Row[Any] | None:
    """The job row of a YAPTIDE simulation id as a plain row (``job_record`` reads it): a
    status poll loads no ORM object."""
    return session.connection().execute(_BY_YAPTIDE_ID, {"sid": yaptide_id}).first()


def job_exists(session: Session, job_id: str) -> bool:
    return session.scalar(select(JobRow.number).where(JobRow.id == job_id)) is not None


def find_job_by_number(session: Session, number: int) -> JobRow | None:
    return session.get(JobRow, number)


def job_tasks(session: Session, job_id: str) -> list[TaskRow]:
    return list(session.scalars(_JOB_TASKS, {"job": job_id}))


_TASK_FIELDS = (
    TaskRow.job_id,
    TaskRow.index,
    TaskRow.state,
    TaskRow.attempt,
    TaskRow.seed,
    TaskRow.progress_done,
    TaskRow.progress_total,
    TaskRow.exit_code,
    TaskRow.error,
    TaskRow.started_at,
    TaskRow.ended_at,
    TaskRow.requested_primaries,
    TaskRow.estimated_seconds,
    TaskRow.last_update_at,
    TaskRow.stage,
)
_TASK_STATES = {state.value: state for state in TaskState}
_TASKS = select(*_TASK_FIELDS).where(TaskRow.job_id == bindparam("job")).order_by(TaskRow.index)


def task_records(session: Session, job_id: str) -> list[TaskRecord]:
    """The job's tasks in order, read as plain rows in one query (a job may have 1,000)."""
    rows = session.connection().execute(_TASKS, {"job": job_id}).all()
    return [TaskRecord.from_values(row, _TASK_STATES) for row in rows]


_TASK_STATUSES = (
    select(
        TaskRow.index,
        TaskRow.state,
        TaskRow.requested_primaries,
        TaskRow.progress_done,
        TaskRow.progress_total,
        TaskRow.started_at,
        TaskRow.ended_at,
        TaskRow.estimated_seconds,
        TaskRow.last_update_at,
    )
    .where(TaskRow.job_id == bindparam("job"))
    .order_by(TaskRow.index)
)


def task_statuses(session: Session, job_id: str) -> Sequence[Sequence[Any]]:
    """What a YAPTIDE status shows of each of the job's tasks, in order, as plain rows of
    (index, state, requested_primaries, progress_done, progress_total, started_at, ended_at,
    estimated_seconds, last_update_at): a job may have 1,000 tasks, polled every second."""
    return session.connection().execute(_TASK_STATUSES, {"job": job_id}).all()


_JOB_STATE = select(JobRow.state).where(JobRow.id == bindparam("job"))
_TASK_STATE_COUNTS = (
    select(TaskRow.state, func.count())
    .where(TaskRow.job_id == bindparam("job"))
    .group_by(TaskRow.state)
)


def job_state(session: Session, job_id: str) -> str | None:
    """The job's state (its name), or None for no such job."""
    state: str | None = session.connection().execute(_JOB_STATE, {"job": job_id}).scalar()
    return state


def task_state_counts(session: Session, job_id: str) -> dict[str, int]:
    """How many of the job's tasks are in each state (by name), counted by the database."""
    rows = session.connection().execute(_TASK_STATE_COUNTS, {"job": job_id})
    return {state: count for state, count in rows}


def lock_job_tasks(session: Session, job_id: str) -> None:
    """Lock a job's task rows before its job row is written.

    Every writer takes a job's locks in the same order, tasks first and the job row second
    (each event bumps the job row's sequence), so two writers can never deadlock.
    """
    session.execute(_LOCK_TASKS, {"job": job_id})


# Built once: a worker's every progress report runs both.
_LOCK_TASKS = (
    select(TaskRow.id)
    .where(TaskRow.job_id == bindparam("job"))
    .order_by(TaskRow.index)
    .with_for_update()
)
_FIND_TASK = select(TaskRow).where(
    TaskRow.job_id == bindparam("job"), TaskRow.index == bindparam("index")
)


def find_task(session: Session, job_id: str, index: int) -> TaskRow | None:
    task: TaskRow | None = session.scalar(_FIND_TASK, {"job": job_id, "index": index})
    return task


# What a worker's report of a task reads of it, and the writes of its columns: plain rows and
# Core statements (a worker of a 1,000-task job reports each task's progress).
_REPORTED_TASK = select(
    *(
        TaskRow.__table__.c[name]
        for name in (
            "state",
            "attempt",
            "requested_primaries",
            "progress_done",
            "progress_total",
            "estimated_seconds",
            "started_at",
            "ended_at",
            "worker_ref",
        )
    )
).where(TaskRow.job_id == bindparam("job"), TaskRow.index == bindparam("index"))
_TASK_WRITES: dict[tuple[str, ...], Any] = {}


def reported_task(session: Session, job_id: str, index: int) -> Row[Any] | None:
    """What a worker's report needs of one task (state, attempt, requested primaries,
    progress done and total, estimate, start and end, worker reference), or None."""
    return session.connection().execute(_REPORTED_TASK, {"job": job_id, "index": index}).first()


def set_task_columns(session: Session, job_id: str, index: int, values: dict[str, Any]) -> None:
    """Write columns of one task that leave its state as it is (progress, estimate, times)."""
    names = tuple(sorted(values))
    stmt = _TASK_WRITES.get(names)
    if stmt is None:
        stmt = (
            update(TaskRow)
            .where(TaskRow.job_id == bindparam("w_job"), TaskRow.index == bindparam("w_index"))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
        _TASK_WRITES[names] = stmt
    params = {f"v_{name}": value for name, value in values.items()}
    params["w_job"], params["w_index"] = job_id, index
    session.connection().execute(stmt, params)


def delete_job(session: Session, job_id: str) -> None:
    """Remove the job row with its tasks and events."""
    session.execute(sql_delete(EventRow).where(EventRow.job_id == job_id))
    session.execute(sql_delete(TaskRow).where(TaskRow.job_id == job_id))
    session.execute(sql_delete(JobRow).where(JobRow.id == job_id))


def task_record(row: TaskRow) -> TaskRecord:
    return TaskRecord(
        job_id=row.job_id,
        index=row.index,
        state=TaskState(row.state),
        attempt=row.attempt,
        seed=row.seed,
        progress_done=row.progress_done,
        progress_total=row.progress_total,
        exit_code=row.exit_code,
        error=row.error,
        started_at=row.started_at,
        ended_at=row.ended_at,
        requested_primaries=row.requested_primaries,
        estimated_seconds=row.estimated_seconds,
        last_update_at=row.last_update_at,
        stage=row.stage,
    )


def job_record(
    row: JobRow | Row[Any],
    tasks: Iterable[TaskRow | TaskRecord] = (),
    summary: TaskSummary | None = None,
) -> JobRecord:
    """The record of a job row (an ORM row, or a Core row of the jobs table's columns)."""
    return JobRecord(
        id=row.id,
        number=row.number,
        owner_id=row.owner_id,
        service=row.service,
        name=row.name,
        state=JobState(row.state),
        stage=JobStage(row.stage),
        priority=row.priority,
        ntasks=row.ntasks,
        error=row.error,
        error_kind=row.error_kind,
        created_at=row.created_at,
        updated_at=row.updated_at,
        admitted_at=row.admitted_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        cleaned_at=row.cleaned_at,
        last_event_seq=row.last_event_seq,
        input_key=row.input_hash,
        tasks=tuple(t if isinstance(t, TaskRecord) else task_record(t) for t in tasks),
        yaptide_id=row.yaptide_id,
        attrs=dict(row.attrs or {}),
        summary=summary,
    )


# --- admission -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedJob:
    id: str
    owner_id: int


def lock_admission_cursor(session: Session, service: str) -> AdmissionCursorRow:
    """The service's round-robin cursor, locked for this transaction (created on first use)."""
    row = session.scalar(_ADMISSION_CURSOR, {"service": service})
    if row is None:
        try:
            with session.begin_nested():  # another server may create it at the same moment
                session.add(AdmissionCursorRow(service=service, last_user_id=None))
        except IntegrityError:
            pass
        row = session.scalar(_ADMISSION_CURSOR, {"service": service})
        assert row is not None
    return row


# Built once: every admission pass runs these, for each service with queued jobs.
_ADMISSION_CURSOR = (
    select(AdmissionCursorRow)
    .where(AdmissionCursorRow.service == bindparam("service"))
    .with_for_update()
)
_ADMITTED_COUNTS = (
    select(JobRow.owner_id, func.count())
    .where(
        JobRow.service == bindparam("service"),
        JobRow.admitted_at.is_not(None),
        JobRow.state.in_(_ACTIVE),
    )
    .group_by(JobRow.owner_id)
)
_QUEUED_JOBS = (
    select(JobRow.id, JobRow.owner_id)
    .where(
        JobRow.service == bindparam("service"),
        JobRow.state == JobState.PENDING.value,
        JobRow.admitted_at.is_(None),
        JobRow.executor.is_(None),
    )
    .order_by(JobRow.priority.desc(), JobRow.number)
)
_IN_STAGE = (
    select(JobRow)
    .where(JobRow.stage == bindparam("stage"), JobRow.state == bindparam("state"))
    .order_by(JobRow.number)
)


def admitted_counts(session: Session, service: str) -> dict[int, int]:
    """Admitted, still active jobs of a service, per owner."""
    rows = session.connection().execute(_ADMITTED_COUNTS, {"service": service})
    return {int(owner): int(n) for owner, n in rows}


def queued_jobs(session: Session, service: str) -> list[QueuedJob]:
    """Jobs waiting for admission, in each owner's order: highest priority first, then oldest."""
    rows = session.connection().execute(_QUEUED_JOBS, {"service": service})
    return [QueuedJob(id=i, owner_id=int(o)) for i, o in rows]


def jobs_in_stage(session: Session, stage: JobStage, state: JobState) -> list[JobRow]:
    return list(session.scalars(_IN_STAGE, {"stage": stage.value, "state": state.value}))


@dataclass(frozen=True)
class Backlog:
    """What a dispatcher pass has to do, read cheaply before any write transaction."""

    services_with_queued: frozenset[str]
    preparing: bool
    runnable_services: frozenset[str]


# The dispatcher's every pass asks these: built once, run on the session's connection.
_QUEUED_SERVICES = (
    select(JobRow.service)
    .where(
        JobRow.state == JobState.PENDING.value,
        JobRow.admitted_at.is_(None),
        JobRow.executor.is_(None),
    )
    .distinct()
)
_ANY_PREPARING = (
    select(JobRow.id)
    .where(JobRow.state == JobState.PENDING.value, JobRow.stage == JobStage.PREPARING.value)
    .limit(1)
)
_RUNNABLE_SERVICES = (
    select(JobRow.service)
    .join(TaskRow, TaskRow.job_id == JobRow.id)
    .where(
        TaskRow.state == TaskState.PENDING.value,
        JobRow.state.in_([JobState.PENDING.value, JobState.RUNNING.value]),
        JobRow.stage.in_([JobStage.SUBMITTED.value, JobStage.RUNNING.value]),
        JobRow.executor.is_(None),
    )
    .distinct()
)


def dispatch_backlog(session: Session) -> Backlog:
    conn = session.connection()
    return Backlog(
        services_with_queued=frozenset(conn.execute(_QUEUED_SERVICES).scalars()),
        preparing=conn.execute(_ANY_PREPARING).first() is not None,
        runnable_services=frozenset(conn.execute(_RUNNABLE_SERVICES).scalars()),
    )


# --- task claiming ---------------------------------------------------------------------------


def update_running_task(
    session: Session,
    job_id: str,
    index: int,
    only_if: Sequence[ColumnElement[bool]],
    **values: object,
) -> bool:
    """Set columns of a RUNNING task (its lease, its process group) if ``only_if`` holds."""
    params: dict[str, object] = {f"v_{key}": value for key, value in values.items()}
    params["w_job"], params["w_index"] = job_id, index
    session.flush()
    result = session.connection().execute(_running_update(tuple(values)).where(*only_if), params)
    if getattr(result, "rowcount", 0) != 1:
        return False
    for row in session.identity_map.values():  # as the table has it now
        if isinstance(row, TaskRow) and row.job_id == job_id and row.index == index:
            for key, value in values.items():
                set_committed_value(row, key, value)
    return True


@cache
def _running_update(keys: tuple[str, ...]) -> Update:
    tasks = cast(Table, TaskRow.__table__)
    return (
        update(tasks)
        .where(
            tasks.c.job_id == bindparam("w_job"),
            tasks.c.index == bindparam("w_index"),
            tasks.c.state == TaskState.RUNNING.value,
        )
        .values({tasks.c[key]: bindparam(f"v_{key}", type_=tasks.c[key].type) for key in keys})
    )


def runnable_tasks(session: Session, services: Sequence[str], limit: int) -> list[TaskRow]:
    """Pending tasks of admitted, prepared jobs, oldest first; rows locked elsewhere are skipped."""
    if limit <= 0 or not services:
        return []
    return list(session.scalars(_runnable(limit), {"services": list(services)}))


@cache
def _runnable(limit: int) -> Select[TaskRow]:
    return (
        select(TaskRow)
        .join(JobRow, JobRow.id == TaskRow.job_id)
        .where(
            TaskRow.state == TaskState.PENDING.value,
            JobRow.service.in_(bindparam("services", expanding=True)),
            JobRow.state.in_([JobState.PENDING.value, JobState.RUNNING.value]),
            JobRow.stage.in_([JobStage.SUBMITTED.value, JobStage.RUNNING.value]),
            JobRow.executor.is_(None),
        )
        .order_by(JobRow.priority.desc(), JobRow.number, TaskRow.index)
        .limit(limit)
        .with_for_update(skip_locked=True, of=TaskRow)
    )


def count_running_tasks(session: Session, services: Sequence[str]) -> int:
    """Running tasks of jobs of these services."""
    count = session.connection().execute(_COUNT_RUNNING, {"services": list(services)}).scalar()
    return int(count or 0)


_COUNT_RUNNING = (
    select(func.count())
    .select_from(TaskRow)
    .join(JobRow, JobRow.id == TaskRow.job_id)
    .where(
        TaskRow.state == TaskState.RUNNING.value,
        JobRow.service.in_(bindparam("services", expanding=True)),
    )
)


def workers_seen(session: Session, prefix: str, since: datetime) -> list[tuple[str, datetime, int]]:
    """Workers (``worker_ref`` with ``prefix``) with a task updated since then: each one's
    last update and how many tasks it runs now, most recent first."""
    running = func.sum(case((TaskRow.state == TaskState.RUNNING.value, 1), else_=0))
    stmt = (
        select(TaskRow.worker_ref, func.max(TaskRow.last_update_at), running)
        .where(TaskRow.worker_ref.like(f"{prefix}%"), TaskRow.last_update_at >= since)
        .group_by(TaskRow.worker_ref)
        .order_by(func.max(TaskRow.last_update_at).desc())
    )
    return [(str(ref), last, int(count or 0)) for ref, last, count in session.execute(stmt)]


def expired_leases(session: Session, now: datetime) -> list[TaskRow]:
    stmt = select(TaskRow).where(
        TaskRow.state == TaskState.RUNNING.value, TaskRow.lease_expires_at < now
    )
    return list(session.scalars(stmt))


def leases_held_by(session: Session, owners: Sequence[str]) -> list[TaskRow]:
    stmt = select(TaskRow).where(
        TaskRow.state == TaskState.RUNNING.value, TaskRow.lease_owner.in_(owners)
    )
    return list(session.scalars(stmt))


def local_lease_owners(session: Session, host_prefix: str) -> list[str]:
    stmt = (
        select(TaskRow.lease_owner)
        .where(
            TaskRow.state == TaskState.RUNNING.value, TaskRow.lease_owner.like(f"{host_prefix}%")
        )
        .distinct()
    )
    return [owner for owner in session.scalars(stmt) if owner]


# --- retention -------------------------------------------------------------------------------


def ended_jobs_not_cleaned(session: Session, service: str, ended_before: datetime) -> list[JobRow]:
    stmt = select(JobRow).where(
        JobRow.service == service,
        JobRow.state.in_(_TERMINAL),
        JobRow.cleaned_at.is_(None),
        JobRow.ended_at.is_not(None),
        JobRow.ended_at < ended_before,
    )
    return list(session.scalars(stmt))


def mark_cleaned(session: Session, job_id: str, now: datetime) -> bool:
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state.in_(_TERMINAL), JobRow.cleaned_at.is_(None))
        .values(cleaned_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def jobs_by_service_and_state(session: Session) -> dict[tuple[str, str], int]:
    return counts.by_service_and_state(session)


def running_task_count(session: Session) -> int:
    stmt = select(func.count()).select_from(TaskRow).where(TaskRow.state == TaskState.RUNNING.value)
    return int(session.scalar(stmt) or 0)


# --- merges ----------------------------------------------------------------------------------


def renew_merge_lease(session: Session, job_id: str, owner: str, until: datetime) -> bool:
    """Extend the lease of the merge ``owner`` runs; False once it holds it no more."""
    result = session.execute(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.state == JobState.MERGING_RUNNING.value,
            JobRow.merge_owner == owner,
        )
        .values(merge_expires_at=until)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def merges_held(session: Session) -> list[JobRow]:
    """Jobs whose merge runs under a server's lease (a merge a worker reports holds none)."""
    stmt = select(JobRow).where(
        JobRow.state == JobState.MERGING_RUNNING.value, JobRow.merge_owner.is_not(None)
    )
    return list(session.scalars(stmt.order_by(JobRow.number)))


def existing_job_ids(session: Session, job_ids: Sequence[str], chunk: int = 500) -> set[str]:
    """Those of ``job_ids`` that name a stored job."""
    found: set[str] = set()
    for start in range(0, len(job_ids), chunk):
        part = list(job_ids[start : start + chunk])
        found.update(session.scalars(select(JobRow.id).where(JobRow.id.in_(part))))
    return found
