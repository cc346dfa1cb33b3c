"""The ``shieldhit`` plug-in: SHIELD-HIT12A, a binary the site supplies (``executable``).

Each task runs ``<executable> -N <seed> <workdir>`` on its own copy of beam.dat, mat.dat,
geo.dat and detect.dat, with NSTAT rewritten to the task's share of the primaries. Progress
comes from the engine's ``Primary particle no. <n> ETR: …`` lines; the ``.bdo`` files a run
leaves are read with pymchelper into estimators, and the completed tasks' estimators are
merged by each page's normalisation (spec/results.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, SimulatorPlugin, TaskCommand
from cyclotron.domain.primaries import nstat_of, split_primaries, with_nstat
from cyclotron.errors import PluginError
from cyclotron.estimators.merge import MergeError
from cyclotron.estimators.store import TASK_FILE, merge_task_files, write_results
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.shieldhit import shieldhit_files
from cyclotron.simulators.outputs import OutputError, read_task_outputs

REQUIRED_FILES = ("beam.dat", "mat.dat", "geo.dat", "detect.dat")
PROGRESS = re.compile(
    r"Primary particle no\.\s+(\d+)"
    r"(?:\s+ETR:\s*(\d+)\s*hours?\s+(\d+)\s*minutes?\s+(\d+)\s*seconds?)?"
)


def write_task_estimators(workdir: Path, estimators: list[dict[str, Any]]) -> None:
    path = workdir / TASK_FILE
    temporary = path.with_name(f".{TASK_FILE}.tmp")
    temporary.write_text(json.dumps({"estimators": estimators}), encoding="utf-8")
    temporary.replace(path)


class ShieldhitSimulator(SimulatorPlugin):
    name: ClassVar[str] = "shieldhit"
    description: ClassVar[str] = "SHIELD-HIT12A particle transport (the site's own executable)"
    input_kinds: ClassVar[tuple[str, ...]] = ("files", "editor")
    result_kind: ClassVar[str] = "estimators"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        executable = self.options.get("executable")
        self.executable = str(executable) if executable else None

    def _resolved(self) -> str | None:
        if not self.executable:
            return None
        found = shutil.which(self.executable)
        return found if found and os.access(found, os.X_OK) else None

    def unavailable_reason(self) -> str | None:
        if not self.executable:
            return "the SHIELD-HIT12A executable is not configured (set executable)"
        if self._resolved() is None:
            return f"the SHIELD-HIT12A executable {self.executable!r} is not an executable file"
        return None

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        try:
            return shieldhit_files(project)
        except ConversionError as exc:
            raise PluginError(f"Cannot convert the project for SHIELD-HIT12A: {exc}") from exc

    def validate(self, input_dir: Path) -> None:
        missing = [name for name in REQUIRED_FILES if not (input_dir / name).is_file()]
        if missing:
            raise PluginError(f"SHIELD-HIT12A input lacks {', '.join(missing)}")
        beam = (input_dir / "beam.dat").read_text(encoding="utf-8", errors="replace")
        if nstat_of(beam) is None:
            raise PluginError("beam.dat has no NSTAT line with a number of primaries >= 1")

    def task_command(self, workdir: Path, task_index: int, ntasks: int) -> TaskCommand:
        beam_path = workdir / "beam.dat"
        beam = beam_path.read_text(encoding="utf-8", errors="replace")
        total = nstat_of(beam)
        if total is None:
            raise PluginError("beam.dat has no NSTAT line")
        share = split_primaries(total, min(ntasks, total))[min(task_index, total - 1)]
        beam_path.write_text(with_nstat(beam, share), encoding="utf-8")
        executable = self._resolved() or str(self.executable)
        return TaskCommand(
            argv=(executable, "-N", str(task_index + 1), str(workdir)),
            save_signal=signal.SIGUSR1,  # the engine saves its estimators, then is stopped
        )

    def parse_progress(self, line: str) -> ProgressReport | None:
        match = PROGRESS.search(line)
        if match is None:
            return None
        eta = None
        if match.group(2) is not None:
            hours, minutes, seconds = (int(match.group(i)) for i in (2, 3, 4))
            eta = float(hours * 3600 + minutes * 60 + seconds)
        return ProgressReport(done=float(match.group(1)), total=0.0, eta_seconds=eta)

    def collect_task(self, workdir: Path) -> None:
        try:
            estimators = read_task_outputs(workdir)
        except OutputError as exc:
            raise PluginError(str(exc)) from exc
        if not estimators:
            raise PluginError("SHIELD-HIT12A left no .bdo output")
        write_task_estimators(workdir, estimators)

    def merge(self, job_dir: Path, completed: list[int]) -> None:
        try:
            write_results(job_dir / "results", merge_task_files(job_dir, completed))
        except MergeError as exc:
            raise PluginError(str(exc)) from exc
