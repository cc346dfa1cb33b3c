"""What the engines that run editor projects here share (``builtin``, ``mcsquare``).

The job's input is the project itself, ``project.json``. Submission parses it and checks it
against what the engine can do, so an unsupported particle, quantity, detector or material is
refused with its name before anything is stored. Each task runs ``python -m <task module>``,
which voxelises the geometry, transports its share of the primaries with its own seed, prints
``CYCLOTRON_PROGRESS <done>/<total>`` lines and writes its estimators; the completed tasks'
estimators are merged by page normalisation.
"""

from __future__ import annotations

import json
import sys
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, TaskCommand
from cyclotron.domain.primaries import split_primaries
from cyclotron.errors import PluginError
from cyclotron.estimators.merge import MergeError
from cyclotron.estimators.store import read_task_estimators
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.editor.model import EditorProject, parse_project
from cyclotron.simulators.engine import EstimatorEngine
from cyclotron.simulators.script import progress_report

PROJECT_FILE = "project.json"
MAX_PROJECT_BYTES = 20 * 1024 * 1024


class EditorEngine(EstimatorEngine):
    """A plug-in that transports an editor project with an engine that runs on this machine."""

    input_kinds: ClassVar[tuple[str, ...]] = ("editor",)
    #: The module run with ``python -m`` for each task (it takes ``task_arguments``).
    task_module: ClassVar[str]

    @abstractmethod
    def check(self, project: EditorProject) -> None:
        """Refuse what the engine cannot do (raise UnsupportedFeature naming the item)."""

    def read_project(self, project: Mapping[str, Any]) -> EditorProject:
        """The parsed project, refused with a PluginError naming what the engine cannot do."""
        try:
            model = parse_project(project)
            self.check(model)
        except ConversionError as exc:
            message = f"The {self.name} engine cannot run this project: {exc}"
            raise PluginError(message + self.stand_in_hint("this project")) from exc
        return model

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        self.read_project(project)
        return {PROJECT_FILE: json.dumps(project)}

    def validate(self, input_dir: Path) -> None:
        self._load(input_dir)

    def total_primaries(self, input_dir: Path) -> int | None:
        return self._load(input_dir).primaries

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        total = self._load(workdir).primaries
        share = split_primaries(total, min(ntasks, total))[min(task_index, total - 1)]
        argv = (sys.executable, "-m", self.task_module, str(workdir))
        options = ("--seed", str(seed), "--primaries", str(share))
        return TaskCommand(argv=argv + options + self.task_arguments())

    def task_arguments(self) -> tuple[str, ...]:
        """Options of this service passed on to each task's process."""
        return ()

    def parse_progress(self, line: str) -> ProgressReport | None:
        return progress_report(line)

    def collect_task(self, workdir: Path) -> None:
        try:
            read_task_estimators(workdir)
        except MergeError as exc:
            raise PluginError(f"the {self.name} task left no usable results: {exc}") from exc

    def _load(self, input_dir: Path) -> EditorProject:
        path = input_dir / PROJECT_FILE
        if not path.is_file():
            hint = self.stand_in_hint("its input files")
            raise PluginError(f"{PROJECT_FILE} (the editor project) is required{hint}")
        if path.stat().st_size > MAX_PROJECT_BYTES:
            raise PluginError(f"{PROJECT_FILE} is larger than {MAX_PROJECT_BYTES} bytes")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PluginError(f"{PROJECT_FILE} is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise PluginError(f"{PROJECT_FILE} must hold a JSON object")
        return self.read_project(document)
