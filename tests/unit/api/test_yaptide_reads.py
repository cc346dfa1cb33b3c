"""The YAPTIDE face's cheap reads stay right: a login seen a moment ago is refused at once after
logout, a worker's update shows in the very next status poll, and every time is written as an
HTTP-date however often it is asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from support.inprocess import AppClient, app_client

from cyclotron.api.yaptide.http import http_date
from cyclotron.domain.records import account_owner
from cyclotron.domain.states import JobStage, JobState
from cyclotron.services.core import Core
from cyclotron.services.yaptide.simulations import key_digest
from cyclotron.storage.tables import JobRow, TaskRow

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
SIMULATION = "20260101-000000-reads"
KEY = "k" * 64
WHO = {"username": "alice", "password": "cheap-reads-password"}


@pytest.fixture
def client(core: Core) -> Iterator[AppClient]:
    with app_client(core) as client:
        assert client.request("PUT", "/auth/register", json=WHO).status_code == 201
        assert client.request("POST", "/auth/login", json=WHO).status_code == 202
        yield client


def simulation(core: Core, add_job: AddJob, ntasks: int) -> str:
    """A pending simulation of ``alice`` (``SIMULATION``) of ``ntasks`` tasks of 500
    primaries, that a worker reports on with ``KEY``; its job id."""
    job_id = add_job(
        owner_id=account_owner(1), state=JobState.PENDING, stage=JobStage.SUBMITTED, ntasks=ntasks
    )
    with core.db.transaction() as session:
        session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(yaptide_id=SIMULATION, update_key_sha256=key_digest(KEY))
        )
        session.execute(
            update(TaskRow).where(TaskRow.job_id == job_id).values(requested_primaries=500)
        )
    return job_id


@pytest.fixture
def job(core: Core, add_job: AddJob, client: AppClient) -> str:
    """A pending 2-task simulation of ``alice`` that a worker reports on with ``KEY``."""
    simulation(core, add_job, 2)
    return SIMULATION


def status(client: AppClient, **kwargs: Any) -> httpx.Response:
    return client.request("GET", "/jobs/direct", params={"job_id": SIMULATION}, **kwargs)


def test_logout_refuses_a_login_just_seen(client: AppClient, job: str) -> None:
    access = client.http.cookies["access_token"]
    assert status(client).status_code == 200
    assert client.request("DELETE", "/auth/logout").status_code == 200
    assert "access_token" not in client.http.cookies
    again = status(client, headers={"Cookie": f"access_token={access}"})
    assert again.status_code == 401
    assert again.json()["status_code"] == 401


def test_a_worker_update_shows_in_the_next_poll(client: AppClient, job: str) -> None:
    before = status(client).json()
    assert before["job_state"] == "PENDING"
    assert before["job_tasks_status"][0]["simulated_primaries"] == 0
    for primaries in (10, 20):
        body = {
            "simulation_id": SIMULATION,
            "update_key": KEY,
            "task_id": 1,
            "update_dict": {"task_state": "RUNNING", "simulated_primaries": primaries},
        }
        assert client.request("POST", "/tasks", json=body).status_code == 202
        after = status(client).json()
        assert after["job_state"] == "RUNNING"
        first, second = after["job_tasks_status"]
        assert (first["task_state"], first["simulated_primaries"]) == ("RUNNING", primaries)
        assert "start_time" in first and "start_time" not in second


def test_a_task_change_shows_at_once_on_a_job_of_many_tasks(
    core: Core, add_job: AddJob, client: AppClient
) -> None:
    simulation(core, add_job, 120)

    def report(task_id: int, primaries: int) -> None:
        body = {
            "simulation_id": SIMULATION,
            "update_key": KEY,
            "task_id": task_id,
            "update_dict": {"task_state": "RUNNING", "simulated_primaries": primaries},
        }
        assert client.request("POST", "/tasks", json=body).status_code == 202

    def shown(task_id: int) -> tuple[str, str, int]:
        answer = status(client).json()
        task = answer["job_tasks_status"][task_id - 1]
        return answer["job_state"], task["task_state"], task["simulated_primaries"]

    assert shown(60) == ("PENDING", "PENDING", 0)
    report(1, 10)
    assert shown(60) == ("RUNNING", "PENDING", 0)
    assert shown(60) == ("RUNNING", "PENDING", 0)  # polled again, unchanged
    # The job's own fields stay as they were: only the task changed.
    report(60, 10)
    assert shown(60) == ("RUNNING", "RUNNING", 10)
    for primaries in (20, 30):
        report(60, primaries)
        assert shown(60) == ("RUNNING", "RUNNING", primaries)
        assert shown(1) == ("RUNNING", "RUNNING", 10)


def test_the_list_shows_progress_and_its_total_past_the_last_page(
    client: AppClient, job: str
) -> None:
    body = {
        "simulation_id": SIMULATION,
        "update_key": KEY,
        "task_id": 2,
        "update_dict": {"task_state": "RUNNING", "simulated_primaries": 250},
    }
    assert client.request("POST", "/tasks", json=body).status_code == 202
    for order_by in ("start_time", "end_time"):
        page = client.request("GET", "/user/simulations", params={"order_by": order_by}).json()
        assert (page["simulations_count"], page["page_count"]) == (1, 1)
        (item,) = page["simulations"]
        assert item["job_id"] == SIMULATION
        progress = item["progress"]
        assert (progress["requested_primaries"], progress["simulated_primaries"]) == (1000, 250)
        assert (progress["tasks_total"], progress["tasks_running"]) == (2, 1)
        past = client.request("GET", "/user/simulations", params={"page_idx": 3}).json()
        assert (past["simulations"], past["simulations_count"]) == ([], 1)


def test_a_wrong_key_is_refused_before_the_update_is_read(client: AppClient, job: str) -> None:
    body = {"simulation_id": SIMULATION, "update_key": "0" * 64, "task_id": 1, "update_dict": 5}
    assert client.request("POST", "/tasks", json=body).status_code == 403
    unknown = dict(body, simulation_id="no-such-simulation")
    answer = client.request("POST", "/tasks", json=unknown)
    assert answer.status_code == 404
    assert answer.json()["message"] == "Simulation does not exist"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 11, 19, 16, 24, 41, tzinfo=UTC),
        datetime(2024, 11, 19, 16, 24, 41, 999_999, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1999, 12, 31, 0, 0, 0, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_http_dates_are_written_alike_every_time(moment: datetime) -> None:
    expected = formatdate(moment.timestamp(), usegmt=True)
    assert http_date(moment) == expected
    assert http_date(moment) == expected  # once more, as a later poll asks
    assert http_date(moment.astimezone(UTC)) == expected
