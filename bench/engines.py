"""The two engines that run here, side by side, and the merge of many task results.

1. ``builtin`` transport alone: 150 MeV protons in water, one thread, depth-dose sink
   (the same run as ``bench/builtin_engine.py``).
2. ``builtin`` as a task runs it: ex1's project voxelised, transported and scored into all
   four of its outputs (what a user's job pays per primary).
3. ``mcsquare``: 150 MeV protons in a 12 × 12 × 20 cm water box (5 × 5 × 1 mm voxels), on
   1 and on 2 threads (MCsquare's own timer, and the wall clock around the whole run).
4. Merging 100 task results of ex1's size (four estimators, 19 pages, 98,892 values in all
   per task): the full merge of the JSON task files (as before binary results), each task's
   fold into the running sums as it completes (paid before its COMPLETED event), the final
   step that stores the job's results from the sums, a full re-merge of the tasks' binary
   arrays, and the JSON a face serves produced from the binary results; beside the baseline,
   reading the same 100 tasks' binary arrays and summing them with NumPy.
5. With ``--job-tasks N``: a live server runs a job of N ``builtin`` tasks of ex1 and the time
   from its last task's COMPLETED event to the job's COMPLETED event is read from the event log
   (``--database-url`` for PostgreSQL; SQLite in a temporary directory otherwise).

Every rate is printed beside the NumPy floor of spec/engines.md (45k primaries/s at 150 MeV
on one core of this machine) as a ratio measured in the same run. Needs the shared fixtures
(``../shared/fixtures/yaptide/ex1.json``) for 2, 4 and 5.

Run: ``.venv/bin/python bench/engines.py [--primaries 100000] [--mcsquare-primaries 20000]
[--merge-only] [--job-tasks 100] [--database-url postgresql://…]``. Figures are reported, never
enforced; the host line shows the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy
from builtin_engine import NUMPY_FLOOR, Sink, beam, water_box

from cyclotron.estimators.running import read_arrays
from cyclotron.estimators.store import (
    BOOKKEEPING,
    MERGED_FILE,
    SUMS_FILE,
    TASKS_DIR,
    fold_task,
    merge_job_files,
    merge_task_files,
    read_results,
    write_binary_results,
    write_task_estimators,
)
from cyclotron.simulators.builtin import task as builtin_task
from cyclotron.simulators.builtin.transport import simulate
from cyclotron.simulators.editor.model import parse_project
from cyclotron.simulators.editor.records import Medium, VoxelGrid
from cyclotron.simulators.editor.task import ProgressPrinter, TaskSpec
from cyclotron.simulators.mcsquare.run import run_mcsquare

EX1 = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "yaptide" / "ex1.json"
TASKS_MERGED = 100


def line(name: str, primaries: int, seconds: float, extra: str = "") -> None:
    rate = primaries / seconds
    print(
        f"{name:<34} {rate:>9,.0f} primaries/s  ×{rate / NUMPY_FLOOR:5.2f} the NumPy floor  {extra}"
    )


def bench_transport(primaries: int) -> None:
    simulate(water_box(), beam(), 200, 1, Sink(score=True))  # compile or load the cache
    start = time.perf_counter()
    simulate(water_box(), beam(), primaries, 1, Sink(score=True))
    line("builtin, transport + depth dose", primaries, time.perf_counter() - start)


def ex1_spec(workdir: Path, primaries: int) -> TaskSpec:
    project = parse_project(json.loads(EX1.read_text())["input"]["inputJson"])
    return TaskSpec(workdir, project, primaries, seed=1, voxel_cm=None, threads=1)


def bench_ex1_task(workdir: Path, primaries: int) -> list[dict[str, Any]]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the task's progress lines
        estimators = builtin_task.run(ex1_spec(workdir, primaries), ProgressPrinter(primaries))
    line("builtin, ex1 task (4 outputs)", primaries, time.perf_counter() - start)
    return estimators


def mcsquare_box() -> VoxelGrid:
    return VoxelGrid(
        origin=np.array([-6.0, -6.0, 0.0]),
        spacing=np.array([0.5, 0.5, 0.1]),
        zones=np.zeros((24, 24, 200), dtype=np.int32),
        zone_names=("water",),
        zone_media=np.array([0], dtype=np.int32),
        media=(Medium(276, "WATER, LIQUID", 1.0),),
    )


def bench_mcsquare(workdir: Path, primaries: int) -> None:
    for threads in (1, 2):
        start = time.perf_counter()
        result = run_mcsquare(
            mcsquare_box(), beam(), primaries, 1, workdir / f"mcsquare-{threads}", threads=threads
        )
        wall = time.perf_counter() - start
        line(
            f"mcsquare, {threads} thread{'s' if threads > 1 else ''} (its timer)",
            result.primaries_simulated,
            result.seconds,
            f"wall {result.primaries_simulated / wall:,.0f}/s with CT and output I/O",
        )


def _timed(action: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def bench_merge(workdir: Path, estimators: list[dict[str, Any]], json_merge: bool) -> None:
    job = workdir / "job"
    rng = np.random.default_rng(1)
    for index in range(TASKS_MERGED):
        noisy = json.loads(json.dumps(estimators))
        for estimator in noisy:
            for page in estimator["pages"]:
                values = np.asarray(page["data"]["values"], dtype=float)
                page["data"]["values"] = (values * rng.normal(1.0, 0.02, values.size)).tolist()
        write_task_estimators(job / "tasks" / str(index), noisy)
    values = sum(len(p["data"]["values"]) for e in estimators for p in e["pages"])
    tasks = list(range(TASKS_MERGED))
    print(f"merge of {TASKS_MERGED} ex1-sized task results ({values:,} values each):")
    if json_merge:
        seconds, merged = _timed(lambda: merge_task_files(job, tasks))
        write_seconds, _ = _timed(lambda: write_binary_results(job / "full", merged))
        print(
            f"  full merge of the JSON task files     {seconds + write_seconds:8.3f} s "
            f"({(seconds + write_seconds) / TASKS_MERGED * 1e3:.1f} ms per task)"
        )
    folds = []
    for index in tasks:  # as tasks complete: every higher one still running
        seconds, _ = _timed(
            lambda index=index: fold_task(job, index, range(index + 1, TASKS_MERGED))
        )
        folds.append(seconds)
    final, _ = _timed(lambda: merge_job_files(job, tasks))
    again, _ = _timed(lambda: merge_job_files(job, tasks))
    print(
        f"  fold of one task as it completes      {np.median(folds) * 1e3:8.1f} ms median "
        f"(JSON read and check, binary store, sums; before its COMPLETED event)"
    )
    print(
        f"  final step: results from the sums     {final * 1e3:8.1f} ms "
        f"(run again: {again * 1e3:.1f} ms)"
    )
    packed = job / BOOKKEEPING / TASKS_DIR
    (job / BOOKKEEPING / SUMS_FILE).unlink()
    (job / BOOKKEEPING / MERGED_FILE).unlink()
    remerge, _ = _timed(lambda: merge_job_files(job, tasks))
    print(f"  full re-merge of the binary tasks     {remerge * 1e3:8.1f} ms")

    def numpy_sum() -> None:
        total: dict[str, Any] = {}
        for index in tasks:
            _, arrays = read_arrays(packed / f"{index}.npz")
            for name, array in arrays.items():
                total[name] = total[name] + array if name in total else array.copy()

    floor, _ = _timed(numpy_sum)
    print(f"  baseline: read the same arrays, sum   {floor * 1e3:8.1f} ms (NumPy)")
    edge, stored = _timed(lambda: read_results(job / "results"))
    text, _ = _timed(lambda: json.dumps({"estimators": stored}))
    print(
        f"  JSON at the edge: binary → objects    {edge * 1e3:8.1f} ms, json.dumps "
        f"{text * 1e3:.1f} ms (once per results digest; faces cache it)"
    )


def bench_job(workdir: Path, ntasks: int, database_url: str | None) -> None:
    """A live server runs ``ntasks`` ex1 tasks; the gap is read from the job's event log."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from support.live import LiveServer  # noqa: PLC0415 - the tests' server harness

    workdir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{workdir / 'data' / 'cyclotron.db'}"
    config = {"services": {"builtin": {"plugin": "builtin"}}}
    server = LiveServer(workdir, url, config)
    server.start()
    try:
        with server.client() as http:
            document = json.loads(EX1.read_text())
            project = document["input"]["inputJson"]
            body = {
                "service": "builtin",
                "ntasks": ntasks,
                "input": {"kind": "editor", "project": project, "primaries": ntasks * 10},
            }
            answer = http.post("/api/jobs", json=body)
            answer.raise_for_status()
            job_id = answer.json()["id"]
            while True:
                detail = http.get(f"/api/jobs/{job_id}").json()
                if detail["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.5)
    finally:
        server.stop()
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT kind, task_index, data, created_at FROM events WHERE job_id = :job "
                "ORDER BY seq"
            ),
            {"job": job_id},
        ).all()
    engine.dispose()

    def state(row: Any) -> str:
        data = json.loads(row[2]) if isinstance(row[2], str) else row[2]
        return str(data.get("state")).lower()

    def at(row: Any) -> datetime:
        value = row[3]
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    if detail["status"] != "completed":
        print(f"job of {ntasks} builtin tasks: {detail['status']}: {detail.get('error')}")
        return
    last_task = max((r for r in rows if r[0] == "task_state" and state(r) == "completed"), key=at)
    job_done = next(r for r in rows if r[0] == "state" and state(r) == "completed")
    gap = (at(job_done) - at(last_task)).total_seconds()
    print(
        f"job of {ntasks} builtin tasks ({url.split(':', 1)[0]}): {detail['status']}; "
        f"last task COMPLETED → job COMPLETED {gap * 1e3:.1f} ms (event log)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primaries", type=int, default=100_000)
    parser.add_argument("--mcsquare-primaries", type=int, default=20_000)
    parser.add_argument("--merge-only", action="store_true", help="only 4 (and 5)")
    parser.add_argument("--skip-json-merge", action="store_true", help="4 without the old merge")
    parser.add_argument("--job-tasks", type=int, default=0, help="5: a job of N tasks")
    parser.add_argument("--database-url", default=None, help="5: PostgreSQL instead of SQLite")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"150 MeV protons; NumPy prototype floor {NUMPY_FLOOR:,.0f} primaries/s on one core")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        if not args.merge_only:
            bench_transport(args.primaries)
        primaries = 1_000 if args.merge_only else args.primaries
        estimators = bench_ex1_task(workdir, primaries) if EX1.is_file() else None
        if not args.merge_only:
            bench_mcsquare(workdir, args.mcsquare_primaries)
        if estimators is None:
            print(f"ex1 task and merge skipped: {EX1} is absent")
            return
        bench_merge(workdir, estimators, not args.skip_json_merge)
        if args.job_tasks > 0:
            bench_job(workdir / "server", args.job_tasks, args.database_url)


if __name__ == "__main__":
    main()
