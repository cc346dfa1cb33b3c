"""Pages of jobs, their totals and their tasks' summaries, each read from an index.

A page is read in the listing's order from the index whose leading columns are its filter
(tables.py): owner, state, service, then ``created_at`` and ``number``, so a page costs its
rows, not the table. A filter on several states reads one range per state, each cut at the
page's end, and merges them. A total is the sum of ``job_counts`` rows (storage/counts.py),
except with a search, whose total counts its matches. A deep page still reads every row
before it (``OFFSET``): a page costs its position, not the table's size.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import BigInteger

from cyclotron.domain.records import JobFilter, TaskSummary, TaskTally
from cyclotron.domain.states import JobState, TaskState
from cyclotron.storage import counts
from cyclotron.storage.search import name_contains
from cyclotron.storage.tables import JobRow, TaskRow

ALL_STATES = tuple(s.value for s in JobState)


def _order(descending: bool = True) -> tuple[ColumnElement[Any], ...]:
    keys = (JobRow.created_at, JobRow.number)
    return tuple(k.desc() if descending else k.asc() for k in keys)


@dataclass(frozen=True)
class _Shape:
    """What a page's statement depends on; its values are bound at each execution."""

    owner: bool = False
    service: bool = False
    yaptide: bool = False
    states: tuple[str, ...] | None = None
    descending: bool = True


@lru_cache(maxsize=1024)
def _range_statement(shape: _Shape) -> Select[int]:
    """Built once per shape: a page's cost is then its rows, not the making of its SQL."""
    clauses: list[ColumnElement[bool]] = []
    if shape.owner:
        clauses.append(JobRow.owner_id == bindparam("owner"))
    if shape.service:
        clauses.append(JobRow.service == bindparam("service"))
    if shape.yaptide:
        clauses.append(JobRow.yaptide_id.is_not(None))
    order = _order(shape.descending)
    states = shape.states
    if states is not None and len(states) == 1:
        clauses.append(JobRow.state == states[0])
        states = None
    if states is None:
        stmt = select(JobRow.number).where(*clauses).order_by(*order)
        return stmt.offset(bindparam("offset")).limit(bindparam("limit"))
    arms = []
    for state in states:
        arm = (
            select(JobRow.number, JobRow.created_at)
            .where(*clauses, JobRow.state == state)
            .order_by(*order)
            .limit(bindparam("reach"))
            .subquery()
        )
        arms.append(select(arm.c.number, arm.c.created_at))
    merged = union_all(*arms).subquery()
    keys = (merged.c.created_at, merged.c.number)
    merged_order = [k.desc() if shape.descending else k.asc() for k in keys]
    stmt = select(merged.c.number).order_by(*merged_order)
    return stmt.offset(bindparam("offset")).limit(bindparam("limit"))


@lru_cache(maxsize=1024)
def _page_statement(shape: _Shape) -> Select[Any]:
    """The rows of the jobs whose numbers the page's ranges find, in one statement."""
    numbers = _range_statement(shape)
    return select(*JobRow.__table__.c).where(JobRow.number.in_(numbers))


def _ranges(session: Session, shape: _Shape, offset: int, limit: int, **values: Any) -> list[Any]:
    """The job rows of a page: one index range, or one range per state merged."""
    if shape.states is not None and not shape.states:
        return []
    params = {"offset": offset, "limit": limit, "reach": offset + limit, **values}
    rows = session.connection().execute(_page_statement(shape), params).all()
    ascending = sorted(rows, key=lambda row: (row.created_at, row.number))
    return ascending[::-1] if shape.descending else ascending


_ROWS = select(*JobRow.__table__.c).where(JobRow.number.in_(bindparam("numbers", expanding=True)))


def _rows(session: Session, numbers: list[int]) -> list[Any]:
    if not numbers:
        return []
    found = {row.number: row for row in session.connection().execute(_ROWS, {"numbers": numbers})}
    return [found[n] for n in numbers if n in found]


def _states(where: JobFilter) -> tuple[str, ...] | None:
    return None if where.states is None else tuple(sorted(s.value for s in where.states))


def job_page(session: Session, where: JobFilter, offset: int, limit: int) -> list[Any]:
    """The page's job rows (columns by name, as ``JobRow``'s), newest first."""
    states = _states(where)
    if where.name_contains:
        clauses = name_contains(session, where.name_contains)
        if where.owner_id is not None:
            clauses.append(JobRow.owner_id == where.owner_id)
        if where.service is not None:
            clauses.append(JobRow.service == where.service)
        if states is not None:
            clauses.append(JobRow.state.in_(states))
        return _rows(session, _matches_page(session, clauses, offset, limit))
    if where.service is not None and states is None:
        states = ALL_STATES  # no index leads with the service alone: (service, state) ranges
    shape = _Shape(
        owner=where.owner_id is not None, service=where.service is not None, states=states
    )
    values = {"owner": where.owner_id, "service": where.service}
    return _ranges(session, shape, offset, limit, **values)


def _matches_page(
    session: Session, clauses: Sequence[ColumnElement[bool]], offset: int, limit: int
) -> list[int]:
    # The matches are found first (by the search index) and then ordered: a plan that walks
    # the listing's index and tests every name would read the table for a rare name.
    found = select(JobRow.number, JobRow.created_at).where(*clauses).cte("found")
    found = found.prefix_with("MATERIALIZED")
    stmt = (
        select(found.c.number)
        .order_by(found.c.created_at.desc(), found.c.number.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def job_total(session: Session, where: JobFilter) -> int:
    """How many jobs the filter keeps: from the counts, or the search's matches."""
    states = None if where.states is None else {s.value for s in where.states}
    if not where.name_contains:
        return counts.count(session, owner_id=where.owner_id, service=where.service, states=states)
    clauses = name_contains(session, where.name_contains)
    if where.owner_id is not None:
        clauses.append(JobRow.owner_id == where.owner_id)
    if where.service is not None:
        clauses.append(JobRow.service == where.service)
    if states is not None:
        clauses.append(JobRow.state.in_(sorted(states)))
    return int(session.scalar(select(func.count()).select_from(JobRow).where(*clauses)) or 0)


def simulation_page(
    session: Session,
    owner_id: int,
    states: Collection[str] | None,
    by_end: bool,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[Any], int]:
    """A page of an owner's YAPTIDE simulations and their total.

    By end time, a job that has not ended counts as later than any end: the jobs without an
    end (the active ones, few) are one range of ``ix_jobs_owner_ended``, the ended ones the
    next, and the page takes from each what falls in it.
    """
    total = counts.count(session, owner_id=owner_id, states=states, yaptide=True)
    if not by_end:
        wanted = None if states is None else tuple(sorted(states))
        shape = _Shape(owner=True, yaptide=True, states=wanted, descending=descending)
        return _ranges(session, shape, offset, limit, owner=owner_id), total
    mine = [JobRow.owner_id == owner_id, JobRow.yaptide_id.is_not(None)]
    if states is not None:
        mine.append(JobRow.state.in_(sorted(states)))
    unended_stmt = select(JobRow.number).where(*mine, JobRow.ended_at.is_(None))
    unended = list(session.scalars(unended_stmt.order_by(*_order(descending))))
    ended_order = (JobRow.ended_at.desc(),) if descending else (JobRow.ended_at.asc(),)

    def ended(skip: int, take: int) -> list[int]:
        if take <= 0:
            return []
        stmt = (
            select(JobRow.number)
            .where(*mine, JobRow.ended_at.is_not(None))
            .order_by(*ended_order, *_order(descending))
            .offset(skip)
            .limit(take)
        )
        return list(session.scalars(stmt))

    if descending:
        numbers = unended[offset : offset + limit]
        numbers += ended(max(0, offset - len(unended)), limit - len(numbers))
    else:
        numbers = ended(offset, limit)
        first = max(0, offset - (total - len(unended)))
        numbers += unended[first : first + limit - len(numbers)]
    return _rows(session, numbers), total


# -- the tasks' summaries -------------------------------------------------------------------


class _truncated(FunctionElement[int]):
    """A non-negative float cut to an integer, as Python's ``int()`` does."""

    type = BigInteger()
    name = "truncated"
    inherit_cache = True


@compiles(_truncated)
def _truncated_default(element: _truncated, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(trunc({compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(_truncated, "sqlite")
def _truncated_sqlite(element: _truncated, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def _summary_columns() -> list[ColumnElement[Any]]:
    done, total = TaskRow.progress_done, TaskRow.progress_total
    reports = total > 0
    ratio = done / total
    percent = (100.0 * done) / total
    requested = func.coalesce(TaskRow.requested_primaries, 0)
    fraction = case((ratio > 1.0, 1.0), (ratio < 0.0, 0.0), else_=ratio)
    completed = TaskRow.state == TaskState.COMPLETED.value
    # As TaskRecord.simulated_primaries: past its share where the task counted it so.
    beyond = and_(requested > 0, total == requested, done > requested)
    simulated = case(
        (and_(completed, beyond), _truncated(done)),
        (completed, requested),
        (total <= 0, 0),
        else_=_truncated(cast(fraction, Float) * requested),
    )
    return [
        func.count(),
        func.sum(done),
        func.sum(total),
        func.sum(case((reports, 1), else_=0)),
        func.sum(case((reports, case((percent > 100.0, 100.0), else_=percent)), else_=0.0)),
        func.sum(requested),
        func.sum(simulated),
    ]


_SUMMARIES = (
    select(TaskRow.job_id, TaskRow.state, *_summary_columns())
    .where(TaskRow.job_id.in_(bindparam("ids", expanding=True)))
    .group_by(TaskRow.job_id, TaskRow.state)
)
# The stage each job's most recently updated running task reported.
_STAGES = (
    select(TaskRow.job_id, TaskRow.stage)
    .where(
        TaskRow.job_id.in_(bindparam("ids", expanding=True)),
        TaskRow.state == TaskState.RUNNING.value,
        and_(TaskRow.stage.is_not(None), TaskRow.stage != ""),
    )
    .order_by(
        TaskRow.job_id,
        cast(TaskRow.last_update_at.is_not(None), Boolean).desc(),
        TaskRow.last_update_at.desc(),
        TaskRow.index.desc(),
    )
)


def task_summaries(session: Session, jobs: Sequence[tuple[str, str]]) -> dict[str, TaskSummary]:
    """For (job id, job state) pairs: each job's tasks added up by state, in the database."""
    ids = [job_id for job_id, _ in jobs]
    if not ids:
        return {}
    connection = session.connection()
    tallies: dict[str, dict[TaskState, TaskTally]] = {job_id: {} for job_id in ids}
    for job_id, state, *sums in connection.execute(_SUMMARIES, {"ids": ids}):
        n, done, total, with_total, percent, requested, simulated = sums
        tallies[job_id][TaskState(state)] = TaskTally(
            int(n),
            float(done or 0),
            float(total or 0),
            int(with_total or 0),
            float(percent or 0),
            int(requested or 0),
            int(simulated or 0),
        )
    stages: dict[str, str] = {}
    running = [job_id for job_id, state in jobs if state == JobState.RUNNING.value]
    if running:
        for job_id, stage in connection.execute(_STAGES, {"ids": running}):
            stages.setdefault(job_id, stage or "")
    return {job_id: TaskSummary(tallies[job_id], stages.get(job_id)) for job_id in ids}


_PROGRESS = (
    select(TaskRow.job_id, TaskRow.state, *_summary_columns()[:1], *_summary_columns()[5:])
    .where(TaskRow.job_id.in_(bindparam("ids", expanding=True)))
    .group_by(TaskRow.job_id, TaskRow.state)
)


def task_progress(session: Session, ids: Sequence[str]) -> Sequence[Sequence[Any]]:
    """For jobs by id: rows of (job id, task state, tasks, requested primaries, simulated
    primaries), added up by the database as ``task_summaries`` does (a YAPTIDE list shows
    only these)."""
    if not ids:
        return []
    return session.connection().execute(_PROGRESS, {"ids": list(ids)}).all()


@lru_cache(maxsize=256)
def _listed_statement(shape: _Shape) -> Select[Any]:
    """A page's job rows (``_page_statement``), each beside its tasks added up by state (a
    row per state, or one of nulls for a job without tasks) and the total of the listing."""
    page = _page_statement(shape).cte("page")
    _, _, _, _, _, requested, simulated = _summary_columns()
    progress = (
        select(
            TaskRow.job_id,
            TaskRow.state.label("task_state"),
            func.count().label("task_count"),
            requested.label("task_requested"),
            simulated.label("task_simulated"),
        )
        .where(TaskRow.job_id.in_(select(page.c.id)))
        .group_by(TaskRow.job_id, TaskRow.state)
        .subquery("progress")
    )
    total = counts.count_statement(owner=True, states=shape.states, yaptide=True)
    return select(
        page,
        progress.c.task_state,
        progress.c.task_count,
        progress.c.task_requested,
        progress.c.task_simulated,
        total.scalar_subquery().label("listed_total"),
    ).select_from(page.outerjoin(progress, progress.c.job_id == page.c.id))


def simulation_page_progress(
    session: Session,
    owner_id: int,
    states: Collection[str] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[Any], dict[str, dict[str, tuple[int, int, int]]], int]:
    """``simulation_page`` by submission time, with ``task_progress`` by job id and state
    name ((tasks, requested primaries, simulated primaries)), in one statement."""
    wanted = None if states is None else tuple(sorted(states))
    shape = _Shape(owner=True, yaptide=True, states=wanted, descending=descending)
    if wanted is not None and not wanted:
        return [], {}, 0
    params = {"offset": offset, "limit": limit, "reach": offset + limit, "owner": owner_id}
    found = session.connection().execute(_listed_statement(shape), params).all()
    if not found:
        return [], {}, counts.count(session, owner_id=owner_id, states=states, yaptide=True)
    jobs: dict[int, Any] = {}
    progress: dict[str, dict[str, tuple[int, int, int]]] = {}
    for row in found:
        jobs.setdefault(row.number, row)
        sums = progress.setdefault(row.id, {})
        if row.task_state is not None:
            sums[row.task_state] = (
                int(row.task_count),
                int(row.task_requested or 0),
                int(row.task_simulated or 0),
            )
    ascending = sorted(jobs.values(), key=lambda row: (row.created_at, row.number))
    return ascending[::-1] if descending else ascending, progress, int(found[0].listed_total)


# What tells that a task a job's detail shows has changed, added up by state: every writer
# of a shown column but one sets ``last_update_at`` to its time (transitions, progress, a
# worker's report, the stage its run reports); the one that does not (stored results) sets
# progress, which the sums see, and ends the job, which bumps its event sequence. The rest
# catch what a write at the same time could hide.
_MARK = (
    select(
        TaskRow.state,
        func.count(),
        func.max(TaskRow.last_update_at),
        func.sum(TaskRow.progress_done),
        func.sum(TaskRow.progress_total),
        func.sum(func.coalesce(TaskRow.requested_primaries, 0)),
        func.sum(TaskRow.attempt),
        func.count(TaskRow.started_at),
        func.count(TaskRow.ended_at),
        func.count(TaskRow.exit_code),
        func.sum(func.coalesce(TaskRow.exit_code, 0)),
        func.count(TaskRow.error),
        func.sum(func.length(func.coalesce(TaskRow.error, ""))),
        func.count(TaskRow.estimated_seconds),
        func.sum(func.coalesce(TaskRow.estimated_seconds, 0)),
        func.count(TaskRow.stage),
    )
    .where(TaskRow.job_id == bindparam("job"))
    .group_by(TaskRow.state)
    .order_by(TaskRow.state)
)


def task_mark(session: Session, job_id: str) -> tuple[Any, ...]:
    """A mark of one job's tasks that changes whenever a column of theirs that a detail or
    a summary shows does (state, attempt, progress, times, exit code, error, estimate,
    stage): a reader that holds what it made of the tasks under a mark need not read them
    again while the mark stays."""
    return tuple(tuple(row) for row in session.connection().execute(_MARK, {"job": job_id}))


# What a job's detail shows of each task, in this order.
DETAIL_TASK_COLUMNS = (
    "index",
    "state",
    "seed",
    "attempt",
    "progress_done",
    "progress_total",
    "requested_primaries",
    "estimated_seconds",
    "exit_code",
    "error",
    "started_at",
    "ended_at",
)
_DETAIL_TASKS = (
    select(*(TaskRow.__table__.c[name] for name in DETAIL_TASK_COLUMNS))
    .where(TaskRow.job_id == bindparam("job"))
    .order_by(TaskRow.index)
)


def task_details(session: Session, job_id: str) -> Sequence[Sequence[Any]]:
    """What a job's detail shows of each of its tasks, in order: rows of the columns of
    ``DETAIL_TASK_COLUMNS`` (the state by name). A job may have 1,000 tasks."""
    return session.connection().execute(_DETAIL_TASKS, {"job": job_id}).all()
