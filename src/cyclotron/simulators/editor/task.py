"""One task of an engine that runs editor projects here, as its own process.

``python -m cyclotron.simulators.<engine>.task <workdir> --seed S --primaries N`` reads the
job's ``project.json`` from the task's working directory, prints first the engine that runs
it (its name, version and description: a service may run one engine's jobs on another),
runs the engine, prints ``CYCLOTRON_PROGRESS <done>/<total>`` at least every 2 % of its
primaries and every second (see ``ProgressPrinter``), and writes the task's
``estimators.json``. A refusal or an engine failure ends it with exit code 1 and one line on
stderr saying why (the job's reason).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclotron.domain.ports import SimulatorPlugin
from cyclotron.estimators.store import write_task_estimators
from cyclotron.simulators.editor.engine import PROJECT_FILE
from cyclotron.simulators.editor.model import EditorProject, parse_project
from cyclotron.simulators.script import progress_line

PROGRESS_INTERVAL = 1.0  # seconds between progress lines, at the most
PROGRESS_STEP = 0.02  # of the primaries: a line at least this often


@dataclass(frozen=True)
class TaskSpec:
    """What one task runs: its share of the project's primaries with its own seed."""

    workdir: Path
    project: EditorProject
    primaries: int
    seed: int
    voxel_cm: float | None  # the geometry's voxel size; None lets the engine choose
    threads: int


class ProgressPrinter:
    """Prints the task's progress: whenever another 2 % of its primaries is done, else at
    most once per interval, and always at the end. The count may end above the total: an
    engine that runs whole batches (MCsquare) says how many it ran, which the results and
    the job's status then both count."""

    def __init__(self, total: int, interval: float = PROGRESS_INTERVAL) -> None:
        self.total = total
        self.interval = interval
        self._last = float("-inf")
        self._printed = 0
        self._step = max(1.0, PROGRESS_STEP * total)

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        stepped = done - self._printed >= self._step
        if stepped or done >= self.total or now - self._last >= self.interval:
            self._last, self._printed = now, done
            print(progress_line(done, self.total), flush=True)


Engine = Callable[[TaskSpec, ProgressPrinter], list[dict[str, Any]]]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one task of an editor project.")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--primaries", type=int, required=True)
    parser.add_argument("--voxel-mm", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def engine_line(plugin: type[SimulatorPlugin]) -> str:
    """The first line of a task's output: which engine runs it."""
    version = f" {plugin.version}" if plugin.version else ""
    return f"Engine: {plugin.name}{version} ({plugin.description})"


def run_task(argv: Sequence[str] | None, engine: Engine, plugin: type[SimulatorPlugin]) -> int:
    """Run ``engine`` (of ``plugin``) for the task the arguments describe; the process's exit
    code."""
    print(engine_line(plugin), flush=True)
    args = _arguments(argv)
    try:
        document = json.loads((args.workdir / PROJECT_FILE).read_text(encoding="utf-8"))
        spec = TaskSpec(
            workdir=args.workdir,
            project=parse_project(document),
            primaries=args.primaries,
            seed=args.seed,
            voxel_cm=None if args.voxel_mm is None else args.voxel_mm / 10.0,
            threads=args.threads,
        )
        estimators = engine(spec, ProgressPrinter(args.primaries))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    write_task_estimators(args.workdir, estimators)
    return 0
