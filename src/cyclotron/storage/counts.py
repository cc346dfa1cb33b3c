"""Job totals without counting jobs: the ``job_counts`` rows that triggers append.

Every job stored, moved to another state or deleted appends +1/-1 rows keyed by (owner,
service, state, face) in its own transaction (migration 0007), so a total is the sum of the
rows of its keys: a few per key, however many jobs there are. ``fold`` replaces the rows of
each key changed since the last fold by their sum; it deletes only the rows it read back
(``DELETE … RETURNING``), so a row committed meanwhile by another writer is kept for the next
fold and no total ever misses or doubles a job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, literal, select, tuple_
from sqlalchemy.orm import Session

from cyclotron.storage.prepared import Prepared
from cyclotron.storage.tables import JobCountRow

_KEY = (JobCountRow.owner_id, JobCountRow.service, JobCountRow.state, JobCountRow.yaptide)
_FOLD_BATCH = 500  # keys per DELETE statement


def count(
    session: Session,
    *,
    owner_id: int | None = None,
    service: str | None = None,
    states: Collection[str] | None = None,
    yaptide: bool | None = None,
) -> int:
    """How many jobs match: by owner, service, states and face (None: any)."""
    wanted = None if states is None else tuple(sorted(states))
    prepared = _prepared_count(owner_id is not None, service is not None, wanted, yaptide)
    params: dict[str, Any] = {}
    if owner_id is not None:
        params["owner"] = owner_id
    if service is not None:
        params["service"] = service
    (total,) = prepared.rows(session, params)[0]
    return int(total or 0)


def count_statement(
    *,
    owner: bool,
    states: Collection[str] | None,
    yaptide: bool | None,
    service: bool = False,
) -> Select[Any]:
    """``count``'s statement, its owner bound as ``owner`` and its service as ``service``:
    for a query that reads the total beside other things."""
    wanted = None if states is None else tuple(sorted(states))
    return _count_statement(owner, service, wanted, yaptide)


@lru_cache(maxsize=1024)
def _prepared_count(
    owner: bool, service: bool, states: tuple[str, ...] | None, yaptide: bool | None
) -> Prepared:
    """``count`` is run for every page of every list: on the driver's cursor."""
    return Prepared(_count_statement(owner, service, states, yaptide))


@lru_cache(maxsize=1024)
def _count_statement(
    owner: bool, service: bool, states: tuple[str, ...] | None, yaptide: bool | None
) -> Select[Any]:
    """Built once per shape; the owner and service are bound at each execution."""
    stmt = select(func.coalesce(func.sum(JobCountRow.n), 0))
    if owner:
        stmt = stmt.where(JobCountRow.owner_id == bindparam("owner"))
    if service:
        stmt = stmt.where(JobCountRow.service == bindparam("service"))
    if states is not None:
        # One parameter per state, not one expanding list: a prepared statement.
        stmt = stmt.where(JobCountRow.state.in_([literal(state) for state in states]))
    if yaptide is not None:
        stmt = stmt.where(JobCountRow.yaptide.is_(yaptide))
    return stmt


def by_service_and_state(session: Session) -> dict[tuple[str, str], int]:
    """Every job, counted by service and state."""
    stmt = (
        select(JobCountRow.service, JobCountRow.state, func.sum(JobCountRow.n))
        .group_by(JobCountRow.service, JobCountRow.state)
        .having(func.sum(JobCountRow.n) != 0)
    )
    return {(service, state): int(n) for service, state, n in session.execute(stmt)}


def changed_since(session: Session, after_id: int) -> bool:
    """Whether rows were appended above ``after_id``."""
    stmt = select(JobCountRow.id).where(JobCountRow.id > after_id).limit(1)
    return session.scalar(stmt) is not None


def fold(session: Session, after_id: int) -> int:
    """Sum the rows of each key that has a row above ``after_id`` into one; the highest row id
    now (the next fold's ``after_id``)."""
    keys = list(session.execute(select(*_KEY).where(JobCountRow.id > after_id).distinct()))
    for start in range(0, len(keys), _FOLD_BATCH):
        chunk = [tuple(key) for key in keys[start : start + _FOLD_BATCH]]
        gone = session.execute(
            delete(JobCountRow).where(tuple_(*_KEY).in_(chunk)).returning(*_KEY, JobCountRow.n)
        )
        sums: dict[tuple[int, str, str, bool], int] = defaultdict(int)
        for owner_id, service, state, yaptide, n in gone:
            sums[(owner_id, service, state, bool(yaptide))] += n
        rows = [
            {"owner_id": o, "service": s, "state": st, "yaptide": y, "n": n}
            for (o, s, st, y), n in sums.items()
            if n != 0
        ]
        if rows:
            session.execute(insert(JobCountRow), rows)
    return int(session.scalar(select(func.coalesce(func.max(JobCountRow.id), 0))) or 0)
