"""The one writer of states and stages: conditional updates checked against the domain's tables.

A change is ``UPDATE ... WHERE state IN (allowed predecessors)`` (``stage IN`` for a stage), so
of two concurrent writers only one can win, and a late CANCELED never overwrites COMPLETED (or
the reverse). Every change that wins appends an event in the same transaction. The columns a
change may set besides the state are typed (``JobColumns``, ``TaskColumns``): those its callers
need, no more. Errors and reasons are stored as users may read them: without the server's
paths (``domain.messages``), and with what no database may hold, such as a NUL an engine wrote
to its stderr, replaced (``domain.text``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, TypedDict, Unpack

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session

from cyclotron.domain.messages import without_paths
from cyclotron.domain.states import (
    JOB_ACTIVE,
    JobStage,
    JobState,
    TaskState,
    job_predecessors,
    stage_predecessors,
    task_predecessors,
)
from cyclotron.domain.text import storable
from cyclotron.storage.events import append_event
from cyclotron.storage.tables import JobRow, TaskRow, utcnow


class JobColumns(TypedDict, total=False):
    """What a job's state change may set besides its state and stage."""

    started_at: datetime
    ended_at: datetime
    error: str | None
    error_kind: str | None
    merge_owner: str | None
    merge_expires_at: datetime | None
    merge_attempts: int


class TaskColumns(TypedDict, total=False):
    """What a task's state change may set besides its state (a key left out is kept)."""

    attempt: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    pgid: int | None
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    error: str | None
    error_kind: str | None
    progress_done: float
    progress_total: float
    estimated_seconds: None
    stage: None


class LeaseRelease(TypedDict):
    """The columns that free a task's lease: no holder, no expiry, no process group."""

    lease_owner: None
    lease_expires_at: None
    pgid: None


LEASE_RELEASED: Final[LeaseRelease] = {"lease_owner": None, "lease_expires_at": None, "pgid": None}


def _rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE (every DML result is a CursorResult)."""
    count: int = getattr(result, "rowcount", 0)
    return count


def change_job_state(
    session: Session,
    job_id: str,
    target: JobState,
    *,
    stage: JobStage | None = None,
    only_if: tuple[ColumnElement[bool], ...] = (),
    reason: str | None = None,
    **columns: Unpack[JobColumns],
) -> bool:
    """Move a job to ``target`` if its current state allows it (and ``only_if`` holds); True
    when this call won.

    The ``stage`` moves along with it only where the stage table allows (or is already
    there): the stage is never decisive, so it cannot refuse a change of state.
    """
    values: dict[str, Any] = {"state": target.value, **_shown(columns)}
    if stage is not None:
        allowed = stage_predecessors(stage) | {stage}
        values["stage"] = case((JobRow.stage.in_(allowed), stage.value), else_=JobRow.stage)
    stmt = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state.in_(job_predecessors(target)), *only_if)
        .values(values)
        .returning(JobRow.stage)
    )
    stage_now = session.execute(stmt).scalar_one_or_none()
    if stage_now is None:
        return False
    data: dict[str, Any] = {"state": target.value}
    if stage is not None and stage_now == stage.value:
        data["stage"] = stage.value
    if reason:
        data["reason"] = storable(without_paths(reason))
    append_event(session, job_id, "state", data)
    return True


def change_job_stage(
    session: Session,
    job_id: str,
    target: JobStage,
    *,
    admitted_at: datetime | None = None,
) -> bool:
    """Move an active job's stage to ``target`` if the stage table allows it, with its event;
    True when this call won. Admission stamps ``admitted_at`` in the same statement."""
    values: dict[str, Any] = {"stage": target.value}
    if admitted_at is not None:
        values["admitted_at"] = admitted_at
    stmt = (
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.stage.in_(stage_predecessors(target)),
            JobRow.state.in_(JOB_ACTIVE),
        )
        .values(values)
    )
    if _rowcount(session.execute(stmt)) != 1:
        return False
    append_event(session, job_id, "stage", {"stage": target.value})
    return True


def change_task_state(
    session: Session,
    job_id: str,
    index: int,
    target: TaskState,
    *,
    only_if: tuple[ColumnElement[bool], ...] = (),
    reason: str | None = None,
    **columns: Unpack[TaskColumns],
) -> bool:
    """Move one task to ``target`` if allowed (and ``only_if`` holds); True when this call won."""
    stmt = (
        update(TaskRow)
        .where(
            TaskRow.job_id == job_id,
            TaskRow.index == index,
            TaskRow.state.in_(task_predecessors(target)),
            *only_if,
        )
        .values({"state": target.value, "last_update_at": utcnow(), **_shown(columns)})
    )
    if _rowcount(session.execute(stmt)) != 1:
        return False
    data: dict[str, Any] = {"state": target.value}
    if reason:
        data["reason"] = storable(without_paths(reason))
    append_event(session, job_id, "task_state", data, task_index=index)
    return True


def end_job(
    session: Session,
    job_id: str,
    target: JobState,
    *,
    error: str | None = None,
    error_kind: str | None = None,
    reason: str | None = None,
    only_if: tuple[ColumnElement[bool], ...] = (),
) -> bool:
    """Move a job to a terminal state, stamping its end time (what retention counts from) and
    freeing a merge lease it held."""
    columns: JobColumns = {"ended_at": utcnow(), "merge_owner": None, "merge_expires_at": None}
    if error is not None:
        columns["error"], columns["error_kind"] = error, error_kind
    return change_job_state(
        session,
        job_id,
        target,
        stage=JobStage.DONE,
        only_if=only_if,
        reason=reason or error,
        **columns,
    )


def end_open_tasks(
    session: Session,
    job_id: str,
    target: TaskState,
    *,
    error: str | None = None,
    error_kind: str | None = None,
) -> None:
    """Move every task of the job that has not ended yet to ``target`` (with the job's error)."""
    columns: TaskColumns = {"ended_at": utcnow()}
    if error is not None:
        columns["error"], columns["error_kind"] = error, error_kind
    stmt = select(TaskRow.index).where(
        TaskRow.job_id == job_id, TaskRow.state.in_(task_predecessors(target))
    )
    for index in list(session.scalars(stmt)):
        change_task_state(session, job_id, index, target, **columns)


def _shown(columns: JobColumns | TaskColumns) -> dict[str, Any]:
    """The columns to write, with an error as users may read it."""
    values: dict[str, Any] = dict(columns)
    if values.get("error"):
        values["error"] = storable(without_paths(values["error"]))
    return values
