"""The one writer of state columns: conditional updates checked against the domain's table.

A change is ``UPDATE ... WHERE state IN (allowed predecessors)``, so of two concurrent writers
only one can win, and a late CANCELED never overwrites COMPLETED (or the reverse). Every
change that wins appends an event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session

from cyclotron.domain.states import (
    JobStage,
    JobState,
    TaskState,
    job_predecessors,
    task_predecessors,
)
from cyclotron.storage.events import append_event
from cyclotron.storage.tables import JobRow, TaskRow, utcnow


def _rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE (every DML result is a CursorResult)."""
    count: int = getattr(result, "rowcount", 0)
    return count


def change_job_state(
    session: Session,
    job_id: str,
    target: JobState,
    *,
    reason: str | None = None,
    **values: Any,
) -> bool:
    """Move a job to ``target`` if its current state allows it; True when this call won."""
    stmt = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state.in_(job_predecessors(target)))
        .values(state=target.value, **values)
    )
    if _rowcount(session.execute(stmt)) != 1:
        return False
    data: dict[str, Any] = {"state": target.value}
    if "stage" in values:
        data["stage"] = values["stage"]
    if reason:
        data["reason"] = reason
    append_event(session, job_id, "state", data)
    return True


def change_task_state(
    session: Session,
    job_id: str,
    index: int,
    target: TaskState,
    *,
    only_if: tuple[ColumnElement[bool], ...] = (),
    reason: str | None = None,
    **values: Any,
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
        .values(state=target.value, **{"last_update_at": utcnow(), **values})
    )
    if _rowcount(session.execute(stmt)) != 1:
        return False
    data: dict[str, Any] = {"state": target.value}
    if reason:
        data["reason"] = reason
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
) -> bool:
    """Move a job to a terminal state, stamping its end time (what retention counts from)."""
    values: dict[str, Any] = {"stage": JobStage.DONE.value, "ended_at": utcnow()}
    if error is not None:
        values.update(error=error, error_kind=error_kind)
    return change_job_state(session, job_id, target, reason=reason or error, **values)


def end_open_tasks(session: Session, job_id: str, target: TaskState, **values: Any) -> None:
    """Move every task of the job that has not ended yet to ``target``."""
    stmt = select(TaskRow.index).where(
        TaskRow.job_id == job_id, TaskRow.state.in_(task_predecessors(target))
    )
    for index in list(session.scalars(stmt)):
        change_task_state(session, job_id, index, target, ended_at=utcnow(), **values)
