"""Live progress: the stored event log, and a bus that tells subscribers when it grew.

The log is the truth; the bus only says "look again". A subscriber reads the events after
the last one it delivered, so it never misses one and never depends on a queue's size.
Events committed by another process reach a subscriber through its periodic look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cyclotron.domain.records import Caller, JobRecord
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


def read_progress(core: Core, job_id: str, after_seq: int) -> tuple[JobRecord, list[EventRecord]]:
    """The job as it is now and its events after ``after_seq``, read in one transaction."""
    with core.db.transaction(write=False) as session:
        row = repo.find_job(session, job_id)
        if row is None:
            raise LookupError(job_id)  # deleted while someone watched it
        job = repo.job_record(row, repo.job_tasks(session, job_id))
        events = [
            EventRecord(e.seq, e.kind, e.task_index, dict(e.data), e.created_at)
            for e in job_events(session, job_id, after_seq)
        ]
    return job, events
