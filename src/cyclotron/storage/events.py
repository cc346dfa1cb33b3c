"""The append-only event log.

Each job's events are numbered 1, 2, 3, ... by ``jobs.last_event_seq``: appending bumps it
with one UPDATE, which on PostgreSQL holds the job's row lock until the commit, so the
numbers of a job's events follow the order in which they become visible, without gaps.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from cyclotron.storage.database import EVENTS_WRITTEN
from cyclotron.storage.tables import EventRow, JobRow, utcnow


def append_event(
    session: Session,
    job_id: str,
    kind: str,
    data: dict[str, Any],
    task_index: int | None = None,
) -> int:
    """Append one event to the job's log; its ``seq`` is returned."""
    seq = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id)
        .values(last_event_seq=JobRow.last_event_seq + 1)
        .returning(JobRow.last_event_seq)
    ).scalar_one()
    # A Core INSERT: events are written often and never read back in the same unit of work.
    session.execute(
        insert(EventRow).values(
            job_id=job_id,
            seq=seq,
            kind=kind,
            data=data,
            task_index=task_index,
            created_at=utcnow(),
        )
    )
    session.info.setdefault(EVENTS_WRITTEN, set()).add(job_id)
    return int(seq)


def job_events(session: Session, job_id: str, after_seq: int = 0) -> list[EventRow]:
    """The job's events with ``seq`` above ``after_seq``, in order."""
    stmt = (
        select(EventRow)
        .where(EventRow.job_id == job_id, EventRow.seq > after_seq)
        .order_by(EventRow.seq)
    )
    return list(session.scalars(stmt))
