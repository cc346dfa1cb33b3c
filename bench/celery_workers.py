"""Tasks through Celery workers: throughput for trivial tasks, speed-up for CPU-bound ones.

1. Trivial tasks: one job of N ``run.sh`` tasks (``true``) on the ``example`` service, run
   once by the local executor (the baseline, same server settings) and once through Redis by
   two ``cyclotron worker`` processes (``--concurrency 2`` each). Tasks per second from the
   submission to COMPLETED, and their ratio.
2. CPU-bound: one ``builtin`` job of ex1 (8 tasks) on 1 worker, then on 2 workers, each with
   one slot. Speed-up = time(1) / time(2); parallel efficiency = speed-up / 2.

The server runs on PostgreSQL (a scratch database, dropped afterwards) and Redis 15, with
a queue of its own. Run: ``.venv/bin/python bench/celery_workers.py [--tasks 200]
[--primaries 40000]``. Figures are reported, never enforced; the host line shows the load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.databases import postgres_database  # noqa: E402
from support.live import LiveServer  # noqa: E402
from support.workers import Worker, broker  # noqa: E402

EX1 = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "yaptide" / "ex1.json"
CPU_TASKS = 8


def run_job(client: httpx.Client, body: dict[str, Any]) -> float:
    """Seconds from the submission to COMPLETED."""
    start = time.perf_counter()
    response = client.post("/api/jobs", json=body)
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        detail = client.get(f"/api/jobs/{job_id}").json()
        if detail["status"] == "completed":
            return time.perf_counter() - start
        if detail["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"job {job_id} ended {detail['status']}: {detail['error']}")
        time.sleep(0.05)


def trivial(ntasks: int) -> dict[str, Any]:
    return {
        "service": "example",
        "ntasks": ntasks,
        "input": {"kind": "files", "files": {"run.sh": "true\n"}},
    }


def cpu_bound(primaries: int) -> dict[str, Any]:
    project = json.loads(EX1.read_text())["input"]["inputJson"]
    return {
        "service": "builtin",
        "ntasks": CPU_TASKS,
        "input": {"kind": "editor", "project": project, "primaries": primaries},
    }


def serve(workdir: Path, url: str, executor: str) -> LiveServer:
    limits = {"max_runs": 50, "runs_per_user": 50, "max_ntasks": 5000, "executor": executor}
    config = {
        "executors": {
            "celery": {**broker("bench"), "max_queued": 64},
            "local": {"max_parallel": 4},
        },
        "services": {
            "example": {"plugin": "script", **limits},
            "builtin": {"plugin": "builtin", **limits},
        },
    }
    workdir.mkdir()
    return LiveServer(workdir, url, config).start()


def with_workers(
    server: LiveServer, workdir: Path, count: int, concurrency: int, body: dict[str, Any]
) -> float:
    workers = [
        Worker(workdir, server.config_path, f"b{count}-{i}", concurrency).start()
        for i in range(count)
    ]
    try:
        with server.client() as client:
            return run_job(client, body)
    finally:
        for worker in workers:
            worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--primaries", type=int, default=40_000)
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"host: {os.cpu_count()} CPUs, load {load}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with postgres_database() as url:
            local = serve(root / "local", url, "local")
            try:
                with local.client() as client:
                    run_job(client, trivial(4))  # warm-up
                    local_seconds = run_job(client, trivial(args.tasks))
            finally:
                local.stop()
        with postgres_database() as url:
            server = serve(root / "celery", url, "celery")
            try:
                with_workers(server, root, 1, 1, trivial(4))  # warm-up
                celery_seconds = with_workers(server, root, 2, 2, trivial(args.tasks))
                one = two = None
                if EX1.is_file():
                    with_workers(server, root, 1, 1, cpu_bound(2_000))  # numba cache
                    one = with_workers(server, root, 1, 1, cpu_bound(args.primaries))
                    two = with_workers(server, root, 2, 1, cpu_bound(args.primaries))
            finally:
                server.stop()
    local_rate, celery_rate = args.tasks / local_seconds, args.tasks / celery_seconds
    print(f"trivial tasks, local executor (4 slots):   {local_rate:7.1f} tasks/s")
    print(
        f"trivial tasks, 2 Celery workers × 2 slots: {celery_rate:7.1f} tasks/s  "
        f"(×{celery_rate / local_rate:.2f} the local executor)"
    )
    if one is None or two is None:
        print(f"CPU-bound: skipped, {EX1} is absent")
        return
    speedup = one / two
    print(
        f"CPU-bound builtin ex1, {CPU_TASKS} tasks, {args.primaries:,} primaries: "
        f"1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up ×{speedup:.2f}, "
        f"parallel efficiency {speedup / 2:.0%}"
    )


if __name__ == "__main__":
    main()
