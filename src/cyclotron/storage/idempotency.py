"""Idempotency keys: the answer a submission got, kept under its owner's key for a day.

Functions flush; the services layer commits. The unique constraint on (owner, key) is what
makes two concurrent submissions with one key store one job: the second insert fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cyclotron.storage.tables import IdempotencyKeyRow

# How long a key keeps its answer: the same key later makes a new job.
KEY_LIFETIME = timedelta(hours=24)


def find_key(
    session: Session, owner_id: int, key: str, since: datetime
) -> IdempotencyKeyRow | None:
    """The owner's submission made with ``key`` at ``since`` or later, if any."""
    stmt = select(IdempotencyKeyRow).where(
        IdempotencyKeyRow.owner_id == owner_id,
        IdempotencyKeyRow.key == key,
        IdempotencyKeyRow.created_at >= since,
    )
    return session.scalar(stmt)


def add_key(
    session: Session,
    row: IdempotencyKeyRow,
    expired_before: datetime,
) -> None:
    """Keep the answer of a job just stored; an expired entry of the same key goes first.

    IntegrityError (at this flush) when another submission holds the key.
    """
    session.execute(
        delete(IdempotencyKeyRow).where(
            IdempotencyKeyRow.owner_id == row.owner_id,
            IdempotencyKeyRow.key == row.key,
            IdempotencyKeyRow.created_at < expired_before,
        )
    )
    session.add(row)
    session.flush()


def purge_keys(session: Session, before: datetime) -> int:
    """Forget the keys of submissions made before ``before``; how many were forgotten."""
    result = session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
