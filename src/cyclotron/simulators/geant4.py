"""The ``geant4`` plug-in: the site's own Geant4 application (``executable``).

Geant4 is a toolkit, not a program: the site supplies an application built on it that is run
as ``<executable> run.mac`` in the task's working directory, reads the geometry from
``geometry.gdml`` beside the macro (G4GDMLParser), registers the command-based scorer
(``G4ScoringManager::GetScoringManager()`` before the run manager starts) and a
``G4GeneralParticleSource``, then executes the macro in batch mode. The YAPTIDE converter's
files (``geometry.gdml`` and ``run.mac``) are written for exactly such an application.

Each task runs its own copy of the macro with the first ``/run/beamOn`` set to its share of the
events and ``/random/setSeeds <task> <task + 65536>`` just before it (an existing setSeeds is
replaced). Geant4 prints per-event lines only when asked, so a macro without
``/run/printProgress`` gets one before the beamOn, every 1 % of the task's events; the
``--> Event <n> starts`` lines it produces (``G4WT<k> > `` in front when multi-threaded) are
the progress. The files that ``/score/dumpQuantityToFile`` names are read into estimators by
``geant4_outputs``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import MAX_SEED, ProgressReport, TaskCommand
from cyclotron.domain.primaries import split_primaries
from cyclotron.errors import PluginError
from cyclotron.estimators.store import write_task_estimators
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.geant4 import GDML_FILE, MACRO_FILE, geant4_files
from cyclotron.simulators.engine import ExecutableEngine
from cyclotron.simulators.geant4_outputs import (
    BEAM_ON,
    beam_on_of,
    parse_scoring,
    read_geant4_outputs,
)
from cyclotron.simulators.outputs import OutputError

SET_SEEDS = re.compile(r"^[ \t]*/random/setSeeds\b.*$", re.MULTILINE)
PRINT_PROGRESS = re.compile(r"^[ \t]*/run/printProgress\b", re.MULTILINE)
EVENT_STARTS = re.compile(r"--> Event (\d+) starts")
SECOND_SEED_OFFSET = 65536
PROGRESS_STEPS = 100


def with_task_run(macro: str, events: int, seed: int) -> str:
    """The macro with its first beamOn set to ``events`` and the seeds set from ``seed``.

    Only those lines change: the seeds line replaces a ``/random/setSeeds`` before the beamOn or
    goes just before it, as does a ``/run/printProgress`` when none comes before it.
    """
    match = BEAM_ON.search(macro)
    if match is None:
        raise PluginError("the Geant4 macro has no /run/beamOn with a number of events")
    seeds = f"/random/setSeeds {seed} {seed + SECOND_SEED_OFFSET}"
    head, tail = macro[: match.start()], macro[match.end() :]
    before: list[str] = []
    if SET_SEEDS.search(head) is None:
        before.append(seeds)
    if PRINT_PROGRESS.search(head) is None:
        before.append(f"/run/printProgress {max(1, events // PROGRESS_STEPS)}")
    beam_on = "".join(f"{line}\n" for line in before) + f"/run/beamOn {events}"
    return SET_SEEDS.sub(seeds, head, count=1) + beam_on + tail


class Geant4Progress:
    """One task's progress: the highest event number seen starting (threads interleave)."""

    def __init__(self) -> None:
        self._highest = -1

    def __call__(self, line: str) -> ProgressReport | None:
        match = EVENT_STARTS.search(line)
        if match is None:
            return None
        event = int(match.group(1))
        if event <= self._highest:
            return None
        self._highest = event
        # Events 0 … n-1 have started before event n: n is a lower bound of those done.
        return ProgressReport(done=float(event), total=0.0)


class Geant4Simulator(ExecutableEngine):
    name: ClassVar[str] = "geant4"
    description: ClassVar[str] = "Geant4 particle transport (the site's GDML + macro application)"
    input_kinds: ClassVar[tuple[str, ...]] = ("files", "editor")
    engine: ClassVar[str] = "Geant4"
    # A macro sent as input files may run commands (/control/shell): a user's code.
    runs_user_code: ClassVar[bool] = True
    outputs_named: ClassVar[str] = "/score/dumpQuantityToFile"
    # /random/setSeeds ends its list at a 0; both seeds stay within a 32-bit int.
    seed_range: ClassVar[tuple[int, int]] = (1, MAX_SEED - SECOND_SEED_OFFSET)

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        try:
            return geant4_files(project)
        except ConversionError as exc:
            raise PluginError(f"Cannot convert the project for Geant4: {exc}") from exc

    @staticmethod
    def _macro(directory: Path) -> str:
        path = directory / MACRO_FILE
        if not path.is_file():
            raise PluginError(f"Geant4 input lacks {MACRO_FILE}")
        return path.read_text(encoding="utf-8", errors="replace")

    def validate(self, input_dir: Path) -> None:
        if not (input_dir / GDML_FILE).is_file():
            raise PluginError(f"Geant4 input lacks {GDML_FILE}")
        macro = self._macro(input_dir)
        runs = BEAM_ON.findall(macro)
        if len(runs) != 1 or int(runs[0]) < 1:
            raise PluginError(
                f"{MACRO_FILE} must hold exactly one /run/beamOn with at least one event"
            )
        try:
            scoring = parse_scoring(macro)
        except ValueError as exc:
            raise PluginError(f"{MACRO_FILE}: {exc}") from exc
        if not scoring.dumps:
            raise PluginError(f"{MACRO_FILE} has no /score/dumpQuantityToFile: nothing to read")

    def total_primaries(self, input_dir: Path) -> int | None:
        path = input_dir / MACRO_FILE
        return beam_on_of(path.read_text(errors="replace")) if path.is_file() else None

    def set_total_primaries(self, input_dir: Path, total: int) -> None:
        macro = self._macro(input_dir)
        match = BEAM_ON.search(macro)
        if match is None:
            raise PluginError(f"{MACRO_FILE} has no /run/beamOn")
        start, end = match.span(1)
        (input_dir / MACRO_FILE).write_text(
            macro[:start] + str(total) + macro[end:], encoding="utf-8"
        )

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        macro = self._macro(workdir)
        total = beam_on_of(macro)
        if total is None or total < 1:
            raise PluginError(f"{MACRO_FILE} has no /run/beamOn")
        share = split_primaries(total, min(ntasks, total))[min(task_index, total - 1)]
        (workdir / MACRO_FILE).write_text(with_task_run(macro, share, seed), encoding="utf-8")
        return TaskCommand(argv=(self.resolved_executable(), MACRO_FILE))

    def progress_parser(self) -> Callable[[str], ProgressReport | None]:
        return Geant4Progress()

    def collect_task(self, workdir: Path) -> None:
        try:
            estimators = read_geant4_outputs(workdir / MACRO_FILE)
        except OutputError as exc:
            raise PluginError(str(exc)) from exc
        if not estimators:
            raise PluginError(f"Geant4 left no {self.outputs_named} output")
        write_task_estimators(workdir, estimators)
