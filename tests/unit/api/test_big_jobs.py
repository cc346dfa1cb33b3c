"""A job of 1,000 tasks, as its owner sees it on each face: the native detail lists every task,
the YAPTIDE status every task, and each list's summary of the job says what its tasks say."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from support.inprocess import AppClient, app_client

from cyclotron.api.native.schemas import JobDetailPublic, JobsPublic
from cyclotron.domain.records import account_owner
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.core import Core
from cyclotron.storage.tables import JobRow, TaskRow, utcnow

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
NTASKS = 1000
PASSWORD = "big-jobs-password"


@pytest.fixture
def client(core: Core) -> Iterator[AppClient]:
    with app_client(core) as client:
        yield client


@pytest.fixture
def big_job(core: Core, add_job: AddJob, client: AppClient) -> str:
    """A running YAPTIDE simulation of 1,000 tasks of the account ``alice``: 600 completed,
    390 running at various points, 10 failed."""
    who = {"username": "alice", "password": PASSWORD}
    assert client.request("PUT", "/auth/register", json=who).status_code == 201
    assert client.request("POST", "/auth/login", json=who).status_code == 202
    job_id = add_job(
        owner_id=account_owner(1),
        state=JobState.RUNNING,
        stage=JobStage.RUNNING,
        ntasks=NTASKS,
    )
    now = utcnow()
    with core.db.transaction() as session:
        session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(yaptide_id="20260101-000000-big", attrs={"title": "big"})
        )
        for state, first, last in (
            (TaskState.COMPLETED, 0, 600),
            (TaskState.RUNNING, 600, 990),
            (TaskState.FAILED, 990, NTASKS),
        ):
            running = state == TaskState.RUNNING
            session.execute(
                update(TaskRow)
                .where(TaskRow.job_id == job_id, TaskRow.index >= first, TaskRow.index < last)
                .values(
                    state=state.value,
                    seed=TaskRow.index + 10_000,
                    requested_primaries=100,
                    progress_done=TaskRow.index % 100,
                    progress_total=100.0,
                    started_at=now - timedelta(seconds=first),
                    ended_at=None if running else now,
                    last_update_at=now,
                )
            )
    return job_id


def test_native_detail_lists_every_task(client: AppClient, big_job: str) -> None:
    answer = client.get(f"/api/jobs/{big_job}")
    assert answer.status_code == 200
    detail = answer.json()
    JobDetailPublic.model_validate(detail)  # the body is the documented schema
    assert [t["index"] for t in detail["tasks"]] == list(range(NTASKS))
    assert detail["seeds"] == [10_000 + i for i in range(NTASKS)]
    states = [t["state"] for t in detail["tasks"]]
    assert (states.count("completed"), states.count("running"), states.count("failed")) == (
        600,
        390,
        10,
    )
    assert detail["tasks"][650]["percent"] == 50.0
    assert detail["tasks"][650]["requested_primaries"] == 100.0
    assert detail["tasks_done"] == 600 and detail["tasks_failed"] == 10
    assert all(t["started_at"].endswith("Z") for t in detail["tasks"])


def test_yaptide_status_is_complete(client: AppClient, big_job: str) -> None:
    answer = client.get("/jobs/direct", params={"job_id": "20260101-000000-big"})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"message", "job_state", "job_tasks_status"}
    tasks = body["job_tasks_status"]
    assert [t["task_id"] for t in tasks] == list(range(1, NTASKS + 1))
    assert [t["task_state"] for t in tasks].count("RUNNING") == 390
    assert all(t["last_update_time"].endswith(" GMT") for t in tasks)
    assert all("end_time" in t for t in tasks[:600]) and "end_time" not in tasks[700]


def test_lists_summarise_what_the_tasks_say(client: AppClient, big_job: str) -> None:
    """The list shows the same progress and counts as the detail, read without the tasks."""
    detail = client.get(f"/api/jobs/{big_job}").json()
    listed = client.get("/api/jobs").json()
    JobsPublic.model_validate(listed)
    (item,) = [job for job in listed["jobs"] if job["id"] == big_job]
    fields = ("percent", "stage", "tasks_done", "tasks_failed", "status", "error")
    assert {k: item[k] for k in fields} == {k: detail[k] for k in fields}
    simulations = client.get("/user/simulations").json()
    (simulation,) = simulations["simulations"]
    progress: dict[str, Any] = simulation["progress"]
    assert progress["tasks_total"] == NTASKS
    assert (progress["tasks_completed"], progress["tasks_running"]) == (600, 390)
    assert progress["requested_primaries"] == 100 * NTASKS
    status = client.get("/jobs/direct", params={"job_id": "20260101-000000-big"}).json()
    tasks = status["job_tasks_status"]
    assert progress["simulated_primaries"] == sum(t["simulated_primaries"] for t in tasks)


def test_list_follows_its_tasks_and_its_job(core: Core, client: AppClient, big_job: str) -> None:
    """A job's list entry is kept between pages while nothing it shows changes: a task's
    progress, or the job's own state, shows on the next page."""

    def item() -> dict[str, Any]:
        jobs: list[dict[str, Any]] = client.get("/api/jobs").json()["jobs"]
        (found,) = [job for job in jobs if job["id"] == big_job]
        return found

    before = item()
    assert item() == before
    with core.db.transaction() as session:  # as a running task's report writes it
        session.execute(
            update(TaskRow)
            .where(TaskRow.job_id == big_job, TaskRow.index == 600)
            .values(progress_done=100.0, last_update_at=utcnow())
        )
    moved = item()
    assert moved["percent"] > before["percent"]
    assert moved["percent"] == client.get(f"/api/jobs/{big_job}").json()["percent"]
    with core.db.transaction() as session:
        session.execute(
            update(JobRow)
            .where(JobRow.id == big_job)
            .values(state=JobState.FAILED.value, error="stopped by a test")
        )
    failed = item()
    assert (failed["status"], failed["error_message"]) == ("failed", "stopped by a test")


def test_simulations_follow_their_tasks_and_their_job(
    core: Core, client: AppClient, big_job: str
) -> None:
    """The YAPTIDE list keeps each simulation's entry while nothing it shows changes: a task
    that completes, or the job's end, shows on the next poll."""

    def simulation() -> dict[str, Any]:
        (found,) = client.get("/user/simulations").json()["simulations"]
        assert isinstance(found, dict)
        return found

    before = simulation()
    assert simulation() == before
    with core.db.transaction() as session:
        session.execute(
            update(TaskRow)
            .where(TaskRow.job_id == big_job, TaskRow.index == 600)
            .values(state=TaskState.COMPLETED.value, last_update_at=utcnow())
        )
    progress = simulation()["progress"]
    assert (progress["tasks_completed"], progress["tasks_running"]) == (601, 389)
    assert "job_state" not in before
    with core.db.transaction() as session:
        session.execute(
            update(JobRow).where(JobRow.id == big_job).values(state=JobState.CANCELED.value)
        )
    assert simulation()["job_state"] == JobState.CANCELED.value
