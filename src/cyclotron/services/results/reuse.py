"""Earlier results for the same input (spec/native.md §9): looking them up, and a new job that
takes a copy of them instead of running.

A completed job of a simulation service can stand in for a new one with the same input key,
``ntasks`` and seeds, visible to the caller: the same input and seeds give the same numbers.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import JobState, TaskState
from cyclotron.services.core import Core
from cyclotron.services.results.archives import regular_files
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import JobRow, utcnow
from cyclotron.storage.transitions import change_task_state, end_job

REUSABLE_RESULT_KIND = "estimators"


@dataclass(frozen=True)
class CachedResults:
    """A completed job whose results a submission with this key could take."""

    job_id: str
    key: str
    ended_at: datetime | None
    size: int


def reusable(core: Core, service: str) -> bool:
    """Whether the service's results may be reused: simulations only (a script may do anything)."""
    return core.catalog.get(service).plugin.result_kind == REUSABLE_RESULT_KIND


def find_cached(
    core: Core, caller: Caller, service: str, key: str, seeds: Sequence[int]
) -> CachedResults | None:
    """The newest completed job the caller may see with this key and these seeds, if any."""
    if not reusable(core, service):
        return None
    with core.db.transaction(write=False) as session:
        source = _newest_source(session, caller, service, key, seeds)
        if source is None:
            return None
    results = core.files.results_dir(source.id)
    if source.cleaned_at is not None or not results.is_dir():
        return None
    size = sum(path.stat().st_size for path, _ in regular_files(results))
    return CachedResults(job_id=source.id, key=key, ended_at=source.ended_at, size=size)


def _newest_source(
    session: Session, caller: Caller, service: str, key: str, seeds: Sequence[int]
) -> JobRecord | None:
    stmt = (
        select(JobRow)
        .where(
            JobRow.service == service,
            JobRow.input_hash == key,
            JobRow.state == JobState.COMPLETED.value,
            JobRow.ntasks == len(seeds),
            JobRow.cleaned_at.is_(None),
        )
        .order_by(JobRow.ended_at.desc(), JobRow.number.desc())
    )
    if not caller.admin:
        stmt = stmt.where(JobRow.owner_id == (caller.user_id or 0))
    for row in session.scalars(stmt):
        tasks = repo.job_tasks(session, row.id)
        if [t.seed for t in tasks] == list(seeds):
            return repo.job_record(row, tasks)
    return None


def copy_results(core: Core, source: CachedResults, target: Path) -> None:
    """A copy of the source's results at ``target`` (a new job's results directory)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(core.files.results_dir(source.job_id), target, symlinks=False)


def complete_from_cache(session: Session, job_id: str, source: CachedResults) -> None:
    """End a job just stored (PENDING), given a copy of the source's results (``copy_results``),
    as COMPLETED."""
    now = utcnow()
    for task in repo.job_tasks(session, job_id):
        done = float(task.requested_primaries or 0)
        change_task_state(
            session,
            job_id,
            task.index,
            TaskState.COMPLETED,
            started_at=now,
            ended_at=now,
            progress_done=done,
            progress_total=done,
            reason="results reused",
        )
    end_job(session, job_id, JobState.COMPLETED, reason=f"results of job {source.job_id}")
