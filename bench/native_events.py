"""Progress fan-out of the native face: messages delivered per second to ``--subscribers``
WebSocket clients of one job against one client (the baseline, in the same run), and the
latency from a submission's answer to its first ``progress`` message.

Starts its own ``cyclotron serve`` (SQLite inside a temporary data directory unless
``--database-url`` names another database) whose ``example`` service runs ``run.sh`` jobs,
with ``--tasks`` local slots.

Fan-out: a ``--tasks``-task job whose tasks wait for a gate file, then print ``--lines``
``CYCLOTRON_PROGRESS`` lines 20 ms apart (the server keeps at most one progress event per task
per second). The clients connect while the tasks wait; once every client has its snapshot the
gate opens, and the run lasts until every client has its ``completed`` message. Every client
must receive the stored log after its snapshot, in order, without a gap. Printed per run:
events, messages delivered per second (all clients), the spread of each event's arrival
across the clients, the job's time from the gate to its end, and the server's CPU per message.

Latency: ``--jobs`` one-task jobs, one after another, whose ``run.sh`` prints a progress line
at once. Each latency runs from the ``POST /api/jobs`` answer to the first ``progress``
message on a WebSocket opened right after it. The baseline is the time ``bash run.sh`` takes
to print that line when started directly.

Run: ``.venv/bin/python bench/native_events.py [--subscribers 200] [--tasks 16] [--lines 250]
[--jobs 20] [--database-url postgresql://…]``. Exit status 1 when the server does not start,
a job does not complete or a client misses an event; figures are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from upload_latency import percentile, process_cpu_seconds
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import LiveServer  # noqa: E402

TIMEOUT = 300.0
LATENCY_SCRIPT = 'echo "CYCLOTRON_PROGRESS 1/2"\nsleep 0.3\necho "CYCLOTRON_PROGRESS 2/2"\n'


class BenchFailed(RuntimeError):
    pass


def gated_script(gate: Path, lines: int) -> str:
    return (
        f"while [ ! -e '{gate}' ]; do sleep 0.02; done\n"
        f"for i in $(seq 1 {lines}); do\n"
        f'  echo "CYCLOTRON_PROGRESS $i/{lines}"\n'
        "  sleep 0.02\n"
        "done\n"
    )


@dataclass
class Client:
    """One subscriber: each message with the monotonic time it arrived."""

    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    snapshot: asyncio.Event = field(default_factory=asyncio.Event)
    code: int | None = None

    async def follow(self, socket: ClientConnection) -> None:
        try:
            async for raw in socket:
                message = json.loads(raw)
                if message["type"] == "ping":
                    continue
                self.received.append((time.monotonic(), message))
                if message["type"] == "snapshot":
                    self.snapshot.set()
        except ConnectionClosed:
            pass
        self.code = socket.close_code


@dataclass
class FanOut:
    subscribers: int
    events: int  # stored events after the snapshots, each delivered to every client
    messages: int  # delivered, all clients together (snapshots not counted)
    seconds: float  # gate opened → last client's terminal message
    spreads: list[float]  # per event: last arrival − first arrival across clients
    server_cpu: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


def submit(http: httpx.Client, script: str, ntasks: int, name: str) -> dict[str, Any]:
    files = {"run.sh": script}
    body = {"name": name, "service": "example", "ntasks": ntasks}
    answer = http.post("/api/jobs", json={**body, "input": {"kind": "files", "files": files}})
    if answer.status_code != 201:
        raise BenchFailed(f"submission answered {answer.status_code}: {answer.text}")
    created: dict[str, Any] = answer.json()
    return created


def wait_running(http: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        detail = http.get(f"/api/jobs/{job_id}").json()
        if all(t["state"] == "running" for t in detail["tasks"]):
            return
        if detail["status"] in ("completed", "failed", "cancelled"):
            raise BenchFailed(f"job {job_id} ended {detail['status']} before it was watched")
        time.sleep(0.05)
    raise BenchFailed(f"the tasks of job {job_id} did not all start")


async def watch(url: str, count: int, gate: Path) -> tuple[list[Client], float]:
    """``count`` clients; the gate opens when all have their snapshot. Seconds from then on."""
    clients = [Client() for _ in range(count)]
    sockets = await asyncio.gather(*(connect(url, open_timeout=TIMEOUT) for _ in clients))
    try:
        tasks = [asyncio.create_task(c.follow(s)) for c, s in zip(clients, sockets, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(c.snapshot.wait() for c in clients)), TIMEOUT)
        opened = time.monotonic()
        gate.touch()
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
        return clients, max(c.received[-1][0] for c in clients) - opened
    finally:
        await asyncio.gather(*(s.close() for s in sockets))


def stored_seqs(http: httpx.Client, job_id: str) -> list[int]:
    seqs = []
    with http.stream("GET", f"/api/jobs/{job_id}/events", params={"last_event_id": 0}) as r:
        for line in r.iter_lines():
            if line.startswith("id:"):
                seqs.append(int(line.removeprefix("id:")))
    return seqs


def fan_out(server: LiveServer, http: httpx.Client, args: argparse.Namespace, count: int) -> FanOut:
    gate = server.workdir / f"gate-{count}"
    job = submit(http, gated_script(gate, args.lines), args.tasks, f"fan-out to {count}")
    wait_running(http, job["id"])
    assert server.process is not None
    cpu_before = process_cpu_seconds(server.process.pid)
    url = f"ws://127.0.0.1:{server.port}/api/jobs/{job['id']}/progress"
    clients, seconds = asyncio.run(watch(url, count, gate))
    cpu = process_cpu_seconds(server.process.pid) - cpu_before
    stored = stored_seqs(http, job["id"])
    arrivals: dict[int, list[float]] = {}
    for client in clients:
        (_, snapshot), *rest = client.received
        seqs = [m["seq"] for _, m in rest]
        if client.code != 1000 or seqs != [s for s in stored if s > snapshot["seq"]]:
            raise BenchFailed(f"a client missed events: {seqs} against the log {stored}")
        if rest[-1][1]["type"] != "completed":
            raise BenchFailed(f"job {job['id']} ended {rest[-1][1]['type']}")
        for at, message in rest:
            arrivals.setdefault(message["seq"], []).append(at)
    everyone = [times for times in arrivals.values() if len(times) == count]
    return FanOut(
        subscribers=count,
        events=len(everyone),
        messages=sum(len(c.received) - 1 for c in clients),
        seconds=seconds,
        spreads=[max(times) - min(times) for times in everyone],
        server_cpu=cpu,
    )


async def first_progress(url: str) -> float:
    async with connect(url, open_timeout=TIMEOUT) as socket:
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "progress":
                return time.monotonic()
            if message["type"] in ("completed", "failed", "cancelled"):
                break
    raise BenchFailed("a job ended without a progress message")


async def submit_and_watch(server: LiveServer, http: httpx.AsyncClient) -> float:
    files = {"run.sh": LATENCY_SCRIPT}
    body = {"service": "example", "input": {"kind": "files", "files": files}}
    answer = await http.post("/api/jobs", json=body)
    answered = time.monotonic()
    if answer.status_code != 201:
        raise BenchFailed(f"submission answered {answer.status_code}: {answer.text}")
    url = f"ws://127.0.0.1:{server.port}/api/jobs/{answer.json()['id']}/progress"
    return await first_progress(url) - answered


async def latencies(server: LiveServer, jobs: int) -> list[float]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        await submit_and_watch(server, http)  # warm-up, not counted
        return [await submit_and_watch(server, http) for _ in range(jobs)]


def bash_first_line(jobs: int, workdir: Path) -> list[float]:
    """Seconds ``bash run.sh`` takes to print its first line, started directly."""
    (workdir / "run.sh").write_text(LATENCY_SCRIPT)
    times = []
    for _ in range(jobs):
        start = time.monotonic()
        with subprocess.Popen(["bash", "run.sh"], cwd=workdir, stdout=subprocess.PIPE) as bash:
            assert bash.stdout is not None
            bash.stdout.readline()
            times.append(time.monotonic() - start)
            bash.wait()
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def report_fan_out(base: FanOut, many: FanOut) -> None:
    for run in (base, many):
        label = f"{run.subscribers} subscriber{'s' if run.subscribers > 1 else ''}"
        print(f"fan-out to {label}")
        print(f"  events (each to every client)  {run.events}")
        print(f"  messages delivered             {run.messages} in {run.seconds:.2f} s")
        print(f"  messages per second            {run.per_second:9.1f}")
        print(f"  per client per second          {run.per_second / run.subscribers:9.1f}")
        print(f"  arrival spread p50             {ms(statistics.median(run.spreads))}")
        print(f"  arrival spread p95             {ms(percentile(run.spreads, 0.95))}")
        print(f"  arrival spread max             {ms(max(run.spreads))}")
        print(f"  server CPU (job included)      {run.server_cpu:9.2f} s")
    extra = (many.server_cpu - base.server_cpu) / (many.messages - base.messages)
    ratio = f"{many.subscribers}:{base.subscribers}"
    print(f"ratio messages/s {ratio:>7}      {many.per_second / base.per_second:9.1f} x")
    print(f"ratio job time {ratio:>7}        {many.seconds / base.seconds:9.2f} x")
    print(f"server CPU per extra message     {extra * 1e6:9.1f} µs")


def report_latency(server: list[float], direct: list[float]) -> None:
    print(f"submit → first progress, {len(server)} jobs (+1 warm-up)")
    print(f"  median                         {ms(statistics.median(server))}")
    print(f"  p95                            {ms(percentile(server, 0.95))}")
    print(f"  max                            {ms(max(server))}")
    print(f"  bash to its first line median  {ms(statistics.median(direct))}")


def run(args: argparse.Namespace, workdir: Path) -> None:
    url = args.database_url or f"sqlite:///{workdir / 'data' / 'cyclotron.db'}"
    example = {"plugin": "script", "max_runs": 100, "runs_per_user": 100}
    config = {
        "services": {"example": example},
        "executors": {"local": {"max_parallel": args.tasks}},
    }
    server = LiveServer(workdir, url, config)
    try:
        server.start()
        with server.client() as http:
            base = fan_out(server, http, args, 1)
            many = fan_out(server, http, args, args.subscribers)
        server_latencies = asyncio.run(latencies(server, args.jobs))
    except (BenchFailed, httpx.HTTPError, OSError, TimeoutError) as exc:
        tail = "\n".join(server.log().splitlines()[-40:])
        raise BenchFailed(f"{exc}\n--- end of the server log ---\n{tail}") from exc
    finally:
        server.stop()
    direct_dir = workdir / "direct"
    direct_dir.mkdir()
    direct = bash_first_line(args.jobs, direct_dir)
    print(f"host  {os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.2f} after the run")
    print(f"database  {url.split(':', 1)[0]}, {args.tasks} tasks × {args.lines} lines")
    report_fan_out(base, many)
    report_latency(server_latencies, direct)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=16, help="tasks of the fan-out job")
    parser.add_argument("--lines", type=int, default=250, help="progress lines per task")
    parser.add_argument("--jobs", type=int, default=20, help="jobs timed for the latency")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if min(args.subscribers, args.tasks, args.lines, args.jobs) < 1:
        parser.error("every count must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-bench-"))
    try:
        run(args, workdir)
    except BenchFailed as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
