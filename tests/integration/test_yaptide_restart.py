"""A restarted server keeps what the YAPTIDE face handed out (yaptide.md §1.4, §4.1, §7).

Logins (their cookies, signed with persisted keys), update keys already given to workers, and
jobs the local executor was running when the server stopped all survive ``stop`` + ``start``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest
from support.databases import BACKENDS
from support.live import LiveServer
from support.yaptide import (
    BASE_CONFIG,
    FIXTURES,
    FIXTURES_ABSENT,
    TERMINAL,
    login,
    status,
    submit,
    update_key,
    wait_for,
    yaptide_server,
)

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=FIXTURES_ABSENT)

TASK_SECONDS = 8.0
SHIELDHIT = {**BASE_CONFIG["services"]["shieldhit"], "seconds": TASK_SECONDS}
CONFIG = {"services": {"shieldhit": SHIELDHIT}}


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp(f"restart-{request.param}")
    with yaptide_server(str(request.param), workdir, CONFIG) as live:
        yield live


def restart(server: LiveServer) -> None:
    server.stop()
    server.start()


def test_cookies_still_work_after_a_restart(server: LiveServer) -> None:
    with closing(login(server, "alice")) as alice:
        before = alice.get("/auth/status")
        assert before.status_code == 200, before.text
        restart(server)
        after = alice.get("/auth/status")
        assert after.status_code == 200, after.text
        assert after.json() == {"message": "User status", "username": "alice"}
        refreshed = alice.get("/auth/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["message"] == "User refreshed"
        assert alice.get("/auth/status").json()["username"] == "alice"


def test_an_update_key_handed_out_before_a_restart_still_validates(server: LiveServer) -> None:
    with closing(login(server, "alice")) as alice:
        job_id = submit(alice, ntasks=2, sim_type="reported")
        key = update_key(server, job_id)  # what the worker holds across the restart
        restart(server)
        report = {
            "simulation_id": job_id,
            "task_id": 2,
            "update_key": key,
            "update_dict": {"task_state": "RUNNING", "simulated_primaries": 700},
        }
        with server.client() as worker:
            answer = worker.post("/tasks", json=report)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"message": "Task updated"}
        current = status(alice, job_id)
        assert current["job_state"] == "RUNNING"
        first, second = current["job_tasks_status"]
        assert first["task_state"] == "PENDING"
        assert (second["task_state"], second["simulated_primaries"]) == ("RUNNING", 700)


def test_a_job_running_across_a_restart_still_completes(server: LiveServer) -> None:
    with closing(login(server, "alice")) as alice:
        job_id = submit(alice, ntasks=2)
        wait_for(
            alice,
            job_id,
            lambda s: any(t["task_state"] == "RUNNING" for t in s["job_tasks_status"]),
            timeout=60,
        )
        restart(server)
        # Each task needs TASK_SECONDS from its start: the restart came in the middle of them.
        assert status(alice, job_id)["job_state"] not in TERMINAL
        final = wait_for(alice, job_id, timeout=120)
        assert final["job_state"] == "COMPLETED", final
        for task in final["job_tasks_status"]:
            assert task["task_state"] == "COMPLETED"
            assert task["simulated_primaries"] == task["requested_primaries"]
        results = alice.get("/results", params={"job_id": job_id})
        assert results.status_code == 200, results.text
        assert [e["name"] for e in results.json()["estimators"]][:1] == ["z_profile"]
