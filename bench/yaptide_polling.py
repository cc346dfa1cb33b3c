"""Status polling as the YAPTIDE web UI does it: many clients asking ``GET /jobs/direct``.

Starts its own ``cyclotron serve`` (SQLite inside a temporary data directory unless
``--database-url`` names another database) whose ``shieldhit`` service is the SHIELD-HIT12A
test double, logs one user in, and submits one job whose tasks run for the whole measurement.
Then ``--clients`` clients, each with its own connection and the user's cookies, send one
request every ``--interval`` seconds for ``--seconds`` seconds: first ``GET /`` (the baseline:
no authentication, no database), then ``GET /jobs/direct?job_id=…``. Every answer is checked
(200, the keys ``{message, job_state, job_tasks_status}``, a job state that never goes back).

Run: ``.venv/bin/python bench/yaptide_polling.py [--clients 50] [--seconds 30]
[--interval 0.1] [--database-url postgresql://…]``. Exit status 1 when the server does not
start, an answer is wrong, or the job ends before the measurement does; figures are
reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from upload_latency import percentile, process_cpu_seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import LiveServer  # noqa: E402
from support.yaptide import DOUBLE, PASSWORD, TESTS_DIR, login, status, submit, wait_for  # noqa: E402

STATUS_KEYS = {"message", "job_state", "job_tasks_status"}
# Job states in the order a job can pass through them (yaptide.md §5.2).
STATE_RANK = {
    "UNKNOWN": 0,
    "PENDING": 1,
    "RUNNING": 2,
    "MERGING_QUEUED": 3,
    "MERGING_RUNNING": 4,
    "COMPLETED": 5,
    "FAILED": 5,
    "CANCELED": 5,
}
ACTIVE = {"PENDING", "RUNNING", "MERGING_QUEUED", "MERGING_RUNNING"}
WARM_UP_SECONDS = 2.0
NTASKS = 4


class BenchFailed(RuntimeError):
    pass


@dataclass
class Phase:
    """What one phase of the load saw: latencies of good answers, and every kind of fault."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.faults["transport error"]

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)


Check = Callable[[httpx.Response, dict[str, Any]], str | None]


def root_fault(answer: httpx.Response, seen: dict[str, Any]) -> str | None:
    body = answer.json()
    if not isinstance(body, dict) or not body.get("message"):
        return "GET / without a message"
    return None


def status_fault(answer: httpx.Response, seen: dict[str, Any]) -> str | None:
    """Wrong keys, an unknown state, or a state earlier than one this client saw before."""
    body = answer.json()
    if not isinstance(body, dict) or set(body) != STATUS_KEYS:
        return f"keys {sorted(body) if isinstance(body, dict) else type(body).__name__}"
    state = body["job_state"]
    if state not in STATE_RANK or not isinstance(body["job_tasks_status"], list):
        return f"job_state {state!r}"
    seen["states"][state] += 1
    if STATE_RANK[state] < seen.get("rank", 0):
        return "job_state went backwards"
    seen["rank"] = STATE_RANK[state]
    return None


async def one_client(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    check: Check,
    phase: Phase,
    start: float,
    end: float,
    interval: float,
) -> None:
    """Poll every ``interval`` seconds from ``start`` (a monotonic time) until ``end``."""
    seen: dict[str, Any] = {"states": phase.states}
    tick = start
    await asyncio.sleep(max(0.0, tick - time.monotonic()))
    while time.monotonic() < end:
        sent = time.perf_counter()
        try:
            answer = await client.get(path, params=params)
        except httpx.HTTPError:
            phase.faults["transport error"] += 1
        else:
            took = time.perf_counter() - sent
            phase.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                phase.faults[f"status {answer.status_code}"] += 1
            else:
                try:
                    fault = check(answer, seen)
                except ValueError:
                    fault = "not JSON"
                if fault is None:
                    phase.latencies.append(took)
                else:
                    phase.faults[fault] += 1
        # A fixed cadence, as the UI's timers; a late answer delays only its own client.
        tick = max(tick + interval, time.monotonic())
        await asyncio.sleep(max(0.0, tick - time.monotonic()))


async def load(
    server: LiveServer,
    cookies: httpx.Cookies,
    path: str,
    params: dict[str, str],
    check: Check,
    args: argparse.Namespace,
    seconds: float,
    name: str,
) -> Phase:
    """``args.clients`` clients polling ``path``, their starts spread over one interval."""
    phase = Phase(name)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=server.base_url, cookies=cookies, timeout=30, limits=limits)
        for _ in range(args.clients)
    ]
    assert server.process is not None
    try:
        begin = time.monotonic() + 0.2
        end = begin + seconds
        cpu_before = process_cpu_seconds(server.process.pid)
        client_before = time.process_time()
        await asyncio.gather(
            *(
                one_client(
                    client,
                    path,
                    params,
                    check,
                    phase,
                    begin + args.interval * i / args.clients,
                    end,
                    args.interval,
                )
                for i, client in enumerate(clients)
            )
        )
        phase.wall = time.monotonic() - begin
        phase.server_cpu = process_cpu_seconds(server.process.pid) - cpu_before
        phase.client_cpu = time.process_time() - client_before
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return phase


def bench_config(args: argparse.Namespace, job_seconds: float) -> dict[str, Any]:
    shieldhit = {"plugin": DOUBLE, "seconds": job_seconds}
    return {
        "server": {"root_message": "Hello World!"},
        "services": {"shieldhit": shieldhit},
        # The access token must outlive the measurement: the clients do not refresh it.
        "yaptide": {"access_minutes": max(10.0, job_seconds / 60 + 5)},
    }


def measure(args: argparse.Namespace, workdir: Path) -> tuple[Phase, Phase]:
    job_seconds = 2 * args.seconds + 2 * WARM_UP_SECONDS + 60
    database_url = args.database_url or f"sqlite:///{workdir / 'data' / 'cyclotron.db'}"
    server = LiveServer(
        workdir, database_url, bench_config(args, job_seconds), {"PYTHONPATH": str(TESTS_DIR)}
    )
    try:
        server.start()
        with closing(login(server, f"bench-{uuid.uuid4().hex[:8]}", PASSWORD)) as user:
            job_id = submit(user, ntasks=NTASKS)
            wait_for(user, job_id, lambda s: s["job_state"] == "RUNNING", timeout=60)
            params = {"job_id": job_id}

            def run(path: str, query: dict[str, str], check: Check, seconds: float) -> Phase:
                phase = load(server, user.cookies, path, query, check, args, seconds, path)
                return asyncio.run(phase)

            run("/jobs/direct", params, status_fault, WARM_UP_SECONDS)  # not counted
            baseline = run("/", {}, root_fault, args.seconds)
            polled = run("/jobs/direct", params, status_fault, args.seconds)
            still = status(user, job_id)["job_state"]
            user.delete("/jobs/direct", params=params)
        if still not in ACTIVE:
            raise BenchFailed(f"the job was {still} at the end: it must run the whole time")
        return baseline, polled
    except (BenchFailed, httpx.HTTPError, AssertionError) as exc:
        tail = "\n".join(server.log().splitlines()[-40:])
        raise BenchFailed(f"{exc}\n--- end of the server log ---\n{tail}") from exc
    finally:
        server.stop()


def report(args: argparse.Namespace, backend: str, load_avg: float, phases: list[Phase]) -> bool:
    """Print the figures; whether every answer was right."""

    def ms(value: float) -> str:
        return f"{value * 1000:8.2f} ms"

    offered = args.clients / args.interval
    print(f"clients                 {args.clients}, one request each every {args.interval} s")
    print(f"offered load            {offered:8.1f} requests/s for {args.seconds} s per endpoint")
    print(f"database                {backend}")
    print(
        f"host                    {os.cpu_count()} CPUs, 1-min load {load_avg:.2f} before the run"
    )
    good = True
    medians = {}
    for phase in phases:
        print(f"--- GET {phase.name}")
        print(f"requests                {phase.requests} ({phase.requests / phase.wall:.1f}/s)")
        print(f"non-2xx / 5xx           {phase.non_2xx} / {phase.server_errors}")
        faults = ", ".join(f"{k}: {n}" for k, n in phase.faults.items()) or "none"
        print(f"faults                  {faults}")
        if phase.states:
            print(f"job states seen         {dict(phase.states)}")
        if phase.latencies:
            medians[phase.name] = statistics.median(phase.latencies)
            print(f"latency p50             {ms(medians[phase.name])}")
            print(f"latency p99             {ms(percentile(phase.latencies, 0.99))}")
            print(f"latency max             {ms(max(phase.latencies))}")
        per_request = max(phase.requests, 1)
        print(f"server CPU per request  {ms(phase.server_cpu / per_request)}")
        print(f"client CPU per request  {ms(phase.client_cpu / per_request)}")
        good = good and not phase.faults and bool(phase.latencies)
    if len(medians) == 2:
        base, polled = (medians[p.name] for p in phases)
        base99, polled99 = (percentile(p.latencies, 0.99) for p in phases)
        rates = [p.requests / p.wall for p in phases]
        print("--- GET /jobs/direct against GET /")
        print(f"ratio p50               {polled / base:8.2f} x")
        print(f"ratio p99               {polled99 / base99:8.2f} x")
        print(f"ratio requests/s        {rates[1] / rates[0]:8.2f} x")
    print("every answer right" if good else "SOME ANSWERS WERE WRONG")
    return good


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="polling clients (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per endpoint (default 30)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.interval <= 0:
        parser.error("--clients, --seconds and --interval must be positive")
    load_avg = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-bench-"))
    try:
        phases = measure(args, workdir)
    except (BenchFailed, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    backend = (args.database_url or "sqlite").split(":", 1)[0]
    return 0 if report(args, backend, load_avg, list(phases)) else 1


if __name__ == "__main__":
    sys.exit(main())
