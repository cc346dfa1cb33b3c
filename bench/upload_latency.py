"""Latency and server CPU of one trivial job through the file-upload face, against its floor.

Starts its own ``cyclotron serve`` (SQLite inside a temporary data directory, one process,
default dispatch settings) on a free port, then submits ``--jobs`` jobs one after another,
each a ``run.sh`` containing ``echo hi > out.txt``. Each latency runs from just before
``POST /upload`` to the headers of the first ``GET /download/{id}`` answered with
``application/zip`` (status Completed), polling every ``--poll`` ms (2 by default). The floor
is ``bash run.sh`` run directly the same number of times (what ``bash -c true`` costs, and an
``echo``).

The server process's CPU time per job includes the status polls. The bench counts them, then
measures what one poll costs on its own (polls of a job kept running, ``sleep``), and prints
the job's own path (upload, dispatch, task, completion, the ZIP's headers) without them:
CPU per job - polls per job x CPU per poll.

Run: ``.venv/bin/python bench/upload_latency.py [--jobs 100] [--poll 2] [--sandbox none]``.
Exit status 1 when the server does not start or a job does not complete; the targets are
reported, never enforced.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import LiveServer  # noqa: E402

SCRIPT = b"echo hi > out.txt\n"
KEPT_RUNNING = b"sleep 120\n"  # the job whose polls are measured alone
POLL_SECONDS = 0.002
POLLS_MEASURED = 200
JOB_TIMEOUT = 60.0
# Issue 18's row for a trivial job, SQLite: over the floor at the median, server CPU per job.
TARGET_OVERHEAD_MS = 20.0
TARGET_CPU_MS = 5.0
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


@dataclass
class Measured:
    latencies: list[float]
    cpu_per_job: float  # server CPU seconds per job, polls included
    polls_per_job: float  # status polls answered before the ZIP, per job
    cpu_per_poll: float  # server CPU seconds of one status poll, measured alone
    mode: str  # the sandbox in force


def upload(client: httpx.Client, script: bytes) -> int:
    answer = client.post(
        "/upload",
        files={"file": ("run.sh", script, "application/x-sh")},
        data={"user_id": "1", "service": "example"},
    )
    if answer.status_code != 201:
        raise JobFailed(f"upload answered {answer.status_code}: {answer.text}")
    return int(answer.json()["id"])


def one_job(client: httpx.Client, poll: float) -> tuple[float, int]:
    """Seconds from just before the upload to the first answer that is the ZIP, and the
    status polls answered before it."""
    start = time.perf_counter()
    job_id = upload(client, SCRIPT)
    deadline = start + JOB_TIMEOUT
    polls = 0
    while time.perf_counter() < deadline:
        # Completed is known from the headers; the ZIP body itself is not waited for.
        with client.stream("GET", f"/download/{job_id}") as reply:
            if reply.headers.get("content-type", "").startswith("application/zip"):
                return time.perf_counter() - start, polls
            reply.read()
        polls += 1
        body = reply.json()
        if reply.status_code != 200 or body.get("status") in TERMINAL:
            raise JobFailed(f"job {job_id} ended {reply.status_code} {body}")
        time.sleep(poll)
    raise JobFailed(f"job {job_id} not Completed after {JOB_TIMEOUT} s")


def poll_cost(client: httpx.Client, pid: int) -> float:
    """Server CPU seconds of one status poll: polls of a running job, measured alone."""
    job_id = upload(client, KEPT_RUNNING)
    deadline = time.perf_counter() + JOB_TIMEOUT
    while client.get(f"/download/{job_id}").json().get("status") != "Running":
        if time.perf_counter() > deadline:
            raise JobFailed(f"job {job_id} did not start")
        time.sleep(0.01)
    time.sleep(0.2)  # the start's own work done
    before = process_cpu_seconds(pid)
    for _ in range(POLLS_MEASURED):
        client.get(f"/download/{job_id}").read()
    cpu = process_cpu_seconds(pid) - before
    client.post(f"/terminate/{job_id}")
    return cpu / POLLS_MEASURED


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_latencies(jobs: int, workdir: Path, poll: float, sandbox: str | None) -> Measured:
    """Each job's latency, and the server's CPU per job and per poll."""
    # The URL is the default one (``cyclotron.db`` in the data directory), spelt out
    # because LiveServer always writes one.
    database_url = f"sqlite:///{workdir / 'data' / 'cyclotron.db'}"
    config: dict[str, Any] = {
        "services": {"example": {"plugin": "script", "max_runs": 10, "runs_per_user": 5}}
    }
    if sandbox is not None:
        config["sandbox"] = {"mode": sandbox}
    server = LiveServer(workdir, database_url, config)
    try:
        server.start()
        with server.client() as client:
            one_job(client, poll)  # warm-up: first imports, first connection; not counted
            assert server.process is not None
            pid = server.process.pid
            cpu_before = process_cpu_seconds(pid)
            runs = [one_job(client, poll) for _ in range(jobs)]
            cpu = process_cpu_seconds(pid) - cpu_before
            per_poll = poll_cost(client, pid)
            mode = "bwrap" if "confined by" in server.log() else "none"
            return Measured(
                latencies=[seconds for seconds, _ in runs],
                cpu_per_job=cpu / jobs,
                polls_per_job=sum(polls for _, polls in runs) / jobs,
                cpu_per_poll=per_poll,
                mode=mode,
            )
    except (JobFailed, httpx.HTTPError) as exc:
        tail = "\n".join(server.log().splitlines()[-40:])
        raise JobFailed(f"{exc}\n--- end of the server log ---\n{tail}") from exc
    finally:
        server.stop()


def report(jobs: int, measured: Measured, direct: list[float], load: float, poll: float) -> None:
    def ms(value: float) -> str:
        return f"{value * 1000:8.2f} ms"

    server = measured.latencies
    server_median = statistics.median(server)
    direct_median = statistics.median(direct)
    overhead = server_median - direct_median
    own_cpu = measured.cpu_per_job - measured.polls_per_job * measured.cpu_per_poll
    print(f"jobs                    {jobs} (+1 warm-up job, not counted)")
    print(f"host                    {os.cpu_count()} CPUs, 1-min load {load:.2f} before the run")
    print(f"sandbox                 {measured.mode}")
    print(f"server median           {ms(server_median)}")
    print(f"server p90              {ms(percentile(server, 0.90))}")
    print(f"server p99              {ms(percentile(server, 0.99))}")
    print(f"server max              {ms(max(server))}")
    print(f"floor: bash run.sh      {ms(direct_median)}  (median, run directly)")
    print(
        f"over the floor          {ms(overhead)}  (median; target <= {TARGET_OVERHEAD_MS:.0f} ms)"
    )
    print(f"ratio server/floor      {server_median / direct_median:8.1f} x")
    print(f"server CPU per job      {ms(measured.cpu_per_job)}  (with its polls)")
    print(f"status polls per job    {measured.polls_per_job:8.1f}     (every {poll * 1000:g} ms)")
    print(f"server CPU per poll     {ms(measured.cpu_per_poll)}  ({POLLS_MEASURED} polls alone)")
    print(f"job's own path CPU      {ms(own_cpu)}  (target <= {TARGET_CPU_MS:.0f} ms)")
    for name, value, target in (
        ("over the floor", overhead * 1000, TARGET_OVERHEAD_MS),
        ("server CPU per job, without polls", own_cpu * 1000, TARGET_CPU_MS),
    ):
        met = "met" if value <= target else "NOT met"
        print(f"target {name} <= {target:.0f} ms (SQLite): {met}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs to submit (default 100)")
    parser.add_argument(
        "--poll", type=float, default=POLL_SECONDS * 1000, help="ms between status polls (2)"
    )
    parser.add_argument(
        "--sandbox", choices=("bwrap", "none"), help="[sandbox] mode (default: the server's)"
    )
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-bench-"))
    try:
        direct_dir = workdir / "direct"
        direct_dir.mkdir()
        direct = bash_baseline(args.jobs, direct_dir)
        measured = server_latencies(args.jobs, workdir, args.poll / 1000, args.sandbox)
    except (JobFailed, RuntimeError, httpx.HTTPError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args.jobs, measured, direct, load, args.poll / 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
