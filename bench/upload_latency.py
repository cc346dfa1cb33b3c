"""Latency of one trivial job through the file-upload face, against running it directly.

Starts its own ``cyclotron serve`` (SQLite inside a temporary data directory, one process,
default dispatch settings) on a free port, then submits ``--jobs`` jobs one after another,
each a ``run.sh`` containing ``true``. Each latency runs from just before ``POST /upload``
to the headers of the first ``GET /download/{id}`` answered with ``application/zip``
(status Completed), polling every 2 ms. It also prints the server process's CPU time per
job. The baseline is ``bash run.sh`` run directly the same number of times.

Run: ``.venv/bin/python bench/upload_latency.py [--jobs 100]``. Exit status 1 when the
server does not start or a job does not complete; the target is reported, never enforced.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import LiveServer  # noqa: E402

SCRIPT = b"true\n"
POLL_SECONDS = 0.002
JOB_TIMEOUT = 60.0
TARGET_MS = 50.0
TERMINAL = {"Failed", "Invalid", "Killed", "Cleaned"}


class JobFailed(RuntimeError):
    pass


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


def bash_baseline(jobs: int, workdir: Path) -> list[float]:
    """Seconds taken by ``bash run.sh`` started directly, once per job."""
    (workdir / "run.sh").write_bytes(SCRIPT)
    times: list[float] = []
    for _ in range(jobs):
        start = time.perf_counter()
        subprocess.run(["bash", "run.sh"], cwd=workdir, check=True)
        times.append(time.perf_counter() - start)
    return times


def one_job(client: httpx.Client) -> float:
    """Seconds from just before the upload to the first answer that is the ZIP."""
    start = time.perf_counter()
    answer = client.post(
        "/upload",
        files={"file": ("run.sh", SCRIPT, "application/x-sh")},
        data={"user_id": "1", "service": "example"},
    )
    if answer.status_code != 201:
        raise JobFailed(f"upload answered {answer.status_code}: {answer.text}")
    job_id = answer.json()["id"]
    deadline = start + JOB_TIMEOUT
    while time.perf_counter() < deadline:
        # Completed is known from the headers; the ZIP body itself is not waited for.
        with client.stream("GET", f"/download/{job_id}") as reply:
            if reply.headers.get("content-type", "").startswith("application/zip"):
                return time.perf_counter() - start
            reply.read()
        body = reply.json()
        if reply.status_code != 200 or body.get("status") in TERMINAL:
            raise JobFailed(f"job {job_id} ended {reply.status_code} {body}")
        time.sleep(POLL_SECONDS)
    raise JobFailed(f"job {job_id} not Completed after {JOB_TIMEOUT} s")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_latencies(jobs: int, workdir: Path) -> tuple[list[float], float]:
    """Each job's latency, and the server's CPU seconds per job over the measured jobs."""
    # The URL is the default one (``cyclotron.db`` in the data directory), spelt out
    # because LiveServer always writes one.
    database_url = f"sqlite:///{workdir / 'data' / 'cyclotron.db'}"
    config = {"services": {"example": {"plugin": "script", "max_runs": 10, "runs_per_user": 5}}}
    server = LiveServer(workdir, database_url, config)
    try:
        server.start()
        with server.client() as client:
            one_job(client)  # warm-up: first imports, first connection; not counted
            assert server.process is not None
            cpu_before = process_cpu_seconds(server.process.pid)
            latencies = [one_job(client) for _ in range(jobs)]
            cpu = process_cpu_seconds(server.process.pid) - cpu_before
            return latencies, cpu / jobs
    except (JobFailed, httpx.HTTPError) as exc:
        tail = "\n".join(server.log().splitlines()[-40:])
        raise JobFailed(f"{exc}\n--- end of the server log ---\n{tail}") from exc
    finally:
        server.stop()


def report(
    jobs: int, server: list[float], direct: list[float], load: float, cpu_per_job: float
) -> None:
    def ms(value: float) -> str:
        return f"{value * 1000:8.2f} ms"

    server_median = statistics.median(server)
    direct_median = statistics.median(direct)
    overhead = server_median - direct_median
    print(f"jobs                    {jobs} (+1 warm-up job, not counted)")
    print(f"host                    {os.cpu_count()} CPUs, 1-min load {load:.2f} before the run")
    print(f"server median           {ms(server_median)}")
    print(f"server p90              {ms(percentile(server, 0.90))}")
    print(f"server p99              {ms(percentile(server, 0.99))}")
    print(f"server max              {ms(max(server))}")
    print(f"server CPU per job      {ms(cpu_per_job)}")
    print(f"direct bash median      {ms(direct_median)}")
    print(f"overhead at median      {ms(overhead)}")
    print(f"ratio server/bash       {server_median / direct_median:8.1f} x")
    met = "met" if overhead * 1000 < TARGET_MS else "NOT met"
    print(f"target (< {TARGET_MS:.0f} ms overhead at the median, SQLite): {met}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs to submit (default 100)")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-bench-"))
    try:
        direct_dir = workdir / "direct"
        direct_dir.mkdir()
        direct = bash_baseline(args.jobs, direct_dir)
        server, cpu_per_job = server_latencies(args.jobs, workdir)
    except (JobFailed, RuntimeError, httpx.HTTPError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args.jobs, server, direct, load, cpu_per_job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
