"""Reading jobs, always through the caller's visibility."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

from sqlalchemy.orm import Session

from cyclotron.domain.records import Caller, JobFilter, JobRecord
from cyclotron.domain.states import JobState
from cyclotron.errors import NotFound
from cyclotron.services.core import Core
from cyclotron.storage import jobs as repo
from cyclotron.storage import listing
from cyclotron.storage.tables import JobRow


@dataclass(frozen=True)
class JobRef:
    """A job named by its opaque id or by its integer number."""

    job_id: str | None = None
    number: int | None = None

    def __str__(self) -> str:
        return str(self.number) if self.number is not None else str(self.job_id)


def visible_job_row(session: Session, caller: Caller, ref: JobRef) -> JobRow:
    """The job, or NotFound when it does not exist or the caller may not see it (same answer)."""
    if ref.number is not None:
        row = repo.find_job_by_number(session, ref.number)
    else:
        row = repo.find_job(session, ref.job_id or "")
    if row is None or not caller.may_see(row.owner_id):
        raise NotFound(f"Job {ref} not found in the database")
    return row


def get_job(core: Core, caller: Caller, ref: JobRef, with_tasks: bool = True) -> JobRecord:
    """The job (with its tasks unless told otherwise), or NotFound."""
    with core.db.transaction(write=False) as session:
        row = visible_job_row(session, caller, ref)
        return repo.job_record(row, repo.task_records(session, row.id) if with_tasks else ())


@dataclass(frozen=True)
class JobDetail:
    """A job and what a detail shows of its tasks: ``tasks``, one row each, of which
    ``shown`` makes the values of the columns named by ``storage.listing.DETAIL_TASK_COLUMNS``
    in that order (the state by name), or none when the caller holds what it made of them
    under ``tasks_mark``.

    ``tasks_mark`` (None for a job of few tasks) changes whenever a task's shown columns do;
    ``job`` then carries its tasks' summary, unless the tasks were not read. The rows are
    then the driver's (``listing.task_details``): equal rows, equal values.
    """

    job: JobRecord
    tasks: Sequence[Sequence[Any]] | None
    tasks_mark: Hashable | None = None
    shown: Callable[[Sequence[Any]], Sequence[Any]] = tuple


_SHOWN = attrgetter(*listing.DETAIL_TASK_COLUMNS)


def get_job_detail(
    core: Core,
    caller: Caller,
    ref: JobRef,
    held: Callable[[str, Hashable], bool],
    marked_from: int = 100,
) -> JobDetail:
    """The job, or NotFound, read in one transaction. A job of at least ``marked_from``
    tasks comes with its tasks' mark, and with its tasks only when ``held(job id, mark)``
    says False (the caller does not hold what it made of them under that mark)."""
    with core.db.transaction(write=False) as session:
        row = visible_job_row(session, caller, ref)
        if row.ntasks < marked_from:
            record = repo.job_record(row, repo.task_records(session, row.id))
            return JobDetail(record, [_SHOWN(task) for task in record.tasks])
        mark = (row.last_event_seq, listing.task_mark(session, row.id))
        if held(row.id, mark):
            return JobDetail(repo.job_record(row), None, mark)
        tasks, shown = listing.task_details(session, row.id)
        summary = listing.task_summary(tasks, row.state == JobState.RUNNING)
        return JobDetail(repo.job_record(row, summary=summary), tasks, mark, shown)


@dataclass(frozen=True)
class JobPage:
    ids: list[str]
    items: list[JobRecord | None]  # None: a job the caller holds under its mark
    marks: list[Hashable]
    total: int


def list_jobs(
    core: Core,
    caller: Caller,
    where: JobFilter,
    offset: int = 0,
    limit: int = 20,
    held: Callable[[str, Hashable], bool] | None = None,
) -> JobPage:
    """Newest first; a non-admin caller sees only their own jobs, whatever the filter says.

    Each job comes with the summary of its tasks, not the tasks themselves, and with a mark
    that changes whenever what a list shows of it may: a job for which ``held(id, mark)``
    says the caller holds what it made of it under that mark comes as None.
    """
    if not caller.admin:
        where = replace(where, owner_id=caller.user_id)
    listed = listing.read_list(core.db, where, offset, limit)
    rows, sums = listed.rows, listed.sums
    ids = rows.ids()
    marks = [listing.row_mark(row, sums[job_id]) for row, job_id in zip(rows.raw, ids, strict=True)]
    items = [
        None
        if held is not None and held(job_id, mark)
        else repo.job_record(rows.make(row), summary=listing.summary_of(sums[job_id]))
        for row, job_id, mark in zip(rows.raw, ids, marks, strict=True)
    ]
    return JobPage(ids, items, marks, listed.total)
