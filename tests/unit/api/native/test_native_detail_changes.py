"""A job of many tasks asked for again and again: each detail shows what its tasks say at
that moment, whichever writer changed them (a state change, a worker's report that emits no
event, a task's own progress), and answers the same as a server that never answered before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from cyclotron.api.app import create_app
from cyclotron.domain.records import ANONYMOUS_ADMIN
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.running.reports import update_tasks
from cyclotron.storage.tables import TaskRow, utcnow
from cyclotron.storage.transitions import change_task_state

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
NTASKS = 150


class Client:
    """The app in this process, asked over ASGI."""

    def __init__(self, core: Core) -> None:
        transport = httpx.ASGITransport(app=create_app(core, run_background=False))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.loop = asyncio.new_event_loop()

    def detail(self, job_id: str) -> dict[str, Any]:
        answer = self.loop.run_until_complete(self.http.get(f"/api/jobs/{job_id}"))
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        return body

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def client(core: Core) -> Iterator[Client]:
    app_client = Client(core)
    yield app_client
    app_client.close()


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
    other = Client(core)
    try:
        return other.detail(job_id)
    finally:
        other.close()


def test_a_workers_report_shows_at_once(core: Core, client: Client, job_id: str) -> None:
    before = client.detail(job_id)
    assert client.detail(job_id) == before
    assert before["tasks"][5]["simulated_primaries"] == 0.0
    job = get_job(core, ANONYMOUS_ADMIN, JobRef(job_id=job_id))
    outcome, _ = update_tasks(core, job, [(6, {"simulated_primaries": 40, "estimated_time": 30})])
    assert outcome.applied == 1
    after = client.detail(job_id)
    task = after["tasks"][5]
    assert (task["simulated_primaries"], task["percent"], task["eta_seconds"]) == (40.0, 40.0, 30.0)
    assert after["percent"] > before["percent"]
    assert after == fresh_detail(core, job_id)


def test_state_changes_and_failures_show_at_once(core: Core, client: Client, job_id: str) -> None:
    client.detail(job_id)
    with core.db.transaction() as session:
        change_task_state(
            session, job_id, 7, TaskState.FAILED, ended_at=utcnow(), exit_code=3, error="boom"
        )
    after = client.detail(job_id)
    task = after["tasks"][7]
    assert (task["state"], task["exit_code"], task["error"]) == ("failed", 3, "boom")
    assert after["tasks_failed"] == 1
    assert client.detail(job_id) == after == fresh_detail(core, job_id)
