"""Cost per request as the database grows: 1,000, 10,000 and 100,000 jobs.

For each database kind (SQLite, and PostgreSQL when ``--postgres-admin-url`` reaches one) and
each size, a fresh database is migrated and filled directly (not through the HTTP API, so
100,000 jobs take a minute or two): ``size`` ended jobs with one task and ten events each,
spread over ten key users, a YAPTIDE account and twenty days (the older half already
cleaned by retention), plus the same runnable work at every size: ten running jobs whose
tasks are leased by a remote worker, twenty queued jobs that cannot be admitted
(``max_runs`` is reached) and one running YAPTIDE job of 1,000 tasks.

A ``cyclotron serve`` is started on each size's database, all at once, and each request is
sent over one keep-alive connection, one after another, after a warm-up. The sizes take
turns: ``--rounds`` batches of ``--requests`` requests per figure and size, one size after
the other, so that other work on the host weighs on every size alike; a figure is the least
server CPU per request of its batches, read from ``/proc/<pid>/task/*/schedstat``
(nanoseconds, every thread of the server). The baseline is ``GET /`` (no authentication,
no database). The 1,000-task job's detail is also asked after this process writes one
task's progress, as a running task's report does: the server cannot answer it from what it
kept of the tasks. A dispatcher tick (housekeeping, retention and admission included: everything
a pass can do) is measured in this process, on a core over the same database, with
``time.process_time``.

Prints, per database kind, one line per request with its CPU per request at each size and
the ratio of the largest size to the first.

Run: ``.venv/bin/python bench/scale.py [--sizes 1000,10000,100000] [--backends
sqlite,postgresql] [--requests 100] [--rounds 5]``. Exit status 1 when a server does not start or an
answer is wrong; the targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import LiveServer  # noqa: E402

from cyclotron.domain.records import ACCOUNT_OWNERS  # noqa: E402
from cyclotron.services.core import build_core  # noqa: E402
from cyclotron.services.scheduling.dispatcher import Dispatcher  # noqa: E402
from cyclotron.settings import load_settings  # noqa: E402
from cyclotron.storage import counts  # noqa: E402
from cyclotron.storage.database import Database  # noqa: E402
from cyclotron.storage.migrate import upgrade  # noqa: E402
from cyclotron.storage.tables import EventRow, JobRow, TaskRow  # noqa: E402

ADMIN_KEY = "cyc_scale_admin_key_0123456789abcdef"
USER_KEY = "cyc_scale_user_key_0123456789abcdef"
USERS = 10  # key users 1..10; user 1 holds USER_KEY
ACCOUNT = "scale-bench"
PASSWORD = "scale-bench-password"
ACCOUNT_OWNER = ACCOUNT_OWNERS + 1  # the first account of a fresh database
SERVICE = "example"
EVENTS_PER_JOB = 10
BIG_TASKS = 1000
RUNNING_JOBS = 10
QUEUED_JOBS = 20
SPAN = timedelta(days=20)  # the ended jobs' creation times; retention keeps 10 days
NEEDLE = "needle in the haystack"
NO_MATCH = "zzqx-nothing"
WORDS = ["Proton", "pencil", "beam", "water", "carbon", "SOBP", "phantom", "detector"]
TARGET_RATIO = 1.5
TARGET_LIST_MS = 1.0
POSTGRES_ADMIN_URL = os.environ.get(
    "CYCLOTRON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- the database -----------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, workdir: Path, admin_url: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'cyclotron.db'}"
        return
    name = f"cyclotron_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Loader:
    """Rows written straight into the tables, in batches, as submission would leave them."""

    BATCH = 5000

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.now = now
        self.jobs: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.count = 0

    def job(
        self,
        *,
        owner: int,
        name: str,
        created: datetime,
        state: str,
        stage: str,
        task_states: list[str],
        ended: datetime | None = None,
        cleaned: bool = False,
        yaptide_id: str | None = None,
    ) -> str:
        job_id = uuid.uuid4().hex
        self.count += 1
        started = created + timedelta(seconds=2)
        self.jobs.append(
            {
                "id": job_id,
                "owner_id": owner,
                "service": SERVICE,
                "name": name,
                "state": state,
                "stage": stage,
                "priority": 0,
                "ntasks": len(task_states),
                "created_at": created,
                "updated_at": ended or started,
                "admitted_at": created + timedelta(seconds=1),
                "started_at": started,
                "ended_at": ended,
                "cleaned_at": ended + timedelta(days=10) if cleaned and ended else None,
                "last_event_seq": EVENTS_PER_JOB,
                "yaptide_id": yaptide_id,
                "attrs": {"title": name, "input_type": "editor", "platform": "DIRECT"}
                if yaptide_id
                else None,
                "executor": None,
            }
        )
        for index, task_state in enumerate(task_states):
            running = task_state == "RUNNING"
            self.tasks.append(
                {
                    "job_id": job_id,
                    "index": index,
                    "state": task_state,
                    "attempt": 1,
                    "seed": index + 1,
                    "lease_owner": "remote-worker:1" if running else None,
                    "lease_expires_at": self.now + timedelta(days=1) if running else None,
                    "progress_done": 500.0 if running else 1000.0,
                    "progress_total": 1000.0,
                    "exit_code": None if running else 0,
                    "started_at": started,
                    "ended_at": None if running else ended or started,
                    "requested_primaries": 1000,
                    "last_update_at": ended or started,
                }
            )
        kinds = ["submitted", "stage", "stage", "task_state", "state"]
        kinds += ["progress"] * (EVENTS_PER_JOB - len(kinds) - 1) + ["state"]
        for seq, kind in enumerate(kinds, start=1):
            self.events.append(
                {
                    "job_id": job_id,
                    "seq": seq,
                    "task_index": 0 if kind in ("task_state", "progress") else None,
                    "kind": kind,
                    "data": {"done": seq * 100, "total": 1000} if kind == "progress" else {},
                    "created_at": created + timedelta(seconds=seq),
                }
            )
        if len(self.events) >= self.BATCH * EVENTS_PER_JOB:
            self.flush()
        return job_id

    def flush(self) -> None:
        with self.db.engine.begin() as conn:
            for table, rows in (
                (JobRow, self.jobs),
                (TaskRow, self.tasks),
                (EventRow, self.events),
            ):
                if rows:
                    conn.execute(insert(table.__table__), rows)
        self.jobs, self.tasks, self.events = [], [], []


def fill(db: Database, size: int) -> dict[str, str]:
    """``size`` ended jobs and the fixed runnable work; the ids the requests name."""
    now = datetime.now(UTC).replace(microsecond=0)
    loader = Loader(db, now)
    step = SPAN / size
    start = now - SPAN - timedelta(hours=1)
    ids: dict[str, str] = {}
    for i in range(size):
        created = start + step * i
        ended = created + timedelta(seconds=30)
        state = "COMPLETED" if i % 20 else "FAILED" if i % 40 else "CANCELED"
        words = " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5))
        yaptide = i % 10 == 9  # a tenth of the jobs are the YAPTIDE account's
        job_id = loader.job(
            owner=ACCOUNT_OWNER if yaptide else 1 + i % USERS,
            name=NEEDLE if i == size // 2 else f"{words} {i}",
            created=created,
            state=state,
            stage="done",
            task_states=[state],
            ended=ended,
            cleaned=ended < now - timedelta(days=10),
            yaptide_id=f"{created:%Y%m%d-%H%M%S}-{uuid.uuid4()}DIRECT" if yaptide else None,
        )
        if i == size // 2 + 1:
            ids["ended"] = job_id
    recent = now - timedelta(minutes=30)
    for i in range(RUNNING_JOBS):
        loader.job(
            owner=2 + i % 3,
            name=f"running {i}",
            created=recent + timedelta(seconds=i),
            state="RUNNING",
            stage="running",
            task_states=["RUNNING"],
        )
    big_states = ["COMPLETED"] * 600 + ["RUNNING"] * 390 + ["FAILED"] * 10
    assert len(big_states) == BIG_TASKS
    big_yaptide = f"{recent:%Y%m%d-%H%M%S}-{uuid.uuid4()}DIRECT"
    ids["big"] = loader.job(
        owner=ACCOUNT_OWNER,
        name="a job of 1,000 tasks",
        created=recent + timedelta(minutes=1),
        state="RUNNING",
        stage="running",
        task_states=big_states,
        yaptide_id=big_yaptide,
    )
    ids["big_yaptide"] = big_yaptide
    loader.flush()
    # Queued jobs wait for admission; the running ones hold every run of the service.
    for i in range(QUEUED_JOBS):
        loader.job(
            owner=5 + i % 4,
            name=f"queued {i}",
            created=recent + timedelta(minutes=2, seconds=i),
            state="PENDING",
            stage="queued",
            task_states=["PENDING"],
        )
    for row in loader.jobs:
        row["admitted_at"] = row["started_at"] = None
    for row in loader.tasks:
        row["started_at"] = row["ended_at"] = row["exit_code"] = None
        row["progress_done"] = 0.0
    for row in loader.events:
        row["seq"] = 1
    for row in loader.jobs:
        row["last_event_seq"] = 1
    loader.events = [e for e in loader.events if e["kind"] == "submitted"]
    loader.flush()
    with db.transaction() as session:  # as the server's dispatcher does every second
        counts.fold(session, 0)
    if db.kind == "postgresql":  # what autovacuum does to a table that grew
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return ids


# -- the measurement --------------------------------------------------------------------------


def server_config() -> dict[str, Any]:
    return {
        "auth": {
            "enabled": True,
            "keys": [
                {"sha256": sha256(ADMIN_KEY), "user_id": 0, "admin": True},
                {"sha256": sha256(USER_KEY), "user_id": 1, "admin": False},
            ],
        },
        # The server's own dispatcher sleeps between wake-ups; the tick is measured apart.
        "dispatch": {"interval": 3600.0},
        "retention": {"interval": 3600.0},
        "sandbox": {"mode": "none"},
        "services": {
            SERVICE: {
                "plugin": "script",
                "max_runs": RUNNING_JOBS,
                "runs_per_user": RUNNING_JOBS,
                "max_queued": 10_000_000,
                "max_queued_per_user": 10_000_000,
            }
        },
    }


class BenchFailed(RuntimeError):
    pass


def thread_cpu(pid: int) -> dict[str, int]:
    """Nanoseconds on a CPU of each thread of a process (``/proc/<pid>/task/*/schedstat``)."""
    times: dict[str, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with suppress(OSError, ValueError, IndexError):  # the thread ended meanwhile
            times[tid] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return times


def server_cpu(pid: int, call: Callable[[], None], count: int) -> float:
    """Seconds of the server's CPU per call, over ``count`` calls: each thread's growth (a
    thread that ends during the batch takes its share with it; the server's threads live)."""
    before = thread_cpu(pid)
    for _ in range(count):
        call()
    after = thread_cpu(pid)
    return sum(t - before.get(tid, 0) for tid, t in after.items()) / 1e9 / count


def own_cpu(call: Callable[[], None], count: int) -> float:
    before = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - before) / count


def expect(answer: httpx.Response, status: int, check: Callable[[Any], bool]) -> None:
    if answer.status_code != status or not check(answer.json()):
        raise BenchFailed(f"{answer.request.url}: {answer.status_code} {answer.text[:300]}")


def task_progress(db: Database, job_id: str) -> Callable[[], None]:
    """A write as a running task's progress report makes, one task of the job at a time (by
    the bench, not the server: its CPU is not counted)."""
    running = itertools.cycle(range(600, 990))

    def write() -> None:
        index = next(running)
        with db.engine.begin() as conn:
            conn.execute(
                update(TaskRow)
                .where(TaskRow.job_id == job_id, TaskRow.index == index)
                .values(
                    progress_done=TaskRow.progress_done + 0.5,
                    last_update_at=datetime.now(UTC),
                )
            )

    return write


def requests_of(
    admin: httpx.Client,
    user: httpx.Client,
    account: httpx.Client,
    ids: dict[str, str],
    size: int,
    progress: Callable[[], None],
) -> dict[str, Callable[[], None]]:
    script = {"kind": "files", "files": {"run.sh": "true\n"}}

    def changed_detail() -> None:
        progress()
        get(admin, f"/api/jobs/{ids['big']}", lambda b: len(b["tasks"]) == BIG_TASKS)

    def get(client: httpx.Client, path: str, check: Callable[[Any], bool], **params: Any) -> None:
        expect(client.get(path, params=params), 200, check)

    return {
        "GET / (baseline)": lambda: get(admin, "/", lambda b: True),
        "list: GET /api/jobs, all jobs (admin)": lambda: get(
            admin, "/api/jobs", lambda b: len(b["jobs"]) == 20 and b["total"] >= size
        ),
        "list: one user's jobs": lambda: get(
            user, "/api/jobs", lambda b: len(b["jobs"]) == 20 and b["total"] >= size // USERS
        ),
        "list: one user's, status=completed": lambda: get(
            user, "/api/jobs", lambda b: len(b["jobs"]) == 20, status="completed"
        ),
        "list: GET /user/simulations": lambda: get(
            account, "/user/simulations", lambda b: b["simulations_count"] >= size // 10
        ),
        "search: no match": lambda: get(
            admin, "/api/jobs", lambda b: b["total"] == 0, search=NO_MATCH
        ),
        "search: one match": lambda: get(
            admin, "/api/jobs", lambda b: b["total"] == 1, search=NEEDLE.split()[-1]
        ),
        "detail: GET /api/jobs/{id}": lambda: get(
            admin, f"/api/jobs/{ids['ended']}", lambda b: len(b["tasks"]) == 1
        ),
        "detail: 1,000 tasks": lambda: get(
            admin, f"/api/jobs/{ids['big']}", lambda b: len(b["tasks"]) == BIG_TASKS
        ),
        "detail: 1,000 tasks, one changed before each": changed_detail,
        "YAPTIDE status: 1,000 tasks": lambda: get(
            account,
            "/jobs/direct",
            lambda b: len(b["job_tasks_status"]) == BIG_TASKS,
            job_id=ids["big_yaptide"],
        ),
        "submit: POST /api/jobs": lambda: expect(
            admin.post("/api/jobs", json={"service": SERVICE, "input": script}),
            201,
            lambda b: b["status"] == "pending",
        ),
    }


TICK = "dispatcher tick (in this process)"


@dataclass
class Site:
    """One size: its database, its server and what is asked of it."""

    size: int
    pid: int
    calls: dict[str, Callable[[], None]]
    tick: Callable[[], None]


def open_site(
    stack: ExitStack, backend: str, size: int, args: argparse.Namespace, workdir: Path
) -> Site:
    url = stack.enter_context(fresh_database(backend, workdir, args.postgres_admin_url))
    db = Database(url)
    stack.callback(db.dispose)
    upgrade(db)
    began = time.monotonic()
    ids = fill(db, size)
    took = time.monotonic() - began
    print(f"  {backend} {size:>7,} jobs loaded in {took:.0f} s", flush=True)
    (workdir / "server").mkdir()
    server = LiveServer(workdir / "server", url, server_config())
    server.start()
    stack.callback(server.stop)
    assert server.process is not None
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    admin = stack.enter_context(server.client(headers=headers))
    user = stack.enter_context(server.client(headers={"Authorization": f"Bearer {USER_KEY}"}))
    account = stack.enter_context(server.client())
    who = {"username": ACCOUNT, "password": PASSWORD}
    account.put("/auth/register", json=who)
    login = account.post("/auth/login", json=who)
    if login.status_code != 202:
        raise BenchFailed(f"login: {login.status_code} {login.text}")
    return Site(
        size,
        server.process.pid,
        requests_of(admin, user, account, ids, size, task_progress(db, ids["big"])),
        dispatcher_tick(stack, url, workdir),
    )


def dispatcher_tick(stack: ExitStack, url: str, workdir: Path) -> Callable[[], None]:
    """One full dispatcher pass over the site's database, housekeeping and retention forced."""
    config = workdir / "tick.toml"
    config.write_text("")
    overrides = {k: v for k, v in server_config().items() if k != "auth"}
    overrides["server"] = {"database_url": url, "data_dir": str(workdir / "server" / "data")}
    core = build_core(load_settings(config, environ={}, overrides=overrides))
    stack.callback(core.close)
    dispatcher = Dispatcher(core)

    def tick() -> None:
        dispatcher._last_recovery = dispatcher._last_cleaning = float("-inf")
        dispatcher.run_once()

    return tick


def measure(sites: list[Site], args: argparse.Namespace) -> dict[int, dict[str, float]]:
    """Each figure's batches taken in turn on every site, so that what else loads the host
    weighs on every size alike; each figure is the least CPU per call of its batches."""
    names = [*sites[0].calls, TICK]
    found: dict[int, dict[str, float]] = {site.size: {} for site in sites}
    for name in names:
        ticks = name == TICK
        count = max(10, args.requests // 10) if ticks else args.requests
        for site in sites:  # warm-up
            call = site.tick if ticks else site.calls[name]
            for _ in range(max(3, count // 10)):
                call()
        for _ in range(args.rounds):
            for site in sites:
                if ticks:
                    figure = own_cpu(site.tick, count)
                else:
                    figure = server_cpu(site.pid, site.calls[name], count)
                best = found[site.size].get(name, float("inf"))
                found[site.size][name] = min(best, figure)
        print(f"  measured {name}", flush=True)
    return found


def report(backend: str, sizes: list[int], results: dict[int, dict[str, float]]) -> None:
    names = list(results[sizes[0]])
    head = " | ".join(f"{size:,} jobs" for size in sizes)
    print(f"\n{backend}: server CPU per request, ms (ratio: {sizes[-1]:,} to {sizes[0]:,})")
    print(f"| request | {head} | ratio |")
    print("|---|" + "---|" * len(sizes) + "---|")
    for name in names:
        cells = " | ".join(f"{results[size][name] * 1000:.3f}" for size in sizes)
        ratio = results[sizes[-1]][name] / results[sizes[0]][name]
        print(f"| {name} | {cells} | {ratio:.2f}× |")
    largest = results[sizes[-1]]
    listing = largest["list: GET /api/jobs, all jobs (admin)"] * 1000
    print(
        f"\ntargets: every ratio ≤ {TARGET_RATIO}×; a list page ≤ {TARGET_LIST_MS} ms at "
        f"{sizes[-1]:,} jobs (here {listing:.3f} ms, "
        f"{listing - largest['GET / (baseline)'] * 1000:.3f} ms above GET /)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=100, help="per batch")
    parser.add_argument("--rounds", type=int, default=5, help="batches per figure and size")
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"host: {os.cpu_count()} CPUs, {host_load()}; {args.rounds} batches of "
        f"{args.requests} requests per figure and size",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-scale-"))
    try:
        for backend in args.backends.split(","):
            with ExitStack() as stack:
                sites = []
                for size in sizes:
                    site_dir = workdir / f"{backend}-{size}"
                    site_dir.mkdir()
                    sites.append(open_site(stack, backend, size, args, site_dir))
                results = measure(sites, args)
            report(backend, sizes, results)
            print(host_load())
    except BenchFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def host_load() -> str:
    load = os.getloadavg()
    return f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


if __name__ == "__main__":
    sys.exit(main())
