"""Client helpers for the YAPTIDE face (spec/yaptide.md), for tests and benchmarks alike.

A server made by ``yaptide_server`` runs the SHIELD-HIT12A test double
(``support.shieldhit_double``) as its ``shieldhit`` service, which converts the fixture
projects and replays their real results; ``failing`` and ``flaky`` are the same double with
failing tasks, and ``reported`` runs its tasks nowhere: workers report them through the worker
routes.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cyclotron.services.yaptide.simulations import update_key_for
from cyclotron.signing import SigningKeys
from support.live import LiveServer, serving

TESTS_DIR = Path(__file__).resolve().parents[1]
FIXTURES = TESTS_DIR.parent.parent / "shared" / "fixtures" / "yaptide"
FIXTURES_ABSENT = f"the shared YAPTIDE fixtures are absent ({FIXTURES})"
PASSWORD = "s3cret-pass"
UI_ORIGIN = "http://127.0.0.1:3000"  # an origin the server allows by default (§1.9)
JOB_ID = (
    r"^\d{8}-\d{6}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"(DIRECT|BATCH)$"
)
TERMINAL = {"COMPLETED", "FAILED", "CANCELED"}
NOT_FOUND = "Job with provided ID does not exist"
NOT_YOURS = "Job with provided ID does not belong to the user"
NO_CLUSTER_ACCESS = "Your account has no access to HPC clusters"

DOUBLE = "support.shieldhit_double:ShieldhitTestDouble"
BASE_CONFIG: dict[str, Any] = {
    "server": {"root_message": "Hello World!"},
    "dispatch": {"interval": 0.2},
    "executors": {"local": {"max_parallel": 4}},
    "services": {
        "shieldhit": {"plugin": DOUBLE, "seconds": 1.0, "max_runs": 4, "runs_per_user": 4},
        "failing": {"plugin": DOUBLE, "seconds": 0.5, "fail_tasks": "all"},
        "flaky": {"plugin": DOUBLE, "seconds": 0.5, "fail_tasks": [2], "runs_per_user": 4},
        "reported": {"plugin": DOUBLE, "executor": "external"},
    },
}


def fixture_body(name: str = "captured_post_jobs_direct_from_ex1.json", **changes: Any) -> dict:
    """A captured UI request body (``fixtures/yaptide``), with keys changed or added."""
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    body.update(copy.deepcopy(changes))
    return body


def merged_config(extra: dict[str, Any]) -> dict[str, Any]:
    """BASE_CONFIG with ``extra``'s tables merged one level deep (services replace by name)."""
    config = copy.deepcopy(BASE_CONFIG)
    for section, values in extra.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    return config


@contextmanager
def yaptide_server(
    backend: str,
    workdir: Path,
    extra: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """A started server configured by BASE_CONFIG and ``extra``, on a fresh ``backend`` database."""
    config = merged_config(extra or {})
    environment = {"PYTHONPATH": str(TESTS_DIR), **(env or {})}
    with serving(backend, workdir, config, environment) as live:
        yield live


def login(server: LiveServer, username: str, password: str = PASSWORD) -> httpx.Client:
    """A client holding ``username``'s cookies (registering the user first if needed)."""
    client = server.client()
    client.put("/auth/register", json={"username": username, "password": password})
    answer = client.post("/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 202, answer.text
    return client


def submit(client: httpx.Client, ntasks: int = 3, **changes: Any) -> str:
    """Submit the captured ex1 editor body; the new job's id."""
    answer = client.post("/jobs/direct", json=fixture_body(ntasks=ntasks, **changes))
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get("/jobs/direct", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_for(
    client: httpx.Client,
    job_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda s: s["job_state"] in TERMINAL,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Poll the job's status until ``done`` holds (default: the job ended)."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(client, job_id)
        if done(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not get there in {timeout} s: {current}")
        time.sleep(0.2)


def update_key(server: LiveServer, job_id: str) -> str:
    """The job's update key, as the server hands it to the job's workers."""
    return update_key_for(SigningKeys.in_directory(server.data_dir), job_id)


def assert_error(answer: httpx.Response, status_code: int) -> dict[str, Any]:
    """The answer is the face's error envelope with this status; its body."""
    assert answer.status_code == status_code, answer.text
    body: dict[str, Any] = answer.json()
    assert isinstance(body.get("message"), str) and body["message"]
    assert body["status_code"] == status_code
    return body


def assert_cors(answer: httpx.Response, origin: str = UI_ORIGIN) -> None:
    """The answer carries the CORS headers of an allowed origin (yaptide.md §1.9)."""
    assert answer.headers.get("access-control-allow-origin") == origin
    assert answer.headers.get("access-control-allow-credentials") == "true"
    assert "origin" in answer.headers.get("vary", "").lower()


def run_to_end(client: httpx.Client, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Submit ``body`` through POST /jobs/direct and poll to the end: the id, every status seen."""
    answer = client.post("/jobs/direct", json=body)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    seen: list[dict[str, Any]] = []

    def record(status: dict[str, Any]) -> bool:
        seen.append(status)
        return status["job_state"] in TERMINAL

    wait_for(client, job_id, record)
    return job_id, seen


def saw_progress(seen: list[dict[str, Any]]) -> bool:
    """Whether some poll saw a running task part-way through its primaries."""
    return any(
        t["task_state"] == "RUNNING" and 0 < t["simulated_primaries"] < t["requested_primaries"]
        for status in seen
        for t in status["job_tasks_status"]
    )
