"""One task of the ``mcsquare`` engine: voxelise, run MCsquare, map its dose onto the
project's detectors (see editor/task.py). MCsquare scores on the CT's voxels, split where
the detectors' bins are finer (scoring.py).

A project that scores dLET runs MCsquare twice with the same seed: once with its full
physics for the dose, once with the deuterons and alphas of nuclear events stopped where
they are born, whose LET is then that of protons alone (MCsquare's own LET also averages
over deuterons and alphas: 14 MeV/cm at a 150 MeV beam's entrance, against 6.1 for its
protons and 6.2 in SHIELD-HIT12A). Stopping them would change the dose by up to 2 %.

The task reports, last, the primaries the dose run simulated: MCsquare runs whole batches
(10,080 for 10,000 asked), and the estimators are normalised to what it ran.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cyclotron.simulators.editor.geometry import voxelise
from cyclotron.simulators.editor.records import VoxelGrid
from cyclotron.simulators.editor.task import ProgressPrinter, TaskSpec, run_task
from cyclotron.simulators.editor.voxel_scoring import estimators_from_voxels
from cyclotron.simulators.mcsquare.plugin import McsquareSimulator
from cyclotron.simulators.mcsquare.progress import parse_progress
from cyclotron.simulators.mcsquare.run import McsquareResult, run_mcsquare
from cyclotron.simulators.mcsquare.scoring import scoring_grid

DEFAULT_VOXEL_CM = 0.1


def _relay(progress: ProgressPrinter, part: int, parts: int) -> Callable[[str], None]:
    """Echo MCsquare's lines to the task's log; report its percentages in primaries, run
    ``part`` of ``parts`` taking its share of the task's."""

    def on_line(line: str) -> None:
        print(line, flush=True)
        report = parse_progress(line)
        if report is not None and report.total > 0:
            fraction = (part + min(report.done / report.total, 1.0)) / parts
            progress(min(int(progress.total * fraction), progress.total))

    return on_line


def _scores_let(spec: TaskSpec) -> bool:
    return any(q.keyword == "dLET" for o in spec.project.outputs for q in o.quantities)


def _run(
    spec: TaskSpec,
    grids: tuple[VoxelGrid, VoxelGrid],
    workdir: Path,
    relay: Callable[[str], None],
    *,
    full: bool,
) -> McsquareResult:
    grid, scoring = grids
    return run_mcsquare(
        grid,
        spec.project.beam,
        spec.primaries,
        spec.seed,
        workdir,
        threads=spec.threads,
        on_line=relay,
        heavy_secondaries=full,
        scoring=scoring,
    )


def run(spec: TaskSpec, progress: ProgressPrinter) -> list[dict[str, Any]]:
    """Run MCsquare on the task's primaries and score its dose into the project's outputs."""
    grid = voxelise(spec.project, spacing=spec.voxel_cm or DEFAULT_VOXEL_CM)
    grids = (grid, scoring_grid(spec.project, grid))
    scratch = spec.workdir / "mcsquare"
    parts = 2 if _scores_let(spec) else 1
    try:
        result = _run(spec, grids, scratch / "dose", _relay(progress, 0, parts), full=True)
        let = None
        if parts == 2:
            protons = _run(spec, grids, scratch / "let", _relay(progress, 1, parts), full=False)
            let = protons.let
    finally:
        # The CT and the per-voxel outputs are large and read already: the results are the
        # estimators, and MCsquare's own lines are in the task's log.
        shutil.rmtree(scratch, ignore_errors=True)
    progress(result.primaries_simulated)
    return estimators_from_voxels(
        spec.project, grids[1], result.dose, let, result.primaries_simulated
    )


if __name__ == "__main__":
    sys.exit(run_task(None, run, McsquareSimulator))
