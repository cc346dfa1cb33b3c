"""One task of the ``mcsquare`` engine: voxelise, run MCsquare, map its dose onto the
project's detectors (see editor/task.py)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from typing import Any

from cyclotron.simulators.editor.geometry import voxelise
from cyclotron.simulators.editor.task import ProgressPrinter, TaskSpec, run_task
from cyclotron.simulators.editor.voxel_scoring import estimators_from_voxels
from cyclotron.simulators.mcsquare.progress import parse_progress
from cyclotron.simulators.mcsquare.run import run_mcsquare

DEFAULT_VOXEL_CM = 0.1


def _relay(progress: ProgressPrinter) -> Callable[[str], None]:
    """Echo MCsquare's lines to the task's log; report its percentages in primaries."""

    def on_line(line: str) -> None:
        print(line, flush=True)
        report = parse_progress(line)
        if report is not None and report.total > 0:
            progress(int(progress.total * min(report.done / report.total, 1.0)))

    return on_line


def run(spec: TaskSpec, progress: ProgressPrinter) -> list[dict[str, Any]]:
    """Run MCsquare on the task's primaries and score its dose into the project's outputs."""
    grid = voxelise(spec.project, spacing=spec.voxel_cm or DEFAULT_VOXEL_CM)
    scratch = spec.workdir / "mcsquare"
    try:
        result = run_mcsquare(
            grid,
            spec.project.beam,
            spec.primaries,
            spec.seed,
            scratch,
            threads=spec.threads,
            on_line=_relay(progress),
        )
    finally:
        # The CT and the per-voxel outputs are large and read already: the results are the
        # estimators, and MCsquare's own lines are in the task's log.
        shutil.rmtree(scratch, ignore_errors=True)
    return estimators_from_voxels(
        spec.project, grid, result.dose, result.let, result.primaries_simulated
    )


if __name__ == "__main__":
    sys.exit(run_task(None, run))
