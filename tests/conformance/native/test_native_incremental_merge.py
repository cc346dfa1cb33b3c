"""spec/results.md §6: the merge runs incrementally as tasks finish (running sums folded as each
task completes); the job's results, and the partial results of a running job, must agree with a
full merge of the same completed tasks' outputs (to 1e-12 relative here; the running job on
both backends).

The time the last step takes is measured by bench/engines.py, not asserted here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from native_support import ENV, create, example_project, poll
from support.live import LiveServer, serving

from cyclotron.estimators.store import merge_task_files

# One task at a time, so that a running job has completed tasks for a while between them.
CONFIG = {
    "services": {"builtin": {"plugin": "builtin"}},
    "executors": {"local": {"max_parallel": 1}},
}
TASKS = 100
PRIMARIES_PER_TASK = 10


def _close(a: Any, b: Any, where: str = "") -> None:
    """Equal JSON objects, numbers to 1e-12 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-300), where
    else:
        assert a == b, where


def _job_dir(server: LiveServer, job_id: str) -> Path:
    [found] = [p for p in server.data_dir.rglob(job_id) if (p / "tasks").is_dir()]
    return found


def _completed(detail: dict[str, Any]) -> list[int]:
    return [t["index"] for t in detail["tasks"] if t["state"] == "completed"]


def _submit(client: httpx.Client, ntasks: int) -> str:
    body = {
        "service": "builtin",
        "ntasks": ntasks,
        "input": {
            "kind": "editor",
            "project": example_project(),
            "primaries": ntasks * PRIMARIES_PER_TASK,
        },
    }
    return create(client, body)


@pytest.fixture(scope="module")
def wide_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Tasks side by side, on SQLite only: folding reads and writes files, not the database,
    and the 10-task test below checks the final merge on both backends."""
    workdir = tmp_path_factory.mktemp("incremental-merge-wide")
    with serving("sqlite", workdir, {"services": CONFIG["services"]}, ENV) as live:
        yield live


def test_a_job_of_100_tasks_equals_the_full_merge(wide_server: LiveServer) -> None:
    with wide_server.client() as client:
        job_id = _submit(client, TASKS)
        detail = poll(client, job_id, timeout=900)
        assert detail["status"] == "completed", detail["error"]
        results = client.get(f"/api/jobs/{job_id}/results")
        assert results.status_code == 200, results.text
    full = merge_task_files(_job_dir(wide_server, job_id), _completed(detail))
    _close(results.json()["estimators"], full)


def test_partial_results_of_a_running_job_equal_the_merge_of_its_completed_tasks(
    client: httpx.Client, server: LiveServer
) -> None:
    job_id = _submit(client, 10)
    job_dir = _job_dir(server, job_id)
    compared: set[tuple[int, ...]] = set()
    while True:
        before = client.get(f"/api/jobs/{job_id}").json()
        done = _completed(before)
        if done and tuple(done) not in compared:  # each set of completed tasks once
            partial = client.get(f"/api/jobs/{job_id}/results", params={"partial": "true"})
            after = client.get(f"/api/jobs/{job_id}").json()
            if done == _completed(after) and partial.status_code == 200:
                body = partial.json()
                assert body["tasks_merged"] == len(done)
                _close(body["estimators"], merge_task_files(job_dir, done))
                compared.add(tuple(done))
        else:
            after = before
        if after["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.3)  # the tasks need the CPU more than this loop does
    assert after["status"] == "completed", after["error"]
    final = client.get(f"/api/jobs/{job_id}/results").json()["estimators"]
    _close(final, merge_task_files(job_dir, _completed(after)))
    assert compared  # one task at a time: each completion leaves the next task running
