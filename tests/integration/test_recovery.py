"""A server killed with SIGKILL loses nothing: interrupted tasks run again or fail with a reason."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
from support.upload import status_of, submit, wait_until, zip_members

SLOW = "echo $$ > pid.txt\nsleep 2\necho finished > out.txt\n"
# These cases follow a task's host pid: tasks run bare here (in a sandbox $$ is the pid within
# its own namespace); test_sandbox_escape.py shows no process of a sandboxed task survives.
BARE = {"sandbox": {"mode": "none"}}


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0] != "Z"


def _wait_for_file(client: httpx.Client, job: int, name: str) -> bytes:
    deadline = time.monotonic() + 20
    while True:
        members = zip_members(client.get(f"/download_partial/{job}"))
        if name in members and members[name].strip():
            return members[name]
        assert time.monotonic() < deadline, f"{name} never appeared"
        time.sleep(0.05)


def test_kill_9_while_running_then_restart_completes_everything(start_server: Any) -> None:
    live = start_server(
        {**BARE, "services": {"example": {"plugin": "script", "max_runs": 1, "runs_per_user": 1}}}
    )
    with live.client() as client:
        running = submit(client, SLOW)
        queued = submit(client, "echo later > out.txt\n")
        wait_until(client, running, lambda b: b["status"] == "Running")
        first_pid = int(_wait_for_file(client, running, "pid.txt"))
        assert status_of(client, queued)["status"] == "Queued"
    live.kill()
    live.start()
    with live.client() as client:
        assert wait_until(client, running, timeout=60)["status"] == "Completed"
        assert wait_until(client, queued, timeout=60)["status"] == "Completed"
        assert zip_members(client.get(f"/download/{running}"))["out.txt"] == b"finished\n"
        assert zip_members(client.get(f"/download/{queued}"))["out.txt"] == b"later\n"
    # The first attempt's process did not survive alongside the second one.
    assert not _pid_running(first_pid)


def test_kill_9_with_no_attempt_left_fails_with_a_reason(start_server: Any) -> None:
    live = start_server({"dispatch": {"max_attempts": 1}})
    with live.client() as client:
        job = submit(client, SLOW)
        wait_until(client, job, lambda b: b["status"] == "Running")
        _wait_for_file(client, job, "pid.txt")
    live.kill()
    live.start()
    with live.client() as client:
        body = wait_until(client, job, timeout=60)
    assert body["status"] == "Failed"
    assert "lost" in str(body["message"]) and "attempt 1 of 1" in str(body["message"])


def test_time_limit_ends_a_task_with_a_reason(start_server: Any) -> None:
    """A service's time_limit fails a task that runs longer, with the limit in the message."""
    live = start_server(
        {
            "dispatch": {"lease_seconds": 1.5},
            "services": {"example": {"plugin": "script", "time_limit": 4}},
        }
    )
    with live.client() as client:
        job = submit(client, "sleep 30\n")
        body = wait_until(client, job, timeout=60)
    assert body["status"] == "Failed"
    assert "time limit of 4 s exceeded" in str(body["message"])


def test_graceful_stop_requeues_running_tasks_without_using_an_attempt(start_server: Any) -> None:
    live = start_server({**BARE, "dispatch": {"max_attempts": 1}})
    with live.client() as client:
        job = submit(client, "[ -e marker ] && echo leftover > seen.txt\ntouch marker\n" + SLOW)
        wait_until(client, job, lambda b: b["status"] == "Running")
        first_pid = int(_wait_for_file(client, job, "pid.txt"))
    live.stop()  # SIGTERM: the running task is stopped and put back in the queue
    assert not _pid_running(first_pid)
    live.start()
    with live.client() as client:
        assert wait_until(client, job, timeout=60)["status"] == "Completed"
        [task] = client.get(f"/api/jobs/{job}").json()["tasks"]
        members = zip_members(client.get(f"/download/{job}"))
    assert task["attempt"] == 1  # with max_attempts 1, a counted interruption would have failed it
    assert "seen.txt" not in members, "the second run started in the first run's leftovers"
    assert members["out.txt"] == b"finished\n"
