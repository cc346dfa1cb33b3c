"""What engine plug-ins share: merging the completed tasks' estimators (every engine whose
results are estimators), and for site-supplied engines the configured executable and reading a
task's output files into estimators."""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import ClassVar

from cyclotron.domain.ports import SimulatorPlugin
from cyclotron.errors import PluginError
from cyclotron.estimators.merge import MergeError
from cyclotron.estimators.store import fold_task, merge_job_files, write_task_estimators
from cyclotron.simulators.outputs import OutputError, read_task_outputs


class EstimatorEngine(SimulatorPlugin):
    """A plug-in whose tasks each leave estimators, merged by page normalisation."""

    result_kind: ClassVar[str] = "estimators"

    def fold_task(self, job_dir: Path, index: int, unfinished: Collection[int]) -> None:
        fold_task(job_dir, index, unfinished)

    def merge(self, job_dir: Path, completed: list[int]) -> None:
        try:
            merge_job_files(job_dir, completed)
        except MergeError as exc:
            raise PluginError(str(exc)) from exc


class ExecutableEngine(EstimatorEngine):
    """A plug-in whose engine is the ``executable`` option."""

    #: How the engine is named in messages ("SHIELD-HIT12A", "FLUKA").
    engine: ClassVar[str] = ""
    #: Globs of the output files one task leaves.
    outputs: ClassVar[tuple[str, ...]] = ()
    #: Those files as a user reads their name (".bdo", "*_fort.<unit>").
    outputs_named: ClassVar[str] = ""

    @property
    def executable(self) -> str | None:
        configured = self.options.get("executable")
        return str(configured) if configured else None

    def resolved_executable(self) -> str:
        """The executable's path (as configured when it cannot be found)."""
        configured = self.executable or ""
        found = shutil.which(configured)
        return found if found and os.access(found, os.X_OK) else configured

    def sandbox_paths(self) -> tuple[str, ...]:
        """The engine's install: the executable's folder, or the one above a ``bin``."""
        if not self.executable or shutil.which(self.executable) is None:
            return ()
        folder = Path(self.resolved_executable()).resolve().parent
        return (str(folder.parent if folder.name == "bin" else folder),)

    def unavailable_reason(self) -> str | None:
        if not self.executable:
            return f"the {self.engine} executable is not configured (set executable)"
        if shutil.which(self.executable) is None:
            return f"the {self.engine} executable {self.executable!r} is not an executable file"
        return None

    def collect_task(self, workdir: Path) -> None:
        try:
            estimators = read_task_outputs(workdir, self.outputs)
        except OutputError as exc:
            raise PluginError(str(exc)) from exc
        if not estimators:
            raise PluginError(f"{self.engine} left no {self.outputs_named} output")
        write_task_estimators(workdir, estimators)
