"""Live progress: the stored event log, and a bus that tells subscribers when it grew.

The log is the truth; the bus only says "look again". A subscriber reads the events after
the last one it delivered, so it never misses one and never depends on a queue's size.
Events committed by another process reach a subscriber through its periodic look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import JOB_TERMINAL
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, visible_job_row
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import job_events


@dataclass(frozen=True)
class EventRecord:
    seq: int
    kind: str
    task_index: int | None
    data: dict[str, Any]
    created_at: datetime


def visible_job_id(core: Core, caller: Caller, ref: JobRef) -> str:
    with core.db.transaction(write=False) as session:
        return visible_job_row(session, caller, ref).id


def read_progress(
    core: Core, job_id: str, after_seq: int, *, log_if_active: bool = True
) -> tuple[JobRecord, list[EventRecord]]:
    """The job as it is now and its events after ``after_seq``, read in one transaction.

    Without ``log_if_active`` the events are read only for a job that has ended: a view that
    starts from the job as it is now needs no log, however long the job's is.
    """
    with core.db.transaction(write=False) as session:
        row = repo.find_job(session, job_id)
        if row is None:
            raise LookupError(job_id)  # deleted while someone watched it
        job = repo.job_record(row, repo.task_records(session, job_id))
        if not log_if_active and job.state not in JOB_TERMINAL:
            return job, []
        return job, _events(session, job_id, after_seq)


def read_events(core: Core, job_id: str, after_seq: int) -> list[EventRecord]:
    """The job's events after ``after_seq`` (by the job and ``seq``); LookupError once the job
    is gone."""
    with core.db.transaction(write=False) as session:
        if not repo.job_exists(session, job_id):
            raise LookupError(job_id)
        return _events(session, job_id, after_seq)


def _events(session: Session, job_id: str, after_seq: int) -> list[EventRecord]:
    return [
        EventRecord(e.seq, e.kind, e.task_index, dict(e.data), e.created_at)
        for e in job_events(session, job_id, after_seq)
    ]
