"""The two engines that run here, side by side, and the merge of many task results.

1. ``builtin`` transport alone: 150 MeV protons in water, one thread, depth-dose sink
   (the same run as ``bench/builtin_engine.py``).
2. ``builtin`` as a task runs it: ex1's project voxelised, transported and scored into all
   four of its outputs (what a user's job pays per primary).
3. ``mcsquare``: 150 MeV protons in a 12 × 12 × 20 cm water box (5 × 5 × 1 mm voxels), on
   1 and on 2 threads (MCsquare's own timer, and the wall clock around the whole run).
4. Merging 100 task results of ex1's size (four estimators, 19 pages, 64,840 values each).

Every rate is printed beside the NumPy floor of spec/engines.md (45k primaries/s at 150 MeV
on one core of this machine) as a ratio measured in the same run. Needs the shared fixtures
(``../shared/fixtures/yaptide/ex1.json``) for 2 and 4.

Run: ``.venv/bin/python bench/engines.py [--primaries 100000] [--mcsquare-primaries 20000]``.
Figures are reported, never enforced; the host line shows the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from builtin_engine import NUMPY_FLOOR, Sink, beam, water_box

from cyclotron.estimators.store import merge_task_files, write_results, write_task_estimators
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


def bench_merge(workdir: Path, estimators: list[dict[str, Any]]) -> None:
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
    start = time.perf_counter()
    merged = merge_task_files(job, list(range(TASKS_MERGED)))
    write_results(job / "results", merged)
    seconds = time.perf_counter() - start
    print(
        f"merge of {TASKS_MERGED} ex1-sized task results ({values:,} values each): "
        f"{seconds:.2f} s reading, merging and writing "
        f"({seconds / TASKS_MERGED * 1e3:.1f} ms per task)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primaries", type=int, default=100_000)
    parser.add_argument("--mcsquare-primaries", type=int, default=20_000)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"150 MeV protons; NumPy prototype floor {NUMPY_FLOOR:,.0f} primaries/s on one core")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        bench_transport(args.primaries)
        estimators = bench_ex1_task(workdir, args.primaries) if EX1.is_file() else None
        bench_mcsquare(workdir, args.mcsquare_primaries)
        if estimators is None:
            print(f"ex1 task and merge skipped: {EX1} is absent")
        else:
            bench_merge(workdir, estimators)


if __name__ == "__main__":
    main()
