"""The ``mcsquare`` plug-in: the MCsquare proton Monte Carlo (UCLouvain, Apache-2.0), whose
binary and physics data ship in the ``opentps-core`` wheel, runs editor projects here.

The project's geometry is voxelised into a CT whose every voxel carries its zone's material
and density, the beam becomes a plan of spots with a beam model made for it (plan.py), and
the dose and the dose-averaged LET of protons MCsquare scores per voxel are mapped back onto
the project's detectors (see task.py). MCsquare scores no fluence and transports protons only;
projects asking for more (a dLET not filtered to protons included) are refused at
submission, naming what they ask for. Options: ``voxel_mm`` (the CT's voxel size) and
``threads`` (MCsquare's threads per task, 1 by default: tasks already run side by side).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar

from cyclotron.domain.ports import MAX_SEED, TaskCommand
from cyclotron.simulators.editor.engine import EditorEngine
from cyclotron.simulators.editor.model import EditorProject, check_supported
from cyclotron.simulators.editor.scoring import DETECTOR_KINDS
from cyclotron.simulators.editor.voxel_scoring import VOXEL_QUANTITIES, check_voxel_scorable
from cyclotron.simulators.mcsquare import install
from cyclotron.simulators.mcsquare.inputs import STOPPING_POWER_MAX_ENERGY, supported_icru

PROTON = (1, 1)


class McsquareSimulator(EditorEngine):
    name: ClassVar[str] = "mcsquare"
    description: ClassVar[str] = (
        "MCsquare proton Monte Carlo (from opentps-core), for editor projects"
    )
    version: ClassVar[str | None] = install.version()
    task_module: ClassVar[str] = "cyclotron.simulators.mcsquare.task"
    seed_range: ClassVar[tuple[int, int]] = (1, MAX_SEED)  # RNG_Seed must be positive

    def check(self, project: EditorProject) -> None:
        check_supported(
            project,
            engine="mcsquare",
            particles={PROTON},
            quantities=set(VOXEL_QUANTITIES),
            detectors=set(DETECTOR_KINDS),
            media=supported_icru,
            energies=(0.0, STOPPING_POWER_MAX_ENERGY),
        )
        check_voxel_scorable(project)

    def unavailable_reason(self) -> str | None:
        return install.unavailable_reason()

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        # The binary's run bit is set here, by the server: its task runs in a sandbox where the
        # wheel is read-only and belongs to another user.
        with contextlib.suppress(install.EngineMissing):
            install.locate()
        return super().task_command(workdir, task_index, ntasks, seed=seed)

    def task_arguments(self) -> tuple[str, ...]:
        arguments: list[str] = []
        if self.options.get("voxel_mm") is not None:
            arguments += ["--voxel-mm", str(float(self.options["voxel_mm"]))]
        arguments += ["--threads", str(int(self.options.get("threads", 1)))]
        return tuple(arguments)
