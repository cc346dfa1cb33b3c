"""The ``shieldhit`` plug-in: SHIELD-HIT12A, a binary the site supplies (``executable``).

Each task runs ``<executable> -N <seed> <workdir>`` on its own copy of beam.dat, mat.dat,
geo.dat and detect.dat, with NSTAT rewritten to the task's share of the primaries. Progress
comes from the engine's ``Primary particle no. <n> ETR: …`` lines; the ``.bdo`` files a run
leaves are read with pymchelper into estimators, and the completed tasks' estimators are
merged by each page's normalisation (spec/results.md).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, TaskCommand
from cyclotron.domain.primaries import nstat_of, split_primaries, with_nstat
from cyclotron.errors import PluginError
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.shieldhit import shieldhit_files
from cyclotron.simulators.engine import ExecutableEngine

REQUIRED_FILES = ("beam.dat", "mat.dat", "geo.dat", "detect.dat")
PROGRESS = re.compile(
    r"Primary particle no\.\s+(\d+)"
    r"(?:\s+ETR:\s*(\d+)\s*hours?\s+(\d+)\s*minutes?\s+(\d+)\s*seconds?)?"
)


class ShieldhitSimulator(ExecutableEngine):
    name: ClassVar[str] = "shieldhit"
    description: ClassVar[str] = "SHIELD-HIT12A particle transport (the site's own executable)"
    input_kinds: ClassVar[tuple[str, ...]] = ("files", "editor")
    engine: ClassVar[str] = "SHIELD-HIT12A"
    outputs_named: ClassVar[str] = ".bdo"
    outputs: ClassVar[tuple[str, ...]] = ("*.bdo",)

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

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        beam_path = workdir / "beam.dat"
        beam = beam_path.read_text(encoding="utf-8", errors="replace")
        total = nstat_of(beam)
        if total is None:
            raise PluginError("beam.dat has no NSTAT line")
        share = split_primaries(total, min(ntasks, total))[min(task_index, total - 1)]
        beam_path.write_text(with_nstat(beam, share), encoding="utf-8")
        return TaskCommand(
            argv=(self.resolved_executable(), "-N", str(seed), str(workdir)),
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
