"""Two server processes on one PostgreSQL database share the queue without running a task twice
(tasks are claimed with SKIP LOCKED under a lease)."""

from __future__ import annotations

import collections
import time
from pathlib import Path

from support.databases import postgres_database
from support.live import LiveServer

JOBS = 200


def test_two_servers_never_run_a_task_twice(tmp_path: Path) -> None:
    runs_log = tmp_path / "runs.log"
    config = {
        "services": {"example": {"plugin": "script", "max_runs": 50, "runs_per_user": 50}},
        "executors": {"local": {"max_parallel": 4}},
        # Tasks write to one log outside their directories and name their host parent: bare.
        "sandbox": {"mode": "none"},
    }
    # $PPID is the server process that ran the task.
    script = f'echo "$CYCLOTRON_JOB_ID $PPID" >> {runs_log}\nsleep 0.05\n'.encode()
    with postgres_database() as url:
        first_dir, second_dir = tmp_path / "a", tmp_path / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        first = LiveServer(first_dir, url, config).start()
        # The same data directory: both run tasks on this machine.
        second = LiveServer(
            second_dir, url, {**config, "server": {"data_dir": str(first.data_dir)}}
        )
        second.start()
        try:
            numbers = []
            with first.client() as a, second.client() as b:
                for i in range(JOBS):
                    client = a if i % 2 else b
                    response = client.post(
                        "/upload",
                        data={"user_id": str(i % 7), "service": "example"},
                        files={"file": ("run.sh", script)},
                    )
                    assert response.status_code == 201, response.text
                    numbers.append(response.json()["id"])
                deadline = time.monotonic() + 180
                while True:
                    listing = a.get(
                        "/api/jobs", params={"page_size": 100, "status": "pending,running"}
                    )
                    if listing.json()["total"] == 0:
                        break
                    assert time.monotonic() < deadline, listing.json()["total"]
                    time.sleep(0.2)
                completed = a.get("/api/jobs", params={"status": "completed"}).json()["total"]
                ids = {a.get(f"/api/jobs/{n}").json()["id"] for n in numbers}
        finally:
            second.stop()
            first.stop()
    assert completed == JOBS
    runs = [line.split() for line in runs_log.read_text().splitlines()]
    per_job = collections.Counter(job for job, _ in runs)
    assert set(per_job) == ids
    assert max(per_job.values()) == 1, [j for j, n in per_job.items() if n > 1][:5]
    servers = {str(first.process.pid), str(second.process.pid)}  # type: ignore[union-attr]
    ran_by = collections.Counter(server for _, server in runs)
    assert set(ran_by) == servers, ran_by  # both servers took a share of the queue
