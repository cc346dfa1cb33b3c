"""The ``topas`` plug-in: TOPAS, a program the site supplies (``executable``).

Each task runs ``<executable> <parameter file>`` in its working directory on its own copy of
the job's one parameter file (``*.txt``), with ``So/<beam>/NumberOfHistoriesInRun`` set to the
task's share of the histories and ``i:Ts/Seed`` to the task's number (added when absent);
nothing else changes. TOPAS reports progress with ``Begin processing for Run: <r>, History: <n>``
lines (``G4WT<k> > `` in front when multi-threaded, every ``Ts/ShowHistoryCountAtInterval``
histories; without that parameter it prints none) and ends with ``Particle source <beam>: Total
number of histories: <n>``. The scorers' ``*.csv`` files are read with pymchelper's TOPAS reader,
which takes each file's histories from the parameter file its header names; a page holds the
scorer's per-history ``Mean`` and is merged as a weighted mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, TaskCommand
from cyclotron.domain.primaries import split_primaries
from cyclotron.errors import PluginError
from cyclotron.estimators.store import write_task_estimators
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.topas import topas_files
from cyclotron.simulators.engine import ExecutableEngine
from cyclotron.simulators.outputs import OutputError, estimator_document

HISTORIES = re.compile(
    r"^([ \t]*i:So/[^/\s=]+/NumberOfHistoriesInRun[ \t]*=[ \t]*)(\S+)(.*)$",
    re.MULTILINE | re.IGNORECASE,
)
SEED = re.compile(r"^([ \t]*i:Ts/Seed[ \t]*=[ \t]*)(\S+)(.*)$", re.MULTILINE | re.IGNORECASE)
BEGIN_HISTORY = re.compile(r"Begin processing for Run: \d+, History: (\d+)")
TOTAL_HISTORIES = re.compile(r"^Particle source \S+: Total number of histories: (\d+)")
# Per-history averages; LET is an average over the scored particles (spec/results.md §8).
AVERAGED_QUANTITIES = frozenset({"ProtonLET"})


def histories_of(parameters: str) -> int | None:
    """The source's ``NumberOfHistoriesInRun`` (None if absent, not a whole number or < 1)."""
    match = HISTORIES.search(parameters)
    if match is None or not match.group(2).isdigit() or int(match.group(2)) < 1:
        return None
    return int(match.group(2))


def _read(path: Path) -> str:
    """The file's text with its line endings kept (TOPAS files are often CRLF)."""
    return path.read_bytes().decode("utf-8", errors="replace")


def with_histories(parameters: str, histories: int) -> str:
    """The parameter file with its source's ``NumberOfHistoriesInRun`` replaced."""
    return HISTORIES.sub(lambda m: f"{m.group(1)}{histories}{m.group(3)}", parameters, count=1)


def with_task_histories(parameters: str, histories: int, seed: int) -> str:
    """The parameter file with its histories and ``Ts/Seed`` replaced (the seed added if absent)."""
    text = with_histories(parameters, histories)
    if SEED.search(text) is None:
        newline = "\r\n" if "\r\n" in text else "\n"
        separator = "" if not text or text.endswith("\n") else newline
        return f"{text}{separator}i:Ts/Seed = {seed}{newline}"
    return SEED.sub(lambda m: f"{m.group(1)}{seed}{m.group(3)}", text, count=1)


class TopasProgress:
    """One task's progress: the highest history seen beginning (threads interleave)."""

    def __init__(self) -> None:
        self._highest = -1

    def __call__(self, line: str) -> ProgressReport | None:
        total = TOTAL_HISTORIES.match(line)
        if total is not None:
            done = float(total.group(1))
            return ProgressReport(done=done, total=done)
        match = BEGIN_HISTORY.search(line)
        if match is None or int(match.group(1)) <= self._highest:
            return None
        self._highest = int(match.group(1))
        # Histories 0 … n-1 began before history n: n is a lower bound of those done.
        return ProgressReport(done=float(self._highest), total=0.0)


def read_topas_estimator(path: Path) -> dict[str, Any]:
    """One scorer's CSV file as an estimator named after the file. Raises OutputError."""
    from pymchelper.estimator import Estimator
    from pymchelper.readers.topas import TopasReader

    estimator = Estimator()
    try:
        readable = TopasReader(str(path)).read(estimator)
    except Exception as exc:  # the reader fails on bad text with whatever it hits
        raise OutputError(path, f"not a readable TOPAS CSV ({type(exc).__name__}: {exc})") from exc
    if not readable or not estimator.pages:
        raise OutputError(path, "not a TOPAS scorer output with a Mean column")
    document = estimator_document(estimator, path, str(estimator.file_corename))
    for page in document["pages"]:
        averaged = page["metadata"].get("dettyp") in AVERAGED_QUANTITIES
        page["metadata"]["page_normalized"] = "3" if averaged else "2"
    return document


class TopasSimulator(ExecutableEngine):
    name: ClassVar[str] = "topas"
    description: ClassVar[str] = "TOPAS particle transport (the site's own topas)"
    input_kinds: ClassVar[tuple[str, ...]] = ("files", "editor")
    engine: ClassVar[str] = "TOPAS"
    outputs_named: ClassVar[str] = "*.csv"
    outputs: ClassVar[tuple[str, ...]] = ("*.csv",)

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        try:
            return topas_files(project)
        except ConversionError as exc:
            raise PluginError(f"Cannot convert the project for TOPAS: {exc}") from exc

    @staticmethod
    def _parameter_file(directory: Path) -> Path:
        found = sorted(directory.glob("*.txt"))
        if len(found) != 1:
            raise PluginError(
                f"TOPAS input must be exactly one parameter file (*.txt), found {len(found)}"
            )
        return found[0]

    def validate(self, input_dir: Path) -> None:
        text = _read(self._parameter_file(input_dir))
        sources = HISTORIES.findall(text)
        if len(sources) != 1 or histories_of(text) is None:
            raise PluginError(
                "the TOPAS parameter file must set NumberOfHistoriesInRun (a whole number >= 1) "
                f"of exactly one source, found {len(sources)}"
            )

    def total_primaries(self, input_dir: Path) -> int | None:
        found = sorted(input_dir.glob("*.txt"))
        return histories_of(_read(found[0])) if len(found) == 1 else None

    def set_total_primaries(self, input_dir: Path, total: int) -> None:
        path = self._parameter_file(input_dir)
        path.write_bytes(with_histories(_read(path), total).encode("utf-8"))

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        path = self._parameter_file(workdir)
        text = _read(path)
        total = histories_of(text)
        if total is None:
            raise PluginError("the TOPAS parameter file has no NumberOfHistoriesInRun")
        share = split_primaries(total, min(ntasks, total))[min(task_index, total - 1)]
        path.write_bytes(with_task_histories(text, share, seed).encode("utf-8"))
        return TaskCommand(argv=(self.resolved_executable(), path.name))

    def progress_parser(self) -> Callable[[str], ProgressReport | None]:
        return TopasProgress()

    def collect_task(self, workdir: Path) -> None:
        files = sorted(path for path in workdir.glob("*.csv") if path.is_file())
        try:
            estimators = [read_topas_estimator(path) for path in files]
        except OutputError as exc:
            raise PluginError(str(exc)) from exc
        if not estimators:
            raise PluginError(f"TOPAS left no {self.outputs_named} output")
        write_task_estimators(workdir, estimators)
