"""Celery workers over Redis, the server on PostgreSQL: a 20-task ``builtin`` job completes on
two ``cyclotron worker`` processes, and survives one of them being killed mid-task.

The killed worker's task is run again on the other worker (a new attempt), nothing it started
keeps running, and the merged dose equals an undisturbed run's within statistics.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from conformance.native.native_support import example_project
from support.databases import postgres_database
from support.live import LiveServer
from support.workers import Worker, broker, processes_of
from support.yaptide import FIXTURES, FIXTURES_ABSENT

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NTASKS = 20
PRIMARIES = 20 * 1500
DEADLINE = 240.0


def _submit(client: httpx.Client) -> str:
    body = {
        "name": "ex1 on workers",
        "service": "builtin",
        "ntasks": NTASKS,
        "input": {"kind": "editor", "project": example_project(), "primaries": PRIMARIES},
    }
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        detail: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if detail["status"] in ("completed", "failed", "cancelled"):
            return detail
        assert time.monotonic() < deadline, detail
        time.sleep(0.25)


def _depth_dose(client: httpx.Client, job_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    response = client.get(f"/api/jobs/{job_id}/results", params={"estimator": "z_profile"})
    assert response.status_code == 200, response.text
    estimator = response.json()["estimators"][0]
    return estimator["metadata"], estimator["pages"][0]


def _tasks(url: str, job_id: str) -> dict[int, tuple[str, int, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT index, state, attempt, worker_ref FROM tasks WHERE job_id = %s", (job_id,)
        ).fetchall()
    return {int(r[0]): (str(r[1]), int(r[2]), r[3]) for r in rows}


def _running_on(url: str, job_id: str, worker: str) -> tuple[int, int] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT index, attempt FROM tasks WHERE job_id = %s AND state = 'RUNNING' "
            "AND lease_owner = %s AND progress_done > 0 ORDER BY index LIMIT 1",
            (job_id, f"worker:{worker}"),
        ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def test_a_job_survives_a_worker_killed_in_the_middle_of_a_task(tmp_path: Path) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    config = {
        "dispatch": {"lease_seconds": 4},
        "executors": {"celery": {**broker(), "visibility_timeout": 30}},
        "services": {"builtin": {"plugin": "builtin", "executor": "celery", "max_ntasks": 50}},
    }
    with postgres_database() as url:
        server = LiveServer(tmp_path, url, config).start()
        first = Worker(tmp_path, server.config_path, "w1")
        second = Worker(tmp_path, server.config_path, "w2")
        workers = [first.start(), second.start()]
        try:
            with server.client() as client:
                disturbed = _submit(client)
                deadline = time.monotonic() + DEADLINE
                while (victim := _running_on(url, disturbed, "w1")) is None:
                    assert time.monotonic() < deadline, first.log()
                    time.sleep(0.05)
                first.kill()
                index, attempt = victim
                killed_key = f"{disturbed}/{index}/{attempt}"
                detail = _wait(client, disturbed)
                orphans = processes_of(killed_key)
                tasks = _tasks(url, disturbed)

                # An undisturbed run of the same job, on two live workers.
                workers.append(Worker(tmp_path, server.config_path, "w3").start())
                reference = _submit(client)
                undisturbed = _wait(client, reference)
                meta_a, page_a = _depth_dose(client, disturbed)
                meta_b, page_b = _depth_dose(client, reference)
                seen = client.get("/api/system/status").json()["workers"]
        finally:
            for worker in workers:
                worker.stop()
            server.stop()

    assert detail["status"] == "completed", detail
    assert detail["tasks_done"] == NTASKS and detail["tasks_failed"] == 0
    assert orphans == [], f"the killed worker's task still runs as {orphans}"
    # The killed attempt ran again, on the other worker; no other task ran twice.
    state, attempts, worker = tasks[index]
    assert (state, worker) == ("COMPLETED", "celery:w2") and attempts == attempt + 1, tasks[index]
    assert all(t[1] == 1 for i, t in tasks.items() if i != index), tasks
    assert undisturbed["status"] == "completed", undisturbed
    # The workers whose tasks ended in the last ten minutes are listed (w1's only task was
    # taken over by w2, which now holds its record).
    assert {"w2", "w3"} <= {w["id"] for w in seen} <= {"w1", "w2", "w3"}, seen
    assert all(w["executor"] == "celery" and w["running_tasks"] == 0 for w in seen), seen

    for meta in (meta_a, meta_b):
        assert meta["number_of_primaries"] == str(PRIMARIES), meta
        assert meta["file_counter"] == str(NTASKS), meta
    a, b = np.asarray(page_a["data"]["values"]), np.asarray(page_b["data"]["values"])
    err = np.hypot(np.asarray(page_a["error"]["values"]), np.asarray(page_b["error"]["values"]))
    filled = err > 0
    assert filled.sum() > 100
    pulls = (a - b)[filled] / err[filled]
    assert np.mean(np.abs(pulls) < 3) > 0.99, pulls
    assert a.sum() == pytest.approx(b.sum(), rel=0.01)
