"""Memory of one ``cyclotron serve`` process, against a hello-world FastAPI server.

Starts ``cyclotron serve`` with its embedded defaults (no configuration file, an empty
temporary directory as its working directory, so SQLite in ``./cyclotron-data``) on a free
port, and reads the process's resident memory (VmRSS, and PSS from ``smaps_rollup``) after
each step: started, ``GET /api/services``, a few requests of each face (native ``/api``, the
file-upload face with one trivial job, YAPTIDE's with a login), one ``builtin`` job (ex1's
editor project, a few primaries) unless ``--no-builtin``; then once more after a second start
over the same data directory and ``GET /api/services``. The baseline is the smallest server
of the same stack: a FastAPI app with one route under the same uvicorn, after one request.

Run: ``.venv/bin/python bench/memory.py [--no-builtin] [--primaries 1000]``. Exit status 1
when a server does not start or a step does not answer as expected; the target (≤ 120 MiB
RSS after start and ``GET /api/services``) is reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import free_port  # noqa: E402
from support.yaptide import FIXTURES, PASSWORD, UI_ORIGIN  # noqa: E402

TARGET_MIB = 120.0
STARTUP_TIMEOUT = 60.0
JOB_TIMEOUT = 600.0  # the first builtin job compiles the engine's kernels (numba)
BASELINE_APP = """
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root() -> dict[str, str]:
    return {"message": "hello"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


class StepFailed(RuntimeError):
    pass


def memory(pid: int) -> dict[str, float]:
    """RSS, its peak and PSS of a process (MiB), and its thread count (Linux /proc)."""
    status: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return {
        "rss": int(status["VmRSS"].split()[0]) / 1024,
        "hwm": int(status["VmHWM"].split()[0]) / 1024,
        "pss": pss,
        "threads": float(status["Threads"]),
    }


class Server:
    """One server process on a free port, in its own session; stopped with SIGTERM."""

    def __init__(self, command: list[str], cwd: Path, ready_path: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOTRON_")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, str(self.port)],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StepFailed(f"server exited at start-up:\n{self.log()}")
            try:
                if httpx.get(self.base_url + ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise StepFailed(f"server did not start in {STARTUP_TIMEOUT:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def memory(self) -> dict[str, float]:
        time.sleep(0.5)  # let the request threads settle
        return memory(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def expect(answer: httpx.Response, *codes: int) -> httpx.Response:
    if answer.status_code not in codes:
        request = answer.request
        raise StepFailed(
            f"{request.method} {request.url.path} answered {answer.status_code}: {answer.text}"
        )
    return answer


def example_project() -> dict[str, Any]:
    document = json.loads((FIXTURES / "ex1.json").read_text())
    project: dict[str, Any] = document["input"]["inputJson"]
    return project


def services_request(client: httpx.Client) -> None:
    expect(client.get("/api/services"), 200)


def native_requests(client: httpx.Client) -> None:
    expect(client.get("/api/jobs"), 200)
    expect(client.get("/api/services"), 200)
    project = example_project()
    body = {"service": "builtin", "ntasks": 1, "input": {"kind": "editor", "project": project}}
    expect(client.post("/api/validate", json=body), 200)


def upload_requests(client: httpx.Client) -> None:
    """One trivial job (``run.sh`` is ``true``) through the upload face, to its ZIP."""
    answer = expect(
        client.post(
            "/upload",
            files={"file": ("run.sh", b"true\n", "application/x-sh")},
            data={"user_id": "1", "service": "example"},
        ),
        201,
    )
    job_id = answer.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reply = expect(client.get(f"/download/{job_id}"), 200)
        if reply.headers.get("content-type", "").startswith("application/zip"):
            return
        if reply.json().get("status") in {"Failed", "Invalid", "Killed", "Cleaned"}:
            raise StepFailed(f"upload job {job_id} ended {reply.json()}")
        time.sleep(0.05)
    raise StepFailed(f"upload job {job_id} not Completed in 60 s")


def yaptide_requests(client: httpx.Client) -> None:
    ui = {"Origin": UI_ORIGIN}
    credentials = {"username": "bench", "password": PASSWORD}
    expect(client.get("/"), 200)
    expect(client.put("/auth/register", json=credentials, headers=ui), 201)
    expect(client.post("/auth/login", json=credentials, headers=ui), 202)
    expect(client.get("/auth/status", headers=ui), 200)
    expect(client.get("/user/simulations", headers=ui), 200)


def builtin_job(primaries: int) -> Callable[[httpx.Client], None]:
    def run(client: httpx.Client) -> None:
        body = {
            "service": "builtin",
            "ntasks": 1,
            "input": {"kind": "editor", "project": example_project(), "primaries": primaries},
        }
        job_id = expect(client.post("/api/jobs", json=body), 201).json()["id"]
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            detail = expect(client.get(f"/api/jobs/{job_id}"), 200).json()
            if detail["status"] in {"completed", "failed", "cancelled"}:
                break
            if time.monotonic() > deadline:
                raise StepFailed(f"builtin job still {detail['status']} after {JOB_TIMEOUT} s")
            time.sleep(0.5)
        if detail["status"] != "completed":
            raise StepFailed(f"builtin job ended {detail['status']}: {detail.get('error')}")
        expect(client.get(f"/api/jobs/{job_id}/results"), 200)

    return run


def baseline(workdir: Path) -> dict[str, float]:
    script = workdir / "hello.py"
    script.write_text(BASELINE_APP)
    server = Server([sys.executable, str(script)], workdir, "/")
    try:
        return server.memory()
    finally:
        server.stop()


def cyclotron(
    workdir: Path, steps: list[tuple[str, Callable[[httpx.Client], None]]]
) -> list[tuple[str, dict[str, float]]]:
    """Each step's figures, then those of a second start over the same data directory (no
    migration to apply) after ``GET /api/services``."""
    command = [sys.executable, "-m", "cyclotron", "serve", "--port"]
    rows: list[tuple[str, dict[str, float]]] = []
    for first in (True, False):
        server = Server(command, workdir, "/health")
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                if first:
                    rows.append(("started (GET /health)", server.memory()))
                    for name, step in steps:
                        step(client)
                        rows.append((name, server.memory()))
                else:
                    services_request(client)
                    rows.append(("started again, + GET /api/services", server.memory()))
        except (StepFailed, httpx.HTTPError) as exc:
            tail = "\n".join(server.log().splitlines()[-30:])
            raise StepFailed(f"{exc}\n--- end of the server log ---\n{tail}") from exc
        finally:
            server.stop()
    return rows


def report(load: float, base: dict[str, float], rows: list[tuple[str, dict[str, float]]]) -> None:
    print(f"host      {os.cpu_count()} CPUs, 1-min load {load:.2f} before the run")
    print(f"python    {sys.version.split()[0]}")
    print()
    print(f"{'':48s} {'RSS MiB':>8s} {'PSS MiB':>8s} {'peak MiB':>8s} {'threads':>7s}")
    for name, figures in [("baseline: FastAPI hello world, uvicorn", base)] + [
        ("cyclotron: " + name, figures) for name, figures in rows
    ]:
        print(
            f"{name:48s} {figures['rss']:8.1f} {figures['pss']:8.1f} {figures['hwm']:8.1f} "
            f"{figures['threads']:7.0f}"
        )
    print()
    served = rows[1][1]["rss"]
    print(f"over the baseline after GET /api/services   {served - base['rss']:8.1f} MiB")
    met = "met" if served <= TARGET_MIB else "NOT met"
    print(f"target (≤ {TARGET_MIB:.0f} MiB RSS after start and GET /api/services): {met}")
    again = rows[-1][1]["rss"]
    met = "met" if again <= TARGET_MIB else "NOT met"
    print(f"the same bound at the second start ({again:.1f} MiB): {met}")
    last = max(figures["rss"] for _, figures in rows)
    met = "met" if last <= TARGET_MIB else "NOT met"
    print(f"the same bound after every step (highest {last:.1f} MiB): {met}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--no-builtin", action="store_true", help="skip the builtin job")
    parser.add_argument(
        "--primaries", type=int, default=1000, help="primaries of the builtin job (default 1000)"
    )
    args = parser.parse_args()
    steps: list[tuple[str, Callable[[httpx.Client], None]]] = [
        ("+ GET /api/services", services_request),
        ("+ native: /api/jobs, /api/validate", native_requests),
        ("+ upload: one trivial job to its ZIP", upload_requests),
        ("+ YAPTIDE: register, login, lists", yaptide_requests),
    ]
    if not args.no_builtin:
        steps.append((f"+ builtin job ({args.primaries} primaries)", builtin_job(args.primaries)))
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="cyclotron-bench-"))
    try:
        (workdir / "baseline").mkdir()
        (workdir / "serve").mkdir()
        base = baseline(workdir / "baseline")
        rows = cyclotron(workdir / "serve", steps)
    except (StepFailed, httpx.HTTPError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(load, base, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
