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

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any, Final, NamedTuple, TypedDict, Unpack, cast

from sqlalchemy import ColumnElement, Table, bindparam, case, literal, select, update
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Update

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
from cyclotron.storage.events import append_event, write_event
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


class Held(NamedTuple):
    """Whose a task still is: its attempt, and the holder of its lease (when not None)."""

    attempt: int
    lease_owner: str | None = None


class LeaseRelease(TypedDict):
    """The columns that free a task's lease: no holder, no expiry, no process group."""

    lease_owner: None
    lease_expires_at: None
    pgid: None


LEASE_RELEASED: Final[LeaseRelease] = {"lease_owner": None, "lease_expires_at": None, "pgid": None}

# Each change is one of few shapes (its target, its stage, the columns it sets), so each
# shape's statement is built once and run on the session's connection: the ORM's UPDATE
# costs several times as much to build, run and reconcile with the session.
_JOBS, _TASKS = cast(Table, JobRow.__table__), cast(Table, TaskRow.__table__)


# A change of the job's row takes its event's number in the same statement (storage/events.py).
_BUMP = {
    _JOBS.c.last_event_seq: _JOBS.c.last_event_seq + 1,
    _JOBS.c.updated_at: bindparam("now", type_=_JOBS.c.updated_at.type),
}


def _one_of(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """``column IN (...)`` with a parameter per value: a list of values would make one
    expanding parameter, whose SQL is rewritten at every execution."""
    in_list: ColumnElement[bool] = column.in_([literal(v, column.type) for v in sorted(values)])
    return in_list


def _set(table: Table, keys: tuple[str, ...]) -> dict[Any, Any]:
    """The SET clause of ``keys``, each bound as ``v_<key>`` with its column's type."""
    return {table.c[key]: bindparam(f"v_{key}", type_=table.c[key].type) for key in keys}


@cache
def _job_update(target: JobState, stage: JobStage | None, keys: tuple[str, ...]) -> Update:
    values = {_JOBS.c.state: target.value, **_BUMP, **_set(_JOBS, keys)}
    if stage is not None:
        allowed = _one_of(_JOBS.c.stage, (s.value for s in stage_predecessors(stage) | {stage}))
        values[_JOBS.c.stage] = case((allowed, stage.value), else_=_JOBS.c.stage)
    return (
        update(_JOBS)
        .where(
            _JOBS.c.id == bindparam("w_job"),
            _one_of(_JOBS.c.state, (s.value for s in job_predecessors(target))),
        )
        .values(values)
        .returning(_JOBS.c.stage, _JOBS.c.last_event_seq)
    )


@cache
def _stage_update(target: JobStage, admitted: bool) -> Update:
    keys = ("admitted_at",) if admitted else ()
    return (
        update(_JOBS)
        .where(
            _JOBS.c.id == bindparam("w_job"),
            _one_of(_JOBS.c.stage, (s.value for s in stage_predecessors(target))),
            _one_of(_JOBS.c.state, (s.value for s in JOB_ACTIVE)),
        )
        .values({_JOBS.c.stage: target.value, **_BUMP, **_set(_JOBS, keys)})
        .returning(_JOBS.c.last_event_seq)
    )


@cache
def _task_update(
    target: TaskState, keys: tuple[str, ...], attempt: bool = False, owner: bool = False
) -> Update:
    stmt = update(_TASKS).where(
        _TASKS.c.job_id == bindparam("w_job"),
        _TASKS.c.index == bindparam("w_index"),
        _one_of(_TASKS.c.state, (s.value for s in task_predecessors(target))),
    )
    if attempt:
        stmt = stmt.where(_TASKS.c.attempt == bindparam("w_attempt"))
    if owner:
        stmt = stmt.where(_TASKS.c.lease_owner == bindparam("w_owner"))
    return stmt.values({_TASKS.c.state: target.value, **_set(_TASKS, keys)})


def _run(
    session: Session, stmt: Update, only_if: tuple[ColumnElement[bool], ...], params: dict[str, Any]
) -> Result[Any]:
    """Run a change's statement as the session's unit of work stands (flushed first)."""
    session.flush()
    return session.connection().execute(stmt.where(*only_if) if only_if else stmt, params)


def _rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE (every DML result is a CursorResult)."""
    count: int = getattr(result, "rowcount", 0)
    return count


def _sync_job(session: Session, job_id: str, values: dict[str, Any]) -> None:
    """The job's row as this session holds it, if it does, as the table has it now."""
    for row in session.identity_map.values():
        if isinstance(row, JobRow) and row.id == job_id:
            for key, value in values.items():
                set_committed_value(row, key, value)


def _sync_task(session: Session, job_id: str, index: int, values: dict[str, Any]) -> None:
    """The task's row as this session holds it, if it does, as the table has it now."""
    for row in session.identity_map.values():
        if isinstance(row, TaskRow) and row.job_id == job_id and row.index == index:
            for key, value in values.items():
                set_committed_value(row, key, value)


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
    values = _shown(columns)
    stmt = _job_update(target, stage, tuple(values))
    params = {f"v_{key}": value for key, value in values.items()}
    params["w_job"], params["now"] = job_id, utcnow()
    won = _run(session, stmt, only_if, params).first()
    if won is None:
        return False
    stage_now, seq = tuple(won)
    _sync_job(session, job_id, {**values, "state": target.value, "stage": stage_now})
    data: dict[str, Any] = {"state": target.value}
    if stage is not None and stage_now == stage.value:
        data["stage"] = stage.value
    if reason:
        data["reason"] = storable(without_paths(reason))
    write_event(session, job_id, seq, params["now"], "state", data)
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
    stmt = _stage_update(target, admitted_at is not None)
    now = utcnow()
    params = {"w_job": job_id, "now": now, "v_admitted_at": admitted_at}
    seq = _run(session, stmt, (), params).scalar_one_or_none()
    if seq is None:
        return False
    values: dict[str, Any] = {"stage": target.value}
    if admitted_at is not None:
        values["admitted_at"] = admitted_at
    _sync_job(session, job_id, values)
    write_event(session, job_id, seq, now, "stage", {"stage": target.value})
    return True


def change_task_state(
    session: Session,
    job_id: str,
    index: int,
    target: TaskState,
    *,
    only_if: tuple[ColumnElement[bool], ...] = (),
    held: Held | None = None,
    reason: str | None = None,
    **columns: Unpack[TaskColumns],
) -> bool:
    """Move one task to ``target`` if allowed (and ``only_if`` holds, and the task is still
    ``held`` so); True when this call won."""
    values = {"last_update_at": utcnow(), **_shown(columns)}
    params = {f"v_{key}": value for key, value in values.items()}
    params["w_job"], params["w_index"] = job_id, index
    if held is None:
        stmt = _task_update(target, tuple(values))
    else:
        owner = held.lease_owner is not None
        stmt = _task_update(target, tuple(values), attempt=True, owner=owner)
        params["w_attempt"], params["w_owner"] = held.attempt, held.lease_owner
    if _rowcount(_run(session, stmt, only_if, params)) != 1:
        return False
    _sync_task(session, job_id, index, {**values, "state": target.value})
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
