"""The append-only event log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cyclotron.storage.tables import EventRow, utcnow


def append_event(
    session: Session,
    job_id: str,
    kind: str,
    data: dict[str, Any],
    task_index: int | None = None,
) -> None:
    # A Core INSERT: events are written often and never read back in the same unit of work.
    session.execute(
        insert(EventRow).values(
            job_id=job_id, kind=kind, data=data, task_index=task_index, created_at=utcnow()
        )
    )


def job_events(session: Session, job_id: str, after_id: int = 0) -> list[EventRow]:
    stmt = (
        select(EventRow)
        .where(EventRow.job_id == job_id, EventRow.id > after_id)
        .order_by(EventRow.id)
    )
    return list(session.scalars(stmt))
