"""On PostgreSQL a job submitted to one server process wakes the dispatcher of another at
once (LISTEN/NOTIFY), instead of waiting for that one's periodic pass."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from support.databases import postgres_database
from support.live import LiveServer

# Far longer than the test may take: only a wake-up can start the second job in time.
INTERVAL = 600.0
WAIT = 30.0


def _upload(client: httpx.Client, script: bytes, user: int) -> int:
    response = client.post(
        "/upload",
        data={"user_id": str(user), "service": "example"},
        files={"file": ("run.sh", script)},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _wait_for(client: httpx.Client, number: int, wanted: set[str]) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        reply = client.get(f"/download/{number}")
        status = "Completed" if reply.headers["content-type"] == "application/zip" else None
        status = status or str(reply.json()["status"])
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_a_job_submitted_to_a_busy_server_is_started_by_an_idle_one(tmp_path: Path) -> None:
    config = {
        "services": {"example": {"plugin": "script", "max_runs": 10, "runs_per_user": 5}},
        "executors": {"local": {"max_parallel": 1}},
        "dispatch": {"interval": INTERVAL},
        "sandbox": {"mode": "none"},
    }
    with postgres_database() as url:
        busy_dir, idle_dir = tmp_path / "busy", tmp_path / "idle"
        busy_dir.mkdir()
        idle_dir.mkdir()
        busy = LiveServer(busy_dir, url, config).start()
        # The same data directory: both run tasks on this machine.
        idle = LiveServer(idle_dir, url, {**config, "server": {"data_dir": str(busy.data_dir)}})
        try:
            with busy.client() as client:
                # The busy server's one slot is taken before the idle one starts.
                long = _upload(client, b"sleep 300\n", user=1)
                assert _wait_for(client, long, {"Running"}) == "Running"
                idle.start()
                quick = _upload(client, b"echo hi > out.txt\n", user=2)
                assert _wait_for(client, quick, {"Completed", "Failed"}) == "Completed"
                assert _wait_for(client, long, {"Running"}) == "Running"
        finally:
            idle.stop()
            busy.stop()
