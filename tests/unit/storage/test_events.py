"""The event log numbers each job's events 1, 2, 3, ... without gaps, in commit order."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import select

from cyclotron.storage.database import Database
from cyclotron.storage.events import append_event, job_events
from cyclotron.storage.tables import JobRow

AddJob = Callable[..., str]


def test_sequence_per_job_without_gaps(database: Database, add_job: AddJob) -> None:
    first, second = add_job(), add_job()
    with database.transaction() as session:
        seqs = [append_event(session, first, "progress", {"n": n}) for n in range(3)]
        other = append_event(session, second, "progress", {})
    assert seqs == [1, 2, 3] and other == 1
    with database.transaction(write=False) as session:
        assert [e.seq for e in job_events(session, first)] == [1, 2, 3]
        assert [e.data["n"] for e in job_events(session, first, after_seq=1)] == [1, 2]


def test_a_rolled_back_event_leaves_no_gap(database: Database, add_job: AddJob) -> None:
    job = add_job()
    try:
        with database.transaction() as session:
            append_event(session, job, "progress", {})
            raise RuntimeError("abandon the transaction")
    except RuntimeError:
        pass
    with database.transaction() as session:
        assert append_event(session, job, "progress", {}) == 1


def test_concurrent_writers_get_distinct_numbers_in_commit_order(
    database: Database, add_job: AddJob
) -> None:
    job = add_job()
    errors: list[BaseException] = []

    def writer(count: int) -> None:
        try:
            for _ in range(count):
                with database.transaction() as session:
                    append_event(session, job, "progress", {"thread": threading.get_ident()})
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.transaction(write=False) as session:
        events = job_events(session, job)
    assert [e.seq for e in events] == list(range(1, 101))
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_the_job_row_a_session_holds_follows_its_events(
    database: Database, add_job: AddJob
) -> None:
    job = add_job()
    with database.transaction() as session:
        row = session.scalars(select(JobRow).where(JobRow.id == job)).one()
        assert row is not None and row.last_event_seq == 0
        append_event(session, job, "progress", {})
        append_event(session, job, "progress", {})
        # Read from the row held, not the table: what a route answering from it would show.
        assert row.last_event_seq == 2
