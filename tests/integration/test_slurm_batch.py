"""YAPTIDE batch jobs on a real single-node SLURM, reached through a local sshd with key
authentication (spec/yaptide.md §6).

The server submits ex1 (``builtin``) as a task array plus a collect job over one SSH
connection; the tasks run as the cluster's user, report through the worker routes with the
job's update key, and the collect step merges them and sends the results. A cancelled job
leaves squeue; 100 clients polling GET /jobs/batch never make the server call squeue more
than once per cluster per poll interval.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live import LiveServer
from support.slurm import LocalCluster, start_local_cluster
from support.yaptide import FIXTURES, FIXTURES_ABSENT, PASSWORD, fixture_body

pytestmark = pytest.mark.slurm

POLL_INTERVAL = 2.0
PYTHON = Path(sys.executable)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_local_cluster(tmp_path_factory.mktemp("slurm"), python=PYTHON)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cluster: LocalCluster) -> Iterator[LiveServer]:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    workdir = tmp_path_factory.mktemp("server")
    config = {
        "executors": {"slurm": {"poll_interval": POLL_INTERVAL}},
        "services": {"builtin": {"plugin": "builtin"}},
    }
    live = LiveServer(workdir, f"sqlite:///{workdir / 'cyclotron.db'}", config).start()
    cli = [sys.executable, "-m", "cyclotron"]
    config_args = ["--config", str(live.config_path)]
    add = [
        *cli, "clusters", "add", "hpc", "--display-name", "Test cluster",
        "--host", cluster.ssh_host, "--port", str(cluster.ssh_port), "--user", cluster.username,
        "--key-path", str(cluster.key_path), "--known-hosts", str(cluster.known_hosts_path),
        "--work-dir", f"{cluster.home}/jobs-{uuid.uuid4().hex[:8]}", "--python", str(PYTHON),
        "--api-url", live.base_url, *config_args,
    ]  # fmt: skip
    subprocess.run(add, check=True, capture_output=True, env=live.env, cwd=workdir)
    user = [*cli, "users", "add", "alice", "--cluster-access", "--password-stdin", *config_args]
    subprocess.run(user, input=PASSWORD.encode(), check=True, capture_output=True, env=live.env)
    yield live
    live.stop()


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        answer = client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert answer.status_code == 202, answer.text
        yield client


def _submit(client: httpx.Client, **changes: Any) -> str:
    body = fixture_body(sim_type="builtin", ntasks=2, **changes)
    answer = client.post("/jobs/batch", json=body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["message"] == "Job waiting for submission"
    job_id: str = answer.json()["job_id"]
    assert job_id.endswith("BATCH")
    return job_id


def _status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get("/jobs/batch", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status


def _wait(client: httpx.Client, job_id: str, states: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := _status(client, job_id))["job_state"] not in states:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    return status


def _squeue_calls(server: LiveServer) -> float:
    text = httpx.get(f"{server.base_url}/metrics").text
    found = re.search(
        r'^cyclotron_cluster_commands_total\{cluster="hpc",program="squeue"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def _active_in_squeue(job_ids: list[str]) -> str:
    """What plain squeue (active jobs only) lists of these jobs on the cluster."""
    answer = subprocess.run(
        ["squeue", "--noheader", "--array", f"--jobs={','.join(job_ids)}", "--format=%i %T"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return answer.stdout.strip()


def test_a_batch_job_runs_to_completed_with_merged_results(
    server: LiveServer, alice: httpx.Client
) -> None:
    job_id = _submit(alice, batch_options={"cluster_name": "default", "array_options": {}})
    seen: set[str] = set()
    deadline = time.monotonic() + 300
    while (status := _status(alice, job_id))["job_state"] not in ("COMPLETED", "FAILED"):
        seen.add(status["job_state"])
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    logs = alice.get("/logfiles", params={"job_id": job_id}).json()
    assert status["job_state"] == "COMPLETED", (status, logs)
    assert [t["task_state"] for t in status["job_tasks_status"]] == ["COMPLETED"] * 2
    results = alice.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    estimators = results.json()["estimators"]
    names = [e["name"] for e in estimators]
    assert "z_profile" in names, names
    z_profile = estimators[names.index("z_profile")]
    assert z_profile["metadata"]["number_of_primaries"] == "10000"
    assert z_profile["metadata"]["file_counter"] == "2"
    dose = z_profile["pages"][0]["data"]["values"]
    assert max(dose) > 3 * dose[0] > 0  # a Bragg peak behind the entrance
    assert "submit.log" in str(logs)


def test_delete_cancels_the_job_on_the_cluster(server: LiveServer, alice: httpx.Client) -> None:
    project = fixture_body()["input_json"]
    project["beam"]["numberOfParticles"] = 50_000_000  # hours: it must be cancelled
    job_id = _submit(alice, input_json=project)
    _wait(alice, job_id, {"RUNNING"}, timeout=120)
    batch = _batch_ids(alice, job_id)
    assert _active_in_squeue(batch), "the job should be on the cluster"
    answer = alice.delete("/jobs/batch", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    assert answer.json()["job_state"] == "CANCELED"
    deadline = time.monotonic() + 60
    while listed := _active_in_squeue(batch):
        assert time.monotonic() < deadline, listed
        time.sleep(0.5)
    assert _status(alice, job_id)["job_state"] == "CANCELED"


def test_many_pollers_cost_one_squeue_per_interval(server: LiveServer, alice: httpx.Client) -> None:
    project = fixture_body()["input_json"]
    project["beam"]["numberOfParticles"] = 50_000_000
    job_id = _submit(alice, input_json=project)
    _wait(alice, job_id, {"RUNNING"}, timeout=120)
    cookies = dict(alice.cookies)
    errors: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=30) as client:
            while not stop.is_set():
                answer = client.get("/jobs/batch", params={"job_id": job_id})
                if answer.status_code != 200:
                    errors.append(answer.text)

    before, started = _squeue_calls(server), time.monotonic()
    pollers = [threading.Thread(target=poll) for _ in range(100)]
    for thread in pollers:
        thread.start()
    time.sleep(4 * POLL_INTERVAL)
    stop.set()
    for thread in pollers:
        thread.join(timeout=60)
    calls, elapsed = _squeue_calls(server) - before, time.monotonic() - started
    alice.delete("/jobs/batch", params={"job_id": job_id})
    assert errors == []
    assert 1 <= calls <= elapsed / POLL_INTERVAL + 1, (calls, elapsed)


def _batch_ids(client: httpx.Client, job_id: str) -> list[str]:
    """The array and collect job ids, as sbatch printed them in the job's submit log."""
    deadline = time.monotonic() + 60
    while True:
        logs = client.get("/logfiles", params={"job_id": job_id}).json().get("logfiles", {})
        text = next((str(v) for k, v in logs.items() if k.endswith("submit.log")), "")
        ids = re.findall(r"^(\d+)(?:;\S+)?$", text, re.M)
        if len(ids) == 2:
            return ids
        assert time.monotonic() < deadline, logs
        time.sleep(0.5)
