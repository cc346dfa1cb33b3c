"""Server CPU per request of the cheap reads (and one cheap write), beside two baselines.

Starts its own ``cyclotron serve`` (SQLite in a temporary data directory) whose ``shieldhit``
service is the SHIELD-HIT12A test double, and, under the same uvicorn settings, a minimal ASGI
application that answers every request with a small JSON body: the framework-free floor.
Then it sets up what the requests name:

- one YAPTIDE user, logged in (its cookies);
- a 4-task ``shieldhit`` job whose tasks run for longer than the whole measurement (RUNNING);
- 50 ended jobs of that user and one RUNNING job of 1,000 tasks (older than the others: the
  first page of the list shows none of its tasks' sums), written straight into the tables
  (as ``bench/scale.py`` does);
- a 1-task job of the ``reported`` service that a worker reports on with its update key.

Each request is sent over one keep-alive connection, one after another, after a warm-up;
``--rounds`` batches of ``--requests`` requests per route, the routes taking turns so that
other work on the host weighs on each alike. A figure is the least server CPU per request of
its batches, read from ``/proc/<pid>/task/*/schedstat`` (every thread of the server). Every
answer is checked. The worker's updates raise the task's simulated primaries by one each time:
every one is a write.

Prints one line per route: its server CPU per request, the hello-world baseline and ``GET /``
measured in the same run, the ratio to ``GET /``, the target (issue 18) and whether it is met.

Run: ``.venv/bin/python bench/requests.py [--requests 200] [--rounds 5]``. Exit status 1 when
a server does not start or an answer is wrong; the targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from scale import BenchFailed, Loader, expect, host_load, server_cpu, thread_cpu

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import STARTUP_TIMEOUT, LiveServer, free_port  # noqa: E402
from support.yaptide import (  # noqa: E402
    DOUBLE,
    PASSWORD,
    TESTS_DIR,
    fixture_body,
    login,
    submit,
    update_key,
    wait_for,
)

from cyclotron.cli.main import SWITCH_INTERVAL  # noqa: E402
from cyclotron.domain.records import ACCOUNT_OWNERS  # noqa: E402
from cyclotron.storage import counts  # noqa: E402
from cyclotron.storage.database import Database  # noqa: E402

ACCOUNT_OWNER = ACCOUNT_OWNERS + 1  # the first account of a fresh database
LISTED_JOBS = 50
BIG_TASKS = 1000
NTASKS = 4
# The same uvicorn settings as ``cyclotron serve`` (cli/main.py), over an application that
# answers every request at once: what a request costs before any framework.
HELLO = f"""
import sys
import uvicorn

BODY = b'{{"message":"Hello World!"}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": BODY}})


sys.setswitchinterval({SWITCH_INTERVAL!r})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            timeout_graceful_shutdown=15)
"""


def bench_config(seconds: float) -> dict[str, Any]:
    return {
        "server": {"root_message": "Hello World!"},
        "services": {
            "shieldhit": {"plugin": DOUBLE, "seconds": seconds},
            "reported": {"plugin": DOUBLE, "executor": "external"},
            # The loaded jobs' service (bench/scale.py); nothing of it runs here.
            "example": {"plugin": "script"},
        },
        "sandbox": {"mode": "none"},
        "yaptide": {"access_minutes": max(10.0, seconds / 60 + 5)},
    }


def start_hello(workdir: Path, stack: ExitStack) -> tuple[int, str]:
    """The hello-world server: its pid and address."""
    port = free_port()
    script = workdir / "hello.py"
    script.write_text(HELLO)
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)], cwd=workdir, start_new_session=True
    )

    def stop() -> None:
        process.terminate()
        process.wait(timeout=30)

    stack.callback(stop)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process.pid, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise BenchFailed("the hello-world server did not start")


def load_jobs(url: str) -> str:
    """50 ended jobs of the account and a RUNNING one of 1,000 tasks; the latter's id."""
    db = Database(url)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        loader = Loader(db, now)
        start = now - timedelta(days=1)
        for i in range(LISTED_JOBS):
            created = start + timedelta(minutes=i)
            state = "COMPLETED" if i % 10 else "FAILED"
            loader.job(
                owner=ACCOUNT_OWNER,
                name=f"listed {i}",
                created=created,
                state=state,
                stage="done",
                task_states=[state] * (1 + i % 4),
                ended=created + timedelta(seconds=30),
                yaptide_id=f"{created:%Y%m%d-%H%M%S}-{uuid.uuid4()}DIRECT",
            )
        created = start - timedelta(days=1)  # older than every listed job: not on page 1
        big = f"{created:%Y%m%d-%H%M%S}-{uuid.uuid4()}DIRECT"
        loader.job(
            owner=ACCOUNT_OWNER,
            name="a job of 1,000 tasks",
            created=created,
            state="RUNNING",
            stage="running",
            task_states=["COMPLETED"] * 600 + ["RUNNING"] * 390 + ["FAILED"] * 10,
            yaptide_id=big,
        )
        loader.flush()
        with db.transaction() as session:
            counts.fold(session, 0)
        return big
    finally:
        db.dispose()


class Worker:
    """A worker of a ``reported`` job: every update raises task 1's primaries by one."""

    def __init__(self, client: httpx.Client, job_id: str, key: str) -> None:
        self.client, self.job_id, self.key, self.primaries = client, job_id, key, 0

    def __call__(self) -> None:
        self.primaries += 1
        update = {"task_state": "RUNNING", "simulated_primaries": self.primaries}
        body = {
            "simulation_id": self.job_id,
            "update_key": self.key,
            "task_id": 1,
            "update_dict": update,
        }
        expect(
            self.client.post("/tasks", json=body), 202, lambda b: b == {"message": "Task updated"}
        )


TARGETS = {  # issue 18 (and issue 21 for the 1,000 tasks), ms of server CPU per request
    "GET /jobs/direct (4 tasks)": 1.0,
    "GET /user/simulations?page_size=10": 1.0,
    "POST /tasks (a worker's update)": 2.0,
    "GET /jobs/direct (1,000 tasks)": 5.0,
}


def routes(
    server: LiveServer, stack: ExitStack, workdir: Path, big: str
) -> dict[str, Callable[[], None]]:
    user = login(server, f"bench-{uuid.uuid4().hex[:8]}", PASSWORD)
    stack.callback(user.close)
    job_id = submit(user, ntasks=NTASKS)
    wait_for(user, job_id, lambda s: s["job_state"] == "RUNNING", timeout=60)
    project = fixture_body()["input_json"]
    project["beam"]["numberOfParticles"] = 10**8  # room for every update to raise the count
    reported = submit(user, ntasks=1, sim_type="reported", input_json=project)
    anonymous = stack.enter_context(server.client())
    worker = Worker(anonymous, reported, update_key(server, reported))

    def get(path: str, check: Callable[[Any], bool], **params: Any) -> Callable[[], None]:
        return lambda: expect(user.get(path, params=params), 200, check)

    return {
        "GET / (baseline)": lambda: expect(anonymous.get("/"), 200, lambda b: "message" in b),
        "GET /jobs/direct (4 tasks)": get(
            "/jobs/direct",
            lambda b: b["job_state"] == "RUNNING" and len(b["job_tasks_status"]) == NTASKS,
            job_id=job_id,
        ),
        "GET /user/simulations?page_size=10": get(
            "/user/simulations",
            lambda b: len(b["simulations"]) == 10 and b["simulations_count"] >= LISTED_JOBS,
            page_size=10,
        ),
        "POST /tasks (a worker's update)": worker,
        "GET /jobs/direct (1,000 tasks)": get(
            "/jobs/direct", lambda b: len(b["job_tasks_status"]) == BIG_TASKS, job_id=big
        ),
    }


def measure(args: argparse.Namespace, workdir: Path) -> tuple[float, dict[str, float]]:
    with ExitStack() as stack:
        hello_pid, hello_url = start_hello(workdir, stack)
        hello = stack.enter_context(httpx.Client(base_url=hello_url, timeout=30))
        url = f"sqlite:///{workdir / 'data' / 'cyclotron.db'}"
        # The caller's PYTHONPATH too: another checkout's ``src`` measures that code.
        path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
        server = LiveServer(workdir, url, bench_config(3600.0), {"PYTHONPATH": path}).start()
        stack.callback(server.stop)
        assert server.process is not None
        try:
            calls = routes(server, stack, workdir, load_jobs(url))
        except (AssertionError, httpx.HTTPError) as exc:
            tail = "\n".join(server.log().splitlines()[-40:])
            raise BenchFailed(f"{exc}\n--- end of the server log ---\n{tail}") from exc
        calls = {
            "hello-world ASGI (baseline)": lambda: expect(hello.get("/"), 200, lambda b: True),
            **calls,
        }
        pids = {name: server.process.pid for name in calls}
        pids["hello-world ASGI (baseline)"] = hello_pid
        for call in calls.values():  # warm-up
            for _ in range(max(5, args.requests // 5)):
                call()
        found = {name: float("inf") for name in calls}
        for _ in range(args.rounds):
            for name, call in calls.items():
                found[name] = min(found[name], server_cpu(pids[name], call, args.requests))
        # What the server does with no request (its dispatcher, the running tasks' threads):
        # a share of it lands in every figure above.
        before = thread_cpu(server.process.pid)
        time.sleep(1.0)
        after = thread_cpu(server.process.pid)
        idle = sum(t - before.get(tid, 0) for tid, t in after.items()) / 1e9
        print(f"server CPU while idle: {idle * 1000:.1f} ms per second")
        return found.pop("hello-world ASGI (baseline)"), found


def report(hello: float, found: dict[str, float]) -> None:
    root = found["GET / (baseline)"]
    print("server CPU per request, ms (least of the rounds)")
    print("| request | CPU | hello-world ASGI | GET / | ratio to GET / | target | met? |")
    print("|---|---|---|---|---|---|---|")
    for name, cpu in found.items():
        target = TARGETS.get(name)
        met = "" if target is None else ("yes" if cpu * 1000 <= target else "no")
        print(
            f"| {name} | {cpu * 1000:.3f} | {hello * 1000:.3f} | {root * 1000:.3f} | "
            f"{cpu / root:.2f}× | {'' if target is None else f'≤ {target:g}'} | {met} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per batch (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="batches per route (default 5)")
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} CPUs, {host_load()} before the run", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-requests-"))
    try:
        hello, found = measure(args, workdir)
    except (BenchFailed, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(hello, found)
    print(f"host: {host_load()} after the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
