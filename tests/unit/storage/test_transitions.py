"""The one writer of states and stages: conditional, once only, one event per win (both
backends)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from cyclotron.domain.states import (
    JOB_TRANSITIONS,
    TASK_TRANSITIONS,
    JobStage,
    JobState,
    TaskState,
)
from cyclotron.storage import jobs as repo
from cyclotron.storage.database import Database
from cyclotron.storage.events import job_events
from cyclotron.storage.tables import JobRow, TaskRow, utcnow
from cyclotron.storage.transitions import (
    change_job_stage,
    change_job_state,
    change_task_state,
    end_job,
)

J, T = JobState, TaskState
AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py


def job_change(db: Database, job_id: str, target: JobState, **values: Any) -> bool:
    with db.transaction() as session:
        return change_job_state(session, job_id, target, **values)


def task_change(db: Database, job_id: str, index: int, target: TaskState, **kw: Any) -> bool:
    with db.transaction() as session:
        return change_task_state(session, job_id, index, target, **kw)


def job_state(db: Database, job_id: str) -> str:
    with db.transaction(write=False) as session:
        row = repo.find_job(session, job_id)
        assert row is not None
        return row.state


def events(db: Database, job_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    with db.transaction(write=False) as session:
        rows = job_events(session, job_id)
        return [
            {"kind": e.kind, "task_index": e.task_index, **e.data}
            for e in rows
            if kind is None or e.kind == kind
        ]


def walk_to(db: Database, job_id: str, *path: JobState) -> None:
    for target in path:
        assert job_change(db, job_id, target), target


TO_MERGING = (J.RUNNING, J.MERGING_QUEUED, J.MERGING_RUNNING)


# --- jobs -----------------------------------------------------------------------------------


def test_a_change_wins_once_and_only_once(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert job_change(database, job, J.RUNNING, stage=JobStage.RUNNING)
    assert not job_change(database, job, J.RUNNING, stage=JobStage.RUNNING)
    assert job_state(database, job) == "RUNNING"
    assert events(database, job, "state") == [
        {"kind": "state", "task_index": None, "state": "RUNNING", "stage": "running"}
    ]


def test_a_win_records_the_reason_and_the_values(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert job_change(
        database,
        job,
        J.FAILED,
        reason="run.sh is empty",
        error="run.sh is empty",
        error_kind="invalid",
    )
    with database.transaction(write=False) as session:
        row = repo.find_job(session, job)
        assert row is not None
        assert (row.state, row.error, row.error_kind) == ("FAILED", "run.sh is empty", "invalid")
    assert events(database, job, "state")[-1]["reason"] == "run.sh is empty"


def test_an_error_quoting_a_nul_is_stored_readable_on_every_database(
    database: Database, add_job: AddJob
) -> None:
    """An engine that writes NUL to its stderr: its task still ends FAILED, the NUL (which
    PostgreSQL cannot hold) replaced, line breaks kept."""
    job = add_job()
    quoted = "shieldhit exited with status 3: bad\x00byte\nnext line\x1b[0m"
    shown = "shieldhit exited with status 3: bad\ufffdbyte\nnext line\ufffd[0m"
    assert task_change(database, job, 0, T.FAILED, reason=quoted, error=quoted)
    with database.transaction(write=False) as session:
        row = repo.job_tasks(session, job)[0]
        assert (row.state, row.error) == ("FAILED", shown)
    assert events(database, job, "task_state")[-1]["reason"] == shown


def test_late_cancel_never_overwrites_completed(database: Database, add_job: AddJob) -> None:
    job = add_job()
    walk_to(database, job, *TO_MERGING, J.COMPLETED)
    before = events(database, job)
    assert not job_change(database, job, J.CANCELED, error="cancelled by user", stage=JobStage.DONE)
    assert not job_change(database, job, J.FAILED, error="too late")
    with database.transaction(write=False) as session:
        row = repo.find_job(session, job)
        assert row is not None
        assert (row.state, row.error) == ("COMPLETED", None)  # a lost change writes nothing
    assert events(database, job) == before


@pytest.mark.parametrize("late", [J.COMPLETED, J.FAILED, J.RUNNING, J.MERGING_QUEUED, J.PENDING])
def test_late_completion_never_overwrites_canceled(
    database: Database, add_job: AddJob, late: JobState
) -> None:
    job = add_job()
    walk_to(database, job, *TO_MERGING, J.CANCELED)
    before = events(database, job)
    assert not job_change(database, job, late)
    assert job_state(database, job) == "CANCELED"
    assert events(database, job) == before


def test_a_step_the_table_does_not_allow_is_refused(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert not job_change(database, job, J.MERGING_RUNNING)  # a merge is queued first
    assert not job_change(database, job, J.UNKNOWN)
    assert job_state(database, job) == "PENDING"
    assert events(database, job) == []


def test_unknown_job_is_refused(database: Database) -> None:
    assert not job_change(database, "0" * 32, J.CANCELED)


def test_only_the_named_job_moves(database: Database, add_job: AddJob) -> None:
    first, second = add_job(), add_job()
    assert job_change(database, first, J.CANCELED)
    assert job_state(database, second) == "PENDING"
    assert events(database, second) == []


@pytest.mark.parametrize("seed", range(3))
def test_random_changes_follow_the_table_with_one_event_per_win(
    database: Database, add_job: AddJob, seed: int
) -> None:
    rng = random.Random(seed)
    job = add_job(state=J.UNKNOWN)
    current, wins = J.UNKNOWN, 0
    for _ in range(25):
        target = rng.choice(list(JobState))
        allowed = target in JOB_TRANSITIONS[current]
        assert job_change(database, job, target) == allowed, (current, target)
        if allowed:
            current, wins = target, wins + 1
        assert job_state(database, job) == current.value
    states = [e["state"] for e in events(database, job, "state")]
    assert len(states) == wins
    assert len(events(database, job)) == wins


def race(db: Database, job_id: str, targets: tuple[JobState, ...]) -> list[bool]:
    """Several writers, each in its own transaction, released at the same instant."""
    barrier = threading.Barrier(len(targets))
    results: list[bool | None] = [None] * len(targets)
    errors: list[BaseException] = []

    def write(slot: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[slot] = job_change(db, job_id, targets[slot])
        except BaseException as exc:  # reported below, never lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return [bool(r) for r in results]


@pytest.mark.parametrize(
    "targets", [(J.CANCELED, J.COMPLETED), (J.COMPLETED, J.CANCELED), (J.CANCELED, J.CANCELED)]
)
def test_two_concurrent_writers_cannot_both_win(
    database: Database, add_job: AddJob, targets: tuple[JobState, JobState]
) -> None:
    for _ in range(5):
        job = add_job()
        walk_to(database, job, *TO_MERGING)
        won = race(database, job, targets)
        assert sorted(won) == [False, True]
        winner = targets[won.index(True)]
        assert job_state(database, job) == winner.value
        final = [
            e for e in events(database, job, "state") if e["state"] in ("CANCELED", "COMPLETED")
        ]
        assert final == [{"kind": "state", "task_index": None, "state": winner.value}]


# --- stages ---------------------------------------------------------------------------------

S = JobStage


def stage_change(db: Database, job_id: str, target: JobStage, **kw: Any) -> bool:
    with db.transaction() as session:
        return change_job_stage(session, job_id, target, **kw)


def job_row(db: Database, job_id: str) -> JobRow:
    with db.transaction(write=False) as session:
        row = repo.find_job(session, job_id)
        assert row is not None
        return row


def test_a_stage_change_wins_once_with_its_event(database: Database, add_job: AddJob) -> None:
    job = add_job()
    now = utcnow()
    assert stage_change(database, job, S.PREPARING, admitted_at=now)
    assert not stage_change(database, job, S.PREPARING, admitted_at=utcnow())
    row = job_row(database, job)
    assert (row.state, row.stage) == ("PENDING", "preparing")
    assert row.admitted_at is not None
    assert abs((row.admitted_at - now).total_seconds()) < 1
    assert events(database, job) == [{"kind": "stage", "task_index": None, "stage": "preparing"}]


def test_a_stage_follows_its_table(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert not stage_change(database, job, S.SUBMITTED)  # not prepared yet
    assert stage_change(database, job, S.PREPARING)
    assert stage_change(database, job, S.SUBMITTED)
    assert not stage_change(database, job, S.PREPARING)  # never back
    assert job_row(database, job).stage == "submitted"
    assert [e["stage"] for e in events(database, job)] == ["preparing", "submitted"]


def test_the_stage_of_an_ended_job_never_moves(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert job_change(database, job, J.CANCELED)  # a state change without a stage
    before = events(database, job)
    assert not stage_change(database, job, S.PREPARING)
    assert job_row(database, job).stage == "queued"
    assert events(database, job) == before


def test_ending_a_job_moves_its_stage_to_done(database: Database, add_job: AddJob) -> None:
    job = add_job(stage=S.SUBMITTED)
    with database.transaction() as session:
        assert end_job(session, job, J.FAILED, error="boom", error_kind="exit")
    row = job_row(database, job)
    assert (row.state, row.stage, row.error) == ("FAILED", "done", "boom")
    assert row.ended_at is not None
    assert events(database, job) == [
        {"kind": "state", "task_index": None, "state": "FAILED", "stage": "done", "reason": "boom"}
    ]


def test_a_state_change_moves_the_stage_only_along_its_table(
    database: Database, add_job: AddJob
) -> None:
    job = add_job(state=J.UNKNOWN)  # an imported record: any state may follow
    assert job_change(database, job, J.MERGING_RUNNING, stage=S.MERGING)
    row = job_row(database, job)
    assert (row.state, row.stage) == ("MERGING_RUNNING", "queued")  # QUEUED -> MERGING refused
    assert events(database, job) == [
        {"kind": "state", "task_index": None, "state": "MERGING_RUNNING"}
    ]
    assert job_change(database, job, J.MERGING_QUEUED, stage=S.MERGING_QUEUED)
    assert job_row(database, job).stage == "merging_queued"
    assert events(database, job)[-1]["stage"] == "merging_queued"


# --- tasks ----------------------------------------------------------------------------------


def task_row(db: Database, job_id: str, index: int) -> TaskRow:
    with db.transaction(write=False) as session:
        row = repo.find_task(session, job_id, index)
        assert row is not None
        return row


def test_task_change_wins_once_and_appends_one_event(database: Database, add_job: AddJob) -> None:
    job = add_job(ntasks=2)
    assert task_change(database, job, 1, T.RUNNING, attempt=1, lease_owner="me")
    assert not task_change(database, job, 1, T.RUNNING, attempt=2, lease_owner="you")
    row = task_row(database, job, 1)
    assert (row.state, row.attempt, row.lease_owner) == ("RUNNING", 1, "me")
    assert task_row(database, job, 0).state == "PENDING"
    assert events(database, job) == [{"kind": "task_state", "task_index": 1, "state": "RUNNING"}]


def test_task_change_honours_only_if(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert task_change(database, job, 0, T.RUNNING, attempt=1, lease_owner="worker-a")
    # a worker whose lease was taken over cannot complete the task
    assert not task_change(
        database, job, 0, T.COMPLETED, only_if=(TaskRow.lease_owner == "worker-b",), exit_code=0
    )
    row = task_row(database, job, 0)
    assert (row.state, row.exit_code) == ("RUNNING", None)
    assert len(events(database, job)) == 1
    assert task_change(
        database,
        job,
        0,
        T.COMPLETED,
        only_if=(TaskRow.lease_owner == "worker-a", TaskRow.attempt == 1),
        reason="exit 0",
        exit_code=0,
    )
    row = task_row(database, job, 0)
    assert (row.state, row.exit_code) == ("COMPLETED", 0)
    assert events(database, job)[-1] == {
        "kind": "task_state",
        "task_index": 0,
        "state": "COMPLETED",
        "reason": "exit 0",
    }


def test_finished_task_cannot_move(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert task_change(database, job, 0, T.RUNNING)
    assert task_change(database, job, 0, T.COMPLETED)
    for target in TaskState:
        assert not task_change(database, job, 0, target)
    assert task_row(database, job, 0).state == "COMPLETED"
    assert len(events(database, job)) == 2


def test_expired_lease_requeues_a_running_task(database: Database, add_job: AddJob) -> None:
    job = add_job()
    assert task_change(database, job, 0, T.RUNNING, attempt=1)
    assert task_change(database, job, 0, T.PENDING, reason="lease expired", lease_owner=None)
    assert task_change(database, job, 0, T.RUNNING, attempt=2)
    assert task_row(database, job, 0).attempt == 2
    assert [e["state"] for e in events(database, job)] == ["RUNNING", "PENDING", "RUNNING"]


def test_random_task_changes_follow_the_table(database: Database, add_job: AddJob) -> None:
    rng = random.Random(7)
    job = add_job()
    current, wins = T.PENDING, 0
    for _ in range(20):
        target = rng.choice(list(TaskState))
        allowed = target in TASK_TRANSITIONS[current]
        assert task_change(database, job, 0, target) == allowed, (current, target)
        if allowed:
            current, wins = target, wins + 1
    assert task_row(database, job, 0).state == current.value
    assert len(events(database, job)) == wins
