"""The append-only event log.

Each job's events are numbered 1, 2, 3, ... by ``jobs.last_event_seq``: appending bumps it
with one UPDATE, which on PostgreSQL holds the job's row lock until the commit, so the
numbers of a job's events follow the order in which they become visible, without gaps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cyclotron.storage.database import EVENTS_WRITTEN
from cyclotron.storage.tables import EventRow, JobRow, utcnow

# Built once and run on the session's connection: a job's every change writes an event, and
# the ORM's statements cost several times as much to build and run as these.
_JOBS, _EVENTS = cast(Table, JobRow.__table__), cast(Table, EventRow.__table__)
_BUMP = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job"))
    .values(last_event_seq=_JOBS.c.last_event_seq + 1, updated_at=bindparam("now"))
    .returning(_JOBS.c.last_event_seq)
)
_INSERT = insert(_EVENTS)


def append_event(
    session: Session,
    job_id: str,
    kind: str,
    data: dict[str, Any],
    task_index: int | None = None,
) -> int:
    """Append one event to the job's log; its ``seq`` is returned."""
    session.flush()  # a job added in this unit of work is in the table
    now = utcnow()
    seq = int(session.connection().execute(_BUMP, {"job": job_id, "now": now}).scalar_one())
    write_event(session, job_id, seq, now, kind, data, task_index)
    return seq


def write_event(
    session: Session,
    job_id: str,
    seq: int,
    now: datetime,
    kind: str,
    data: dict[str, Any],
    task_index: int | None = None,
) -> None:
    """Write the event numbered ``seq``, which the caller's UPDATE of the job's row took
    (``last_event_seq = last_event_seq + 1``, ``updated_at = now``) in this transaction."""
    # The job's row as this session holds it, if it does, stays as the table has it.
    for row in session.identity_map.values():
        if isinstance(row, JobRow) and row.id == job_id:
            set_committed_value(row, "last_event_seq", seq)
            set_committed_value(row, "updated_at", now)
    # Never read back in the same unit of work.
    session.connection().execute(
        _INSERT,
        {
            "job_id": job_id,
            "seq": seq,
            "kind": kind,
            "data": data,
            "task_index": task_index,
            "created_at": now,
        },
    )
    session.info.setdefault(EVENTS_WRITTEN, set()).add(job_id)


def job_events(session: Session, job_id: str, after_seq: int = 0) -> list[EventRow]:
    """The job's events with ``seq`` above ``after_seq``, in order."""
    stmt = (
        select(EventRow)
        .where(EventRow.job_id == job_id, EventRow.seq > after_seq)
        .order_by(EventRow.seq)
    )
    return list(session.scalars(stmt))
