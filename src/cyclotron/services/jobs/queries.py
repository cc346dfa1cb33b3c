"""Reading jobs, always through the caller's visibility."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

from sqlalchemy.orm import Session

from cyclotron.domain.records import Caller, JobFilter, JobRecord
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
    """A job and what a detail shows of its tasks: ``tasks``, tuples of the columns named by
    ``storage.listing.DETAIL_TASK_COLUMNS`` in that order (the state by name), or none when
    the caller holds what it made of them under ``tasks_mark``.

    ``tasks_mark`` (None for a job of few tasks) changes whenever a task's shown columns do;
    ``job`` then carries its tasks' summary (read from the table), unless the tasks were not
    read.
    """

    job: JobRecord
    tasks: Sequence[Sequence[Any]] | None
    tasks_mark: Hashable | None = None


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
        summary = listing.task_summaries(session, [(row.id, row.state)])[row.id]
        tasks = listing.task_details(session, row.id)
        return JobDetail(repo.job_record(row, summary=summary), tasks, mark)


@dataclass(frozen=True)
class JobPage:
    items: list[JobRecord]
    total: int


def list_jobs(
    core: Core, caller: Caller, where: JobFilter, offset: int = 0, limit: int = 20
) -> JobPage:
    """Newest first; a non-admin caller sees only their own jobs, whatever the filter says.

    Each job comes with the summary of its tasks, not the tasks themselves.
    """
    if not caller.admin:
        where = replace(where, owner_id=caller.user_id)
    with core.db.transaction(write=False) as session:
        rows = listing.job_page(session, where, offset, limit)
        return JobPage(items=summarised(session, rows), total=listing.job_total(session, where))


def summarised(session: Session, rows: list[Any]) -> list[JobRecord]:
    """Records of job rows, each with the summary of its tasks."""
    summaries = listing.task_summaries(session, [(r.id, r.state) for r in rows])
    return [repo.job_record(r, summary=summaries[r.id]) for r in rows]
