"""Pages of jobs, their totals and their tasks' summaries, each read from an index.

A page is read in the listing's order from the index whose leading columns are its filter
(tables.py): owner, state, service, then ``created_at`` and ``number``, so a page costs its
rows, not the table. A filter on several states reads one range per state, each cut at the
page's end, and merges them. A total is the sum of ``job_counts`` rows (storage/counts.py),
except with a search, whose total counts its matches. A deep page still reads every row
before it (``OFFSET``): a page costs its position, not the table's size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, reduce
from itertools import compress, groupby, repeat
from operator import add, gt, itemgetter, lt, mul, truediv
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Float,
    Select,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import BigInteger

from cyclotron.domain.records import JobFilter, TaskSummary, TaskTally
from cyclotron.domain.states import JobState, TaskState
from cyclotron.storage import counts
from cyclotron.storage.database import Database
from cyclotron.storage.prepared import Prepared
from cyclotron.storage.search import name_contains
from cyclotron.storage.tables import JobRow, TaskRow, UTCDateTime

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


class _JSONText(TypeDecorator[Any]):
    """A JSON column read as its text and made a value by orjson: a list marks a job by its
    row as the driver gives it, and the text is what PostgreSQL holds, not a dict."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


_PAGE_COLUMNS = [
    type_coerce(cast(column, Text), _JSONText).label(column.key)
    if isinstance(column.type, JSON)
    else column
    for column in JobRow.__table__.c
]


@lru_cache(maxsize=1024)
def _page_statement(shape: _Shape) -> Prepared:
    """The rows of the jobs whose numbers the page's ranges find, in one statement."""
    numbers = _range_statement(shape)
    return Prepared(select(*_PAGE_COLUMNS).where(JobRow.number.in_(numbers)))


_JOB_KEYS = list(JobRow.__table__.c.keys())
_JOB_COLUMNS = len(_JOB_KEYS)
_ID_AT, _STATE_AT_JOB, _ATTRS_AT = (_JOB_KEYS.index(k) for k in ("id", "state", "attrs"))
# The listing's order (in the driver's values: SQLite's text times order as SQLite does).
_ORDER_KEY = itemgetter(_JOB_KEYS.index("created_at"), _JOB_KEYS.index("number"))


@dataclass(frozen=True)
class JobRows:
    """A page's job rows as the driver gave them, in the listing's order; ``make`` makes
    one's named tuple (the columns of ``JobRow``, by name)."""

    raw: Sequence[Sequence[Any]]
    make: Callable[[Sequence[Any]], Any]

    @classmethod
    def of(cls, rows: Sequence[Any]) -> JobRows:
        """Rows already made (SQLAlchemy's)."""
        return cls(rows, _same)

    def made(self) -> list[Any]:
        return [self.make(row) for row in self.raw]

    def ids(self) -> list[str]:
        return [row[_ID_AT] for row in self.raw]

    def ids_and_states(self) -> list[tuple[str, str]]:
        return [(row[_ID_AT], row[_STATE_AT_JOB]) for row in self.raw]


def _ranges_raw(session: Session, shape: _Shape, offset: int, limit: int, **values: Any) -> JobRows:
    """The job rows of a page: one index range, or one range per state merged."""
    if shape.states is not None and not shape.states:
        return JobRows([], tuple)
    params = {"offset": offset, "limit": limit, "reach": offset + limit, **values}
    fetched, make = _page_statement(shape).fetch(session, params)
    ascending = sorted(fetched, key=_ORDER_KEY)
    return JobRows(ascending[::-1] if shape.descending else ascending, make)


def _ranges(session: Session, shape: _Shape, offset: int, limit: int, **values: Any) -> list[Any]:
    return _ranges_raw(session, shape, offset, limit, **values).made()


_ROWS = select(*JobRow.__table__.c).where(JobRow.number.in_(bindparam("numbers", expanding=True)))


def _rows(session: Session, numbers: list[int]) -> list[Any]:
    if not numbers:
        return []
    found = {row.number: row for row in session.connection().execute(_ROWS, {"numbers": numbers})}
    return [found[n] for n in numbers if n in found]


def _states(where: JobFilter) -> tuple[str, ...] | None:
    return None if where.states is None else tuple(sorted(s.value for s in where.states))


def job_page(session: Session, where: JobFilter, offset: int, limit: int) -> JobRows:
    """The page's job rows, newest first."""
    states = _states(where)
    if where.name_contains:
        clauses = name_contains(session, where.name_contains)
        if where.owner_id is not None:
            clauses.append(JobRow.owner_id == where.owner_id)
        if where.service is not None:
            clauses.append(JobRow.service == where.service)
        if states is not None:
            clauses.append(JobRow.state.in_(states))
        return JobRows.of(_rows(session, _matches_page(session, clauses, offset, limit)))
    if where.service is not None and states is None:
        states = ALL_STATES  # no index leads with the service alone: (service, state) ranges
    shape = _Shape(
        owner=where.owner_id is not None, service=where.service is not None, states=states
    )
    values = {"owner": where.owner_id, "service": where.service}
    return _ranges_raw(session, shape, offset, limit, **values)


def _same(row: Sequence[Any]) -> Any:
    return row


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


def _ids(count: int) -> ColumnElement[bool]:
    """``job_id IN (:id0, …)`` for ``count`` ids: one prepared statement per page length,
    where an expanding parameter would make the SQL again at each run."""
    return TaskRow.job_id.in_([bindparam(f"id{i}") for i in range(count)])


@lru_cache(maxsize=128)
def _summaries(count: int) -> Prepared:
    return Prepared(
        select(TaskRow.job_id, TaskRow.state, *_summary_columns())
        .where(_ids(count))
        .group_by(TaskRow.job_id, TaskRow.state)
    )


@lru_cache(maxsize=128)
def _stages(count: int) -> Prepared:
    """The stage each job's most recently updated running task reported."""
    return Prepared(
        select(TaskRow.job_id, TaskRow.stage)
        .where(
            _ids(count),
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


def _id_values(ids: Sequence[str]) -> dict[str, str]:
    return {f"id{i}": job_id for i, job_id in enumerate(ids)}


# A job's tasks added up by state, as the database gives them: (state, count, progress
# done, progress total, tasks that report a total, their percents, requested primaries,
# simulated primaries) per state, and the stage its last updated running task reported.
SummaryRows = tuple[tuple[tuple[Any, ...], ...], str | None]


def summary_rows(session: Session, jobs: Sequence[tuple[str, str]]) -> dict[str, SummaryRows]:
    """For (job id, job state) pairs: each job's tasks added up by state, in the database."""
    ids = [job_id for job_id, _ in jobs]
    if not ids:
        return {}
    sums: dict[str, list[tuple[Any, ...]]] = {job_id: [] for job_id in ids}
    for job_id, *by_state in _summaries(len(ids)).rows(session, _id_values(ids)):
        sums[job_id].append(tuple(by_state))
    stages: dict[str, str] = {}
    running = [job_id for job_id, state in jobs if state == JobState.RUNNING.value]
    if running:
        for job_id, stage in _stages(len(running)).rows(session, _id_values(running)):
            stages.setdefault(job_id, stage or "")
    return {job_id: (tuple(sums[job_id]), stages.get(job_id)) for job_id in ids}


def summary_of(rows: SummaryRows) -> TaskSummary:
    by_state, stage = rows
    tallies = {
        _TASK_STATES[state]: TaskTally(
            int(n),
            float(done or 0),
            float(total or 0),
            int(with_total or 0),
            float(percent or 0),
            int(requested or 0),
            int(simulated or 0),
        )
        for state, n, done, total, with_total, percent, requested, simulated in by_state
    }
    return TaskSummary(tallies, stage)


_TASK_STATES = {state.value: state for state in TaskState}


def row_mark(row: Sequence[Any], summary: Hashable) -> Hashable:
    """What changes whenever a job's list entry may: every column of its row as the driver
    gave it (JSON as text) and the sums of its tasks."""
    attrs = row[_ATTRS_AT]
    if not isinstance(attrs, dict):
        return (tuple(row[:_JOB_COLUMNS]), summary)
    return (*row[:_ATTRS_AT], orjson.dumps(attrs), *row[_ATTRS_AT + 1 : _JOB_COLUMNS], summary)


_PROGRESS = (
    select(TaskRow.job_id, TaskRow.state, *_summary_columns()[:1], *_summary_columns()[5:])
    .where(TaskRow.job_id.in_(bindparam("ids", expanding=True)))
    .group_by(TaskRow.job_id, TaskRow.state)
)


def task_progress(session: Session, ids: Sequence[str]) -> Sequence[Sequence[Any]]:
    """For jobs by id: rows of (job id, task state, tasks, requested primaries, simulated
    primaries), added up by the database as ``summary_rows`` does (a YAPTIDE list shows
    only these)."""
    if not ids:
        return []
    return session.connection().execute(_PROGRESS, {"ids": list(ids)}).all()


@lru_cache(maxsize=256)
def _listed_statement(shape: _Shape) -> Prepared:
    """A page's job rows (``_page_statement``), each beside its tasks added up by state (a
    row per state, or one of nulls for a job without tasks) and the total of the listing."""
    page = _page_statement(shape).statement.cte("page")
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
    return Prepared(
        select(
            page,
            progress.c.task_state,
            progress.c.task_count,
            progress.c.task_requested,
            progress.c.task_simulated,
            total.scalar_subquery().label("listed_total"),
        ).select_from(page.outerjoin(progress, progress.c.job_id == page.c.id))
    )


def simulation_page_progress(
    session: Session,
    owner_id: int,
    states: Collection[str] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[JobRows, dict[str, dict[str, tuple[int, int, int]]], int]:
    """``simulation_page`` by submission time, with ``task_progress`` by job id and state
    name ((tasks, requested primaries, simulated primaries)), in one statement; the rows as
    the driver gave them."""
    wanted = None if states is None else tuple(sorted(states))
    shape = _Shape(owner=True, yaptide=True, states=wanted, descending=descending)
    if wanted is not None and not wanted:
        return JobRows.of([]), {}, 0
    params = {"offset": offset, "limit": limit, "reach": offset + limit, "owner": owner_id}
    found, make = _listed_statement(shape).fetch(session, params)
    if not found:
        total = counts.count(session, owner_id=owner_id, states=states, yaptide=True)
        return JobRows.of([]), {}, total
    jobs: dict[str, Sequence[Any]] = {}
    progress: dict[str, dict[str, tuple[int, int, int]]] = {}
    for row in found:  # the job's columns, then its tasks' state, count, primaries, total
        job_id = row[_ID_AT]
        jobs.setdefault(job_id, row)
        sums = progress.setdefault(job_id, {})
        state, count, requested, simulated, _ = row[_JOB_COLUMNS:]
        if state is not None:
            sums[state] = (int(count), int(requested or 0), int(simulated or 0))
    ascending = sorted(jobs.values(), key=_ORDER_KEY)
    rows = JobRows(ascending[::-1] if descending else ascending, make)
    return rows, progress, int(found[0][_JOB_COLUMNS + 4])


# -- a page, its tasks' sums and its total in one statement (PostgreSQL) --------------------

_RUNNING_STAGE = (
    select(TaskRow.stage)
    .where(
        TaskRow.state == TaskState.RUNNING.value,
        and_(TaskRow.stage.is_not(None), TaskRow.stage != ""),
    )
    .order_by(
        cast(TaskRow.last_update_at.is_not(None), Boolean).desc(),
        TaskRow.last_update_at.desc(),
        TaskRow.index.desc(),
    )
    .limit(1)
)


@lru_cache(maxsize=1024)
def _list_statement(shape: _Shape, counted: tuple[str, ...] | None) -> Prepared:
    """A page's job rows in its order, each beside its running stage (``summary_rows``'s),
    the listing's total (of the jobs in ``counted`` states) and its tasks added up by state:
    a row per state, or one of nulls for a job without tasks."""
    page = _page_statement(shape).statement.cte("page")
    sums = (
        select(
            TaskRow.job_id,
            TaskRow.state.label("task_state"),
            *(column.label(f"task_sum{i}") for i, column in enumerate(_summary_columns())),
        )
        .where(TaskRow.job_id.in_(select(page.c.id)))
        .group_by(TaskRow.job_id, TaskRow.state)
        .subquery("sums")
    )
    running = page.c.state == JobState.RUNNING.value
    stage = case((running, _RUNNING_STAGE.where(TaskRow.job_id == page.c.id).scalar_subquery()))
    total = counts.count_statement(
        owner=shape.owner, service=shape.service, states=counted, yaptide=None
    )
    keys = (page.c.created_at, page.c.number)
    return Prepared(
        select(
            page,
            stage.label("running_stage"),
            total.scalar_subquery().label("listed_total"),
            *(column for column in sums.c if column.name != "job_id"),
        )
        .select_from(page.outerjoin(sums, sums.c.job_id == page.c.id))
        .order_by(*(k.desc() if shape.descending else k.asc() for k in keys))
    )


@dataclass(frozen=True)
class ListedPage:
    """A list's page: its jobs' rows as the driver gave them (``rows.make`` makes one's
    named tuple), each job's tasks' sums by id, and the total."""

    rows: JobRows
    sums: dict[str, SummaryRows]
    total: int


def read_list(db: Database, where: JobFilter, offset: int, limit: int) -> ListedPage:
    """A list's page, newest first: on PostgreSQL in one statement outside a transaction
    (``list_page``), else (SQLite plans that statement poorly, and a search finds its
    matches first) as ``job_page``, ``summary_rows`` and ``job_total`` in one transaction."""
    if db.kind == "postgresql":
        with db.statement_read() as connection:
            listed = list_page(connection, where, offset, limit)
        if listed is not None:
            return listed
    with db.transaction(write=False) as session:
        rows = job_page(session, where, offset, limit)
        sums = summary_rows(session, rows.ids_and_states())
        return ListedPage(rows, sums, job_total(session, where))


def list_page(
    connection: Connection, where: JobFilter, offset: int, limit: int
) -> ListedPage | None:
    """``job_page``, ``summary_rows`` and ``job_total`` of a list without a search, in one
    statement (its own snapshot: no transaction needed); None for a search."""
    if where.name_contains:
        return None
    states = counted = _states(where)
    if where.service is not None and states is None:
        states = ALL_STATES  # as job_page
    if states is not None and not states:
        return ListedPage(JobRows([], tuple), {}, 0)
    shape = _Shape(
        owner=where.owner_id is not None, service=where.service is not None, states=states
    )
    params: dict[str, Any] = {"offset": offset, "limit": limit, "reach": offset + limit}
    if where.owner_id is not None:
        params["owner"] = where.owner_id
    if where.service is not None:
        params["service"] = where.service
    fetched, make = _list_statement(shape, counted).fetch(connection, params)
    if not fetched:
        return None  # past the end: the total alone (``job_total``)
    raw: list[Sequence[Any]] = []
    sums: dict[str, SummaryRows] = {}
    for job_id, group in groupby(fetched, key=itemgetter(_ID_AT)):
        rows = list(group)
        first = rows[0]
        by_state = tuple(
            tuple(row[_JOB_COLUMNS + 2 :]) for row in rows if row[_JOB_COLUMNS + 2] is not None
        )
        raw.append(first)  # its job's columns first (``row_mark`` reads only those)
        sums[job_id] = (by_state, first[_JOB_COLUMNS])
    return ListedPage(JobRows(raw, make), sums, int(fetched[0][_JOB_COLUMNS + 1]))


# What tells that a task a job's detail shows has changed, added up by state: every writer
# of a shown column but one sets ``last_update_at`` to its time (transitions, progress, a
# worker's report, the stage its run reports); the one that does not (stored results) sets
# progress, which the sums see, and ends the job, which bumps its event sequence. The rest
# catch what a write at the same time could hide.
_MARK = Prepared(
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
    return tuple(map(tuple, _MARK.rows(session, {"job": job_id})))


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


class _at_utc(FunctionElement[datetime]):
    """A time as its driver reads it fast: PostgreSQL's without its zone (psycopg passes each
    zoned time through the session's zone, most of a 1,000-task read), SQLite's text as
    stored; ``UTCDateTime`` makes either the aware time."""

    type = UTCDateTime()
    name = "at_utc"
    inherit_cache = True


@compiles(_at_utc)
def _at_utc_default(element: _at_utc, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_at_utc, "postgresql")
def _at_utc_postgresql(element: _at_utc, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')"


def _read(name: str) -> ColumnElement[Any]:
    column = TaskRow.__table__.c[name]
    return _at_utc(column).label(name) if isinstance(column.type, UTCDateTime) else column


# After the shown columns, what the job's summary also needs (``task_summary``).
_DETAIL_TASKS = Prepared(
    select(*(_read(name) for name in (*DETAIL_TASK_COLUMNS, "stage", "last_update_at")))
    .where(TaskRow.job_id == bindparam("job"))
    .order_by(TaskRow.index),
    binary=True,
)


def task_details(
    session: Session, job_id: str
) -> tuple[Sequence[Sequence[Any]], Callable[[Sequence[Any]], Sequence[Any]]]:
    """What a job's detail shows of each of its tasks, in order: the driver's rows, and the
    function that makes of one the values of ``DETAIL_TASK_COLUMNS`` (the state by name),
    then of ``stage`` and ``last_update_at``. A job may have 1,000 tasks: equal rows make
    equal values, so a reader that keeps what it made of a row need not make it again."""
    return _DETAIL_TASKS.fetch(session, {"job": job_id})


_STATE_AT = DETAIL_TASK_COLUMNS.index("state")
_INDEX, _STAGE, _UPDATED = 0, len(DETAIL_TASK_COLUMNS), len(DETAIL_TASK_COLUMNS) + 1
_STATE, _DONE, _TOTAL, _REQUESTED = (
    itemgetter(DETAIL_TASK_COLUMNS.index(name))
    for name in ("state", "progress_done", "progress_total", "requested_primaries")
)
_LATEST = itemgetter(0, 1, 2)
_COMPLETED, _RUNNING = TaskState.COMPLETED.value, TaskState.RUNNING.value


def task_summary(rows: Sequence[Sequence[Any]], running: bool) -> TaskSummary:
    """The summary of a job's tasks from the rows of ``task_details``, added up as
    ``summary_rows`` adds them in the database (``_summary_columns``, ``_stages``). A job
    may have 1,000 tasks: each sum is a builtin's loop. Sums of floats go plainly in the
    tasks' order (``reduce``: Python 3.12's ``sum`` compensates), as SQLite adds them;
    PostgreSQL adds in its rows' order, which may differ in the last digits."""
    tallies: dict[TaskState, TaskTally] = {}
    for state, grouped in groupby(sorted(rows, key=_STATE), _STATE):
        tasks = list(grouped)
        done = list(map(_DONE, tasks))
        total = list(map(_TOTAL, tasks))
        requested = [r or 0 for r in map(_REQUESTED, tasks)]
        reports = list(map(lt, repeat(0.0), total))
        done_r, total_r = list(compress(done, reports)), list(compress(total, reports))
        hundreds = map(truediv, map(mul, repeat(100.0), done_r), total_r)
        percents = [100.0 if p > 100.0 else p for p in hundreds]
        if state == _COMPLETED:
            # Its share, or the primaries it counted past a share it reported as its total.
            beyond = compress(zip(done, total, requested, strict=True), map(gt, done, requested))
            simulated = sum(requested) + sum(int(d) - r for d, t, r in beyond if r > 0 and t == r)
        else:
            simulated = sum(
                [
                    int((1.0 if f > 1.0 else 0.0 if f < 0.0 else f) * r)
                    for f, r in zip(
                        map(truediv, done_r, total_r), compress(requested, reports), strict=True
                    )
                ]
            )
        tallies[_TASK_STATES[state]] = TaskTally(
            len(tasks),
            float(reduce(add, done, 0)),
            float(reduce(add, total, 0)),
            len(total_r),
            float(reduce(add, percents, 0)),
            sum(requested),
            simulated,
        )
    stage = None
    if running:
        staged = [
            (row[_UPDATED] is not None, row[_UPDATED] or "", row[_INDEX], row[_STAGE])
            for row in rows
            if row[_STAGE] and row[_STATE_AT] == _RUNNING
        ]
        if staged:
            stage = max(staged, key=_LATEST)[3]
    return TaskSummary(tallies, stage)
