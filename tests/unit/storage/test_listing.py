"""Lists, totals and search read from indexes (storage/listing.py, counts.py, search.py) give
what a scan of the table gives: the same jobs, in the same order, with the same totals, on
both backends; and migration 0007 builds its indexes over the jobs a database already holds."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ColumnElement, func, select, text, update

from cyclotron.domain.records import JobFilter, TaskSummary
from cyclotron.domain.states import JobState, TaskState
from cyclotron.storage import counts, listing
from cyclotron.storage import jobs as repo
from cyclotron.storage.database import Database
from cyclotron.storage.migrate import upgrade
from cyclotron.storage.search import search_index_present
from cyclotron.storage.tables import JobRow, TaskRow, utcnow
from cyclotron.storage.transitions import change_job_state, end_job

NAMES = [
    "Proton pencil beam in water",
    "PROTON pencil",
    "100% dose",
    "1000 dose",
    "under_score",
    "underXscore",
    "carbon SOBP",
    "Ünïcode phantom",
    'quote "in" name',
    "back\\slash",
    "ab",
]
SEARCHES = [
    "pencil",
    "PENCIL",
    "%",
    "0%",
    "_",
    "r_s",
    "zzz",
    "ab",
    "b",
    "ünï",
    "ÜNÏ",
    '"in"',
    "\\s",
    "on p",
    "o",
]
STATES = [JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED]
SAME_MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def filled(database: Database) -> Database:
    """Jobs of three owners, two services, four states and the names above; a few created
    at the same moment (ordered by number then)."""
    with database.transaction() as session:
        for i, (name, state) in enumerate(zip(itertools.cycle(NAMES), range(60), strict=False)):
            created = SAME_MOMENT if i % 7 == 0 else SAME_MOMENT + timedelta(minutes=i * 13 % 50)
            repo.add_job(
                session,
                JobRow(
                    id=uuid.uuid4().hex,
                    owner_id=1 + i % 3,
                    service="example" if i % 4 else "builtin",
                    name=name,
                    state=STATES[state % len(STATES)].value,
                    stage="queued",
                    priority=0,
                    ntasks=1,
                    created_at=created,
                    yaptide_id=f"sim-{i}" if i % 2 else None,
                    ended_at=created + timedelta(minutes=i % 5) if i % 3 == 0 else None,
                ),
                1,
            )
    return database


def scanned(session: Any, where: JobFilter, offset: int, limit: int) -> tuple[list[int], int]:
    """The page and total as a plain scan finds them (the query lists ran before indexes)."""
    clauses: list[ColumnElement[bool]] = []
    if where.owner_id is not None:
        clauses.append(JobRow.owner_id == where.owner_id)
    if where.states is not None:
        clauses.append(JobRow.state.in_([s.value for s in where.states]))
    if where.service is not None:
        clauses.append(JobRow.service == where.service)
    if where.name_contains:
        term = where.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(func.lower(JobRow.name).like(f"%{term.lower()}%", escape="\\"))
    page = session.scalars(
        select(JobRow.number)
        .where(*clauses)
        .order_by(JobRow.created_at.desc(), JobRow.number.desc())
        .offset(offset)
        .limit(limit)
    )
    total = session.scalar(select(func.count()).select_from(JobRow).where(*clauses))
    return list(page), int(total or 0)


def indexed(session: Any, where: JobFilter, offset: int, limit: int) -> tuple[list[int], int]:
    rows = listing.job_page(session, where, offset, limit).made()
    return [r.number for r in rows], listing.job_total(session, where)


def filters() -> Iterator[JobFilter]:
    owners = [None, 2]
    services = [None, "builtin"]
    states: list[frozenset[JobState] | None] = [
        None,
        frozenset({JobState.COMPLETED}),
        frozenset({JobState.PENDING, JobState.RUNNING, JobState.MERGING_QUEUED}),
    ]
    for owner, service, wanted in itertools.product(owners, services, states):
        yield JobFilter(owner_id=owner, service=service, states=wanted)


def test_one_statement_pages_are_those_of_three(filled: Database) -> None:
    """``list_page`` (PostgreSQL's list: the page, its sums, stages and total at once) gives
    what ``job_page``, ``summary_rows`` and ``job_total`` give, past the end included."""
    with filled.transaction() as session:  # running tasks that report progress and stages
        running = select(JobRow.id).where(JobRow.state == JobState.RUNNING.value)
        session.execute(
            update(TaskRow)
            .where(TaskRow.job_id.in_(running))
            .values(
                state=TaskState.RUNNING.value,
                stage="diffusion",
                progress_done=3.0,
                progress_total=8.0,
                requested_primaries=80,
                last_update_at=utcnow(),
            )
        )
    for where in filters():
        for offset, limit in ((0, 20), (7, 7), (55, 20), (100, 5)):
            with filled.statement_read() as connection:
                listed = listing.list_page(connection, where, offset, limit)
            with filled.transaction(write=False) as session:
                rows = listing.job_page(session, where, offset, limit)
                sums = listing.summary_rows(session, rows.ids_and_states())
                total = listing.job_total(session, where)
            if listed is None:  # only past the end, where the total is read alone
                assert not rows.raw, (where, offset)
                continue
            assert [r.number for r in listed.rows.made()] == [r.number for r in rows.made()]
            assert (listed.sums, listed.total) == (sums, total), (where, offset)
            assert any(stage == "diffusion" for _, stage in listed.sums.values()) or not any(
                state == JobState.RUNNING.value for _, state in rows.ids_and_states()
            )


def test_pages_and_totals_are_those_of_a_scan(filled: Database) -> None:
    with filled.transaction(write=False) as session:
        for where in filters():
            for offset, limit in ((0, 20), (0, 7), (7, 7), (14, 7), (55, 20), (100, 5)):
                assert indexed(session, where, offset, limit) == scanned(
                    session, where, offset, limit
                ), (where, offset)


@pytest.mark.parametrize("term", SEARCHES)
def test_search_finds_what_a_scan_finds(filled: Database, term: str) -> None:
    """Substring, case-insensitive, ``%`` and ``_`` literal: the index only narrows."""
    with filled.transaction(write=False) as session:
        for where in (JobFilter(name_contains=term), JobFilter(owner_id=1, name_contains=term)):
            for offset in (0, 5):
                assert indexed(session, where, offset, 5) == scanned(session, where, offset, 5)


def test_search_sees_renamed_and_deleted_jobs(filled: Database) -> None:
    with filled.transaction() as session:
        number = listing.job_page(session, JobFilter(name_contains="SOBP"), 0, 1).made()[0].number
        session.execute(update(JobRow).where(JobRow.number == number).values(name="renamed"))
    with filled.transaction(write=False) as session:
        found = indexed(session, JobFilter(name_contains="renamed"), 0, 10)
        assert found == ([number], 1)
        job_id = session.scalar(select(JobRow.id).where(JobRow.number == number))
    assert job_id is not None
    with filled.transaction() as session:
        repo.delete_job(session, job_id)
    with filled.transaction(write=False) as session:
        assert indexed(session, JobFilter(name_contains="renamed"), 0, 10) == ([], 0)


def test_totals_follow_every_change_and_survive_folds(filled: Database) -> None:
    """Stored, moved to another state, deleted: the totals stay a count of the rows, before
    and after their rows are folded."""
    mark = 0
    with filled.transaction(write=False) as session:
        jobs = list(session.execute(select(JobRow.id, JobRow.state)))
    for n, (job_id, state) in enumerate(jobs[:30]):
        with filled.transaction() as session:
            if state == JobState.PENDING.value:
                change_job_state(session, job_id, JobState.RUNNING)
            elif state == JobState.RUNNING.value:
                end_job(session, job_id, JobState.FAILED)
            elif n % 2:
                repo.delete_job(session, job_id)
        if n % 10 == 9:
            with filled.transaction() as session:
                mark = counts.fold(session, mark)
        with filled.transaction(write=False) as session:
            for where in filters():
                assert indexed(session, where, 0, 1)[1] == scanned(session, where, 0, 1)[1]
    with filled.transaction(write=False) as session:
        rows = session.scalar(text("SELECT count(*) FROM job_counts"))
        keys = session.scalar(
            text(
                "SELECT count(*) FROM (SELECT DISTINCT owner_id, service, state, yaptide"
                " FROM job_counts) AS k"
            )
        )
    assert rows is not None and keys is not None and rows < 3 * keys  # folded, not piling up


def simulations_scanned(
    session: Any, owner: int, states: set[str] | None, by_end: bool, descending: bool
) -> list[int]:
    mine = [JobRow.owner_id == owner, JobRow.yaptide_id.is_not(None)]
    if states is not None:
        mine.append(JobRow.state.in_(states))
    rows = list(
        session.execute(select(JobRow.number, JobRow.created_at, JobRow.ended_at).where(*mine))
    )
    far = datetime.max.replace(tzinfo=UTC)

    def key(row: Any) -> tuple[Any, ...]:
        return ((row.ended_at or far) if by_end else row.created_at, row.created_at, row.number)

    return [row.number for row in sorted(rows, key=key, reverse=descending)]


@pytest.mark.parametrize("by_end", [False, True])
@pytest.mark.parametrize("descending", [True, False])
def test_simulation_pages_in_every_order(filled: Database, by_end: bool, descending: bool) -> None:
    """/user/simulations: by start or end time (no end = later than any), either way, ties by
    start then submission, every page."""
    with filled.transaction(write=False) as session:
        for owner, states in itertools.product((1, 2), (None, {"PENDING", "COMPLETED"})):
            everything = simulations_scanned(session, owner, states, by_end, descending)
            for offset in range(0, len(everything) + 3, 3):
                rows, total = listing.simulation_page(
                    session, owner, states, by_end, descending, offset, 3
                )
                assert [r.number for r in rows] == everything[offset : offset + 3]
                assert total == len(everything)


def _assert_same_summary(got: TaskSummary, expected: TaskSummary) -> None:
    """The same stage and tallies; sums of floats to the last digits' rounding."""
    assert got.stage == expected.stage
    assert got.tallies.keys() == expected.tallies.keys()
    for state, tally in expected.tallies.items():
        mine = got.tallies[state]
        counted = ("count", "with_total", "requested_primaries", "simulated_primaries")
        assert [getattr(mine, n) for n in counted] == [getattr(tally, n) for n in counted]
        for name in ("progress_done", "progress_total", "percent"):
            assert getattr(mine, name) == pytest.approx(getattr(tally, name), rel=1e-12)


def _summary_in_database(session: Any, job_id: str) -> TaskSummary:
    """A running job's tasks added up as a list reads them."""
    return listing.summary_of(
        listing.summary_rows(session, [(job_id, JobState.RUNNING.value)])[job_id]
    )


def _add_running_job(session: Any, job_id: str, now: datetime, primaries: list[int]) -> None:
    """A running job of one task per entry of ``primaries``, its requested primaries."""
    repo.add_job(
        session,
        JobRow(
            id=job_id,
            owner_id=1,
            service="example",
            name="big",
            state=JobState.RUNNING.value,
            stage="running",
            priority=0,
            ntasks=len(primaries),
            created_at=now,
        ),
        len(primaries),
        primaries=primaries,
    )


def test_summaries_in_the_database_add_up_the_tasks(database: Database) -> None:
    """What a list shows of a job's tasks (counts by state, progress, primaries, the stage of
    the latest running task) equals the summary of the tasks themselves."""
    job_id = uuid.uuid4().hex
    now = utcnow()
    with database.transaction() as session:
        _add_running_job(session, job_id, now, [1000, 1000, 999, 999, 999, 999, 999])
        states = [TaskState.COMPLETED, TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED]
        for index in range(7):
            session.execute(
                update(TaskRow)
                .where(TaskRow.job_id == job_id, TaskRow.index == index)
                .values(
                    state=states[index % 4].value,
                    progress_done=[0.0, 333.3, 1200.0, 10.0][index % 4] + index,
                    progress_total=[0.0, 999.0, 1000.0, 0.0][index % 4],
                    stage=["diffusion", None, "data_pipeline", ""][index % 4],
                    last_update_at=now + timedelta(seconds=index % 3),
                )
            )
    with database.transaction(write=False) as session:
        summary = _summary_in_database(session, job_id)
        tasks = repo.task_records(session, job_id)
    _assert_same_summary(summary, type(summary).of(tasks))


def test_completed_tasks_count_the_primaries_they_ran_past_their_share(
    database: Database,
) -> None:
    """Issue 19, item 7: MCsquare runs whole batches (1,008 for 1,000 asked) and its results
    say so; a list showed the share (1,000) while the results counted 1,008. A completed task
    that counted its primaries past its share keeps that count; one that last reported less,
    or in other units, ran its share."""
    job_id = uuid.uuid4().hex
    with database.transaction() as session:
        _add_running_job(session, job_id, utcnow(), [1000, 1000, 1000, 1000])
        # (done, total): past the share, short of it, percent, and running past it.
        progress = [(1008.0, 1000.0), (980.0, 1000.0), (100.0, 100.0), (1008.0, 1000.0)]
        for index, (done, total) in enumerate(progress):
            state = TaskState.RUNNING if index == 3 else TaskState.COMPLETED
            session.execute(
                update(TaskRow)
                .where(TaskRow.job_id == job_id, TaskRow.index == index)
                .values(state=state.value, progress_done=done, progress_total=total)
            )
    with database.transaction(write=False) as session:
        summary = _summary_in_database(session, job_id)
        tasks = repo.task_records(session, job_id)
    assert [t.simulated_primaries for t in tasks] == [1008, 1000, 1000, 1000]
    for state, simulated in ((TaskState.COMPLETED, 3008), (TaskState.RUNNING, 1000)):
        assert summary.tally(state).simulated_primaries == simulated
        assert type(summary).of(tasks).tally(state).simulated_primaries == simulated


def test_the_migration_indexes_jobs_already_stored(db_url: str, tmp_path: Path) -> None:
    """0007 on a database at 0006 with jobs: their totals and a search by name answer at once."""
    db = Database(db_url)
    try:
        upgrade(db, "0006")
        with db.engine.begin() as connection:
            for i, name in enumerate(("Proton pencil beam", "carbon", "PENCIL two")):
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, owner_id, service, name, state, stage, priority,"
                        " ntasks, created_at, updated_at, last_event_seq) VALUES"
                        " (:id, :owner, 'example', :name, 'COMPLETED', 'done', 0, 1,"
                        " :at, :at, 0)"
                    ),
                    {
                        "id": uuid.uuid4().hex,
                        "owner": 1 + i % 2,
                        "name": name,
                        "at": "2026-01-01 00:00:00",
                    },
                )
        upgrade(db)
        with db.engine.connect() as connection:
            assert search_index_present(connection)
        with db.transaction(write=False) as session:
            assert listing.job_total(session, JobFilter()) == 3
            assert listing.job_total(session, JobFilter(owner_id=1)) == 2
            where = JobFilter(name_contains="pencil")
            assert len(listing.job_page(session, where, 0, 10).raw) == 2
            assert listing.job_total(session, where) == 2
    finally:
        db.dispose()


def test_a_detail_adds_up_its_tasks_as_the_list_does(database: Database) -> None:
    """A detail adds up the tasks it read (``task_summary``) to what a list reads from the
    database (``summary_rows``): counts, primaries, progress, the latest running stage."""
    job_id = uuid.uuid4().hex
    now = utcnow()
    with database.transaction() as session:
        _add_running_job(
            session, job_id, now, [1000, 1000, 999, 999, 999, 1000, 1000, 999, 999, 1000, 0, 1000]
        )
        states = [TaskState.COMPLETED, TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED]
        for index in range(12):
            session.execute(
                update(TaskRow)
                .where(TaskRow.job_id == job_id, TaskRow.index == index)
                .values(
                    state=states[index % 4].value,
                    progress_done=[1008.0, 333.3, 1200.0, 10.0][index % 4] + index / 3,
                    progress_total=[1000.0, 999.0, 1000.0, 0.0, -1.0][index % 5],
                    stage=["diffusion", None, "data_pipeline", ""][index % 4],
                    last_update_at=None if index == 5 else now + timedelta(seconds=index % 3),
                    requested_primaries=None if index == 3 else TaskRow.requested_primaries,
                )
            )
    with database.transaction(write=False) as session:
        summary = _summary_in_database(session, job_id)
        rows, _ = listing.task_details(session, job_id)
    added = listing.task_summary(rows, running=True)
    assert summary.stage == "data_pipeline"
    _assert_same_summary(added, summary)
    assert listing.task_summary(rows, running=False).stage is None
