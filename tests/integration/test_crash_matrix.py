"""A server killed with SIGKILL in every state a job can be in, in the middle of a burst of
submissions, and ``cyclotron worker`` processes killed in the middle of a task and of its
output's upload, lose nothing and do nothing twice that must be done once (SQLite, PostgreSQL).

One kill finds a job in each active state: PENDING (waiting for the one executor slot),
RUNNING (its task waits on a gate), MERGING_RUNNING (its merge waits on a gate: the
``support.gated_merge`` double) and MERGING_QUEUED (behind that merge, with one merge slot), and
a burst of 100 submissions, half through ``POST /api/jobs`` and half through ``POST /upload``,
each sent twice with one ``Idempotency-Key`` and retried as the CLI retries (the kill cuts some
in flight; the rest are sent while the server is down or starting). Gates and counts decide
every step; no sleep does.

After the restart: each key made one job and was answered the same twice; every job ends
COMPLETED; the merge cut short ran again to the same results as a merge never cut; the killed
task's process did not survive; no job directory lacks its row and staging is empty.

The workers' case runs one task on three workers in turn through a proxy that can hold a
request half sent: the first is killed while the task waits on a gate, the second once the
server holds the first bytes of its upload; the third ends the job. Each attempt ran once, no
process of a killed attempt survives, and the cut upload left nothing.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live import LiveServer
from support.processes import marked
from support.tcp_proxy import TcpProxy
from support.upload import zip_members
from support.workers import Worker, broker

from cyclotron.executors.http import send_with_backoff

TESTS_DIR = Path(__file__).resolve().parents[1]
QUICK = 'echo "$CYCLOTRON_TASK_INDEX" > out.txt\n'
KEYS = 100
KILL_AFTER = 40  # answers of the burst received before the kill
DEADLINE = 120.0


def _config(gates: Path) -> dict[str, Any]:
    service = {
        "plugin": "support.gated_merge:GatedMergeScript",
        "gates": str(gates),
        "max_runs": 500,
        "runs_per_user": 500,
        "max_queued_per_user": 1000,
    }
    return {
        # Tasks wait on gates outside their directories: bare.
        "sandbox": {"mode": "none"},
        "dispatch": {"interval": 0.2, "max_merges": 1},
        "executors": {"local": {"max_parallel": 1}},
        # The burst's jobs merge nothing: its case is the submissions.
        "services": {"crash": service, "burst": {**service, "plugin": "script"}},
    }


def _body(script: str, ntasks: int = 1, service: str = "crash") -> dict[str, Any]:
    return {
        "service": service,
        "ntasks": ntasks,
        "input": {"kind": "files", "files": {"run.sh": script}},
    }


def _create(client: httpx.Client, script: str, ntasks: int = 1) -> str:
    response = client.post("/api/jobs", json=_body(script, ntasks))
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def _until(read: Callable[[], Any], done: Callable[[Any], bool], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: still {value}"
        time.sleep(0.05)


def _detail(client: httpx.Client, job_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
    return detail


class Burst:
    """Submissions each sent twice with one key, every send retried until it is answered."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.answers: dict[str, list[tuple[int, Any]]] = collections.defaultdict(list)
        self.enough = threading.Event()
        self._lock = threading.Lock()

    def send(self, index: int) -> None:
        """Send submission ``index`` as ``cyclotron submit`` does: again, with the same key,
        while the connection fails."""
        key = f"burst-{index}"
        script = f'echo "burst {index}" > out.txt\n'
        sent: dict[str, Any] = (
            {"url": "/api/jobs", "json": _body(script, service="burst")}
            if index % 2
            else {
                "url": "/upload",
                "data": {"user_id": "1", "service": "burst"},
                "files": {"file": ("run.sh", script.encode())},
            }
        )
        with httpx.Client(base_url=self.live.base_url, timeout=30) as client:
            response = send_with_backoff(
                client,
                "POST",
                retry_for=DEADLINE,
                retried=frozenset(),
                headers={"Idempotency-Key": key},
                **sent,
            )
        with self._lock:
            self.answers[key].append((response.status_code, response.json()))
            if sum(map(len, self.answers.values())) >= KILL_AFTER:
                self.enough.set()


def test_a_kill_in_every_state_and_mid_burst_loses_nothing(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    gated = f'while [ ! -e "{gates}/task" ]; do sleep 0.05; done\n{QUICK}'
    live = start_server(_config(gates), env={"PYTHONPATH": str(TESTS_DIR)})
    with live.client() as client:
        merging = _create(client, QUICK, ntasks=2)
        _until(lambda: _detail(client, merging), lambda d: d["stage"] == "merging", "merge")
        queued = _create(client, QUICK, ntasks=2)
        _until(lambda: _detail(client, queued), lambda d: d["stage"] == "merging_queued", "queue")
        running = _create(client, gated)
        first_attempt = f"CYCLOTRON_TASK_KEY={running}/0/1"
        _until(lambda: marked(first_attempt), bool, "the gated task")
        pending = _create(client, QUICK)
        assert _detail(client, pending)["status"] == "pending"
        assert _detail(client, running)["status"] == "running"

    burst = Burst(live)
    sends = [index for index in range(KEYS) for _ in range(2)]
    random.Random(17).shuffle(sends)
    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = [pool.submit(burst.send, index) for index in sends]
        assert burst.enough.wait(DEADLINE)
        live.kill()
        (gates / "merge").touch()  # the merge runs to its end once it is run again
        live.start()
        with live.client() as client:
            # The task runs again, and the killed attempt's process, still held by the closed
            # gate, is gone: the server killed it. Then the task may end.
            attempt = _until(
                lambda: _detail(client, running)["tasks"][0]["attempt"], lambda a: a > 1, "retry"
            )
            _until(lambda: marked(first_attempt), lambda found: not found, "the orphan")
            (gates / "task").touch()
        for future in sent:
            future.result()

    assert attempt == 2
    with live.client() as client:
        _until(
            lambda: client.get("/api/jobs", params={"status": "pending,running"}).json(),
            lambda listing: listing["total"] == 0,
            "active jobs",
        )
        jobs = [
            job
            for page in (1, 2)
            for job in client.get("/api/jobs", params={"page": page, "page_size": 100}).json()[
                "jobs"
            ]
        ]
        merged = {
            job_id: zip_members(client.get(f"/download/{_detail(client, job_id)['number']}"))
            for job_id in (merging, queued)
        }
        tasks = {job_id: _detail(client, job_id)["tasks"] for job_id in (merging, queued, running)}

    # Each key made one job, answered the same way both times.
    assert len(burst.answers) == KEYS
    for key, answers in burst.answers.items():
        assert len(answers) == 2 and answers[0] == answers[1], (key, answers)
        assert answers[0][0] == 201, (key, answers)
    assert len(jobs) == KEYS + 4, len(jobs)
    assert collections.Counter(job["status"] for job in jobs) == {"completed": KEYS + 4}
    # The merge cut short ran again, to what a merge never cut makes; no task ran twice for it.
    runs = collections.Counter((gates / "merges").read_text().split())
    assert (runs[merging], runs[queued]) == (2, 1), runs
    assert merged[merging] == merged[queued] == {"merged.txt": b"0\n1\n"}
    assert [t["attempt"] for t in tasks[merging] + tasks[queued]] == [1, 1, 1, 1]
    assert [t["attempt"] for t in tasks[running]] == [2]
    # Every job directory has its row, and nothing was left in staging or set aside.
    data = live.data_dir
    assert sorted(p.name for p in (data / "jobs").iterdir()) == sorted(j["id"] for j in jobs)
    assert list((data / "staging").iterdir()) == []
    assert not (data / "unreferenced").exists()
    assert "moved to" not in live.log()


@pytest.mark.redis
def test_workers_killed_mid_task_and_mid_upload_lose_nothing(db_url: str, tmp_path: Path) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    script = (
        f'echo "$CYCLOTRON_TASK_KEY" >> "{gates}/runs"\n'
        f'while [ ! -e "{gates}/go" ]; do sleep 0.05; done\n'
        "head -c 1000000 /dev/urandom > big.bin\necho done > out.txt\n"
    )
    proxy = TcpProxy("127.0.0.1", 0)  # the workers reach the server through it
    celery = {**broker(), "visibility_timeout": 30, "api_url": f"http://127.0.0.1:{proxy.port}"}
    config = {
        "sandbox": {"mode": "none"},
        "dispatch": {"lease_seconds": 3, "interval": 0.2, "max_attempts": 5},
        "executors": {"celery": celery},
        "services": {"crash": {"plugin": "script", "executor": "celery"}},
    }
    (tmp_path / "server").mkdir()
    live = LiveServer(tmp_path / "server", db_url, config)
    proxy.target = ("127.0.0.1", live.port)
    workers: list[Worker] = []

    def worker(name: str) -> Worker:
        workers.append(Worker(tmp_path, live.config_path, name).start())
        return workers[-1]

    def runs() -> list[str]:
        path = gates / "runs"
        return path.read_text().split() if path.exists() else []

    with proxy:
        live.start()
        try:
            with live.client() as client:
                job_id = _create(client, script)
                job_dir = live.data_dir / "jobs" / job_id
                first = worker("w1")
                _until(runs, lambda r: len(r) == 1, "the first attempt")
                first.kill()  # in the middle of the task
                _until(lambda: marked(f"CYCLOTRON_TASK_KEY={job_id}/0/1"), lambda p: not p, "reap")

                second = worker("w2")
                _until(runs, lambda r: len(r) == 2, "the second attempt")
                proxy.stall_once(b"/output?")
                (gates / "go").touch()
                assert proxy.stalled.wait(DEADLINE)
                _until(lambda: list(job_dir.glob(".upload-*")), bool, "the upload's first bytes")
                second.kill()  # in the middle of the upload
                proxy.cut()
                proxy.restore()

                worker("w3")
                detail = _until(
                    lambda: _detail(client, job_id),
                    lambda d: d["status"] not in ("pending", "running"),
                    "the job's end",
                )
                members = zip_members(client.get(f"/download/{detail['number']}"))
                _until(lambda: list(job_dir.glob(".*")), lambda left: not left, "upload leftovers")
        finally:
            for each in workers:
                each.stop()
            live.stop()

    assert detail["status"] == "completed", detail
    assert [t["attempt"] for t in detail["tasks"]] == [3]
    assert runs() == [f"{job_id}/0/{attempt}" for attempt in (1, 2, 3)]
    assert members["out.txt"] == b"done\n" and len(members["big.bin"]) == 1_000_000
    assert marked(f"CYCLOTRON_TASK_KEY={job_id}/0/2") == []
    assert [p.name for p in (live.data_dir / "jobs").iterdir()] == [job_id]
