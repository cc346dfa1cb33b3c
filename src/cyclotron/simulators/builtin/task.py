"""One task of the ``builtin`` engine: voxelise, transport, score (see editor/task.py)."""

from __future__ import annotations

import sys
from typing import Any

from cyclotron.simulators.builtin.plugin import BuiltinSimulator
from cyclotron.simulators.builtin.transport import simulate
from cyclotron.simulators.editor.geometry import voxelise
from cyclotron.simulators.editor.scoring import Scoring
from cyclotron.simulators.editor.task import ProgressPrinter, TaskSpec, run_task


def run(spec: TaskSpec, progress: ProgressPrinter) -> list[dict[str, Any]]:
    """Transport the task's primaries through the project and score its outputs."""
    grid = voxelise(spec.project, spacing=spec.voxel_cm)
    scoring = Scoring(spec.project, grid)
    simulated = simulate(grid, spec.project.beam, spec.primaries, spec.seed, scoring.add, progress)
    progress(simulated)
    return scoring.estimators(simulated)


if __name__ == "__main__":
    sys.exit(run_task(None, run, BuiltinSimulator))
