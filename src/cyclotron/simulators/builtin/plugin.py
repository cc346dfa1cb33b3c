"""The ``builtin`` plug-in: Cyclotron's own proton transport runs editor projects here.

Nothing to install and nothing to configure: the engine is part of the package. Options of
the service: ``voxel_mm``, the size of the voxels the geometry is resolved into (by default
the finest that keeps the grid within its memory bound).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from cyclotron import __version__
from cyclotron.domain.ports import TaskCommand
from cyclotron.simulators.builtin import media
from cyclotron.simulators.editor.engine import EditorEngine
from cyclotron.simulators.editor.model import EditorProject, check_supported
from cyclotron.simulators.editor.scoring import DETECTOR_KINDS, SCORABLE_QUANTITIES

PROTON = (1, 1)
COMPILE_CACHE = Path("cache") / "numba"  # in the data folder


def kernel_sources_digest() -> str:
    """A digest of the engine's sources. numba checks a cached kernel against its own file
    only, not the modules it calls into, so each version of the sources gets its own cache."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


class BuiltinSimulator(EditorEngine):
    name: ClassVar[str] = "builtin"
    description: ClassVar[str] = (
        "Cyclotron's condensed-history proton Monte Carlo (NumPy and numba), for editor projects"
    )
    version: ClassVar[str | None] = __version__
    task_module: ClassVar[str] = "cyclotron.simulators.builtin.task"

    def check(self, project: EditorProject) -> None:
        check_supported(
            project,
            engine="builtin",
            particles={PROTON},
            quantities=set(SCORABLE_QUANTITIES),
            detectors=set(DETECTOR_KINDS),
            media=media.supported,
            energies=(media.TABLE_MIN_ENERGY, media.TABLE_MAX_ENERGY),
        )

    compile_cache: Path | None = None

    def attach(self, data_dir: Path) -> None:
        self.compile_cache = data_dir / COMPILE_CACHE / kernel_sources_digest()

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        """The engine's task; its numba kernels compiled once into a cache its tasks share
        (they run the engine on a project's data, never a user's code)."""
        command = super().task_command(workdir, task_index, ntasks, seed=seed)
        if self.compile_cache is None:
            return command
        return replace(command, env={**command.env, "NUMBA_CACHE_DIR": str(self.compile_cache)})

    def sandbox_writable_paths(self) -> tuple[str, ...]:
        return () if self.compile_cache is None else (str(self.compile_cache),)

    def task_arguments(self) -> tuple[str, ...]:
        voxel_mm = self.options.get("voxel_mm")
        return () if voxel_mm is None else ("--voxel-mm", str(float(voxel_mm)))
