"""A job of many tasks asked for again and again: each detail shows what its tasks say at
that moment, whichever writer changed them (a state change, a worker's report that emits no
event, a task's own progress), and answers the same as a server that never answered before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import update
from support.inprocess import AppClient, app_client

from cyclotron.domain.records import ANONYMOUS_ADMIN
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.running.reports import update_tasks
from cyclotron.storage.tables import TaskRow, utcnow
from cyclotron.storage.transitions import change_task_state

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
NTASKS = 150


def detail(client: AppClient, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/jobs/{job_id}")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def client(core: Core) -> Iterator[AppClient]:
    with app_client(core) as client:
        yield client


@pytest.fixture
def job_id(core: Core, add_job: AddJob) -> str:
    """A running job of 150 running tasks of 100 primaries each, none counted yet."""
    job_id = add_job(state=JobState.RUNNING, stage=JobStage.RUNNING, ntasks=NTASKS)
    with core.db.transaction() as session:
        session.execute(
            update(TaskRow)
            .where(TaskRow.job_id == job_id)
            .values(
                state=TaskState.RUNNING.value,
                requested_primaries=100,
                started_at=utcnow(),
                last_update_at=utcnow(),
            )
        )
    return job_id


def fresh_detail(core: Core, job_id: str) -> dict[str, Any]:
    with app_client(core) as other:
        return detail(other, job_id)


def test_a_workers_report_shows_at_once(core: Core, client: AppClient, job_id: str) -> None:
    before = detail(client, job_id)
    assert detail(client, job_id) == before
    assert before["tasks"][5]["simulated_primaries"] == 0.0
    job = get_job(core, ANONYMOUS_ADMIN, JobRef(job_id=job_id))
    outcome, _ = update_tasks(core, job, [(6, {"simulated_primaries": 40, "estimated_time": 30})])
    assert outcome.applied == 1
    after = detail(client, job_id)
    task = after["tasks"][5]
    assert (task["simulated_primaries"], task["percent"], task["eta_seconds"]) == (40.0, 40.0, 30.0)
    assert after["percent"] > before["percent"]
    assert after == fresh_detail(core, job_id)


def test_state_changes_and_failures_show_at_once(
    core: Core, client: AppClient, job_id: str
) -> None:
    detail(client, job_id)
    with core.db.transaction() as session:
        change_task_state(
            session, job_id, 7, TaskState.FAILED, ended_at=utcnow(), exit_code=3, error="boom"
        )
    after = detail(client, job_id)
    task = after["tasks"][7]
    assert (task["state"], task["exit_code"], task["error"]) == ("failed", 3, "boom")
    assert after["tasks_failed"] == 1
    assert detail(client, job_id) == after == fresh_detail(core, job_id)
