"""The ``fluka`` plug-in: FLUKA, run through the site's ``rfluka`` (``executable``).

Each task runs ``rfluka -M 1 <input name>`` on its own copy of the job's one ``.inp`` file,
with the first START card set to the task's share of the primaries and the RANDOMIZ card's
seed set to the task's number. FLUKA reports progress only in its ``.out`` file: the row
under the ``1NUMBER OF BEAM`` header gives the histories done and left. The ``*_fort.<unit>``
files a run leaves are read with pymchelper; estimators are named by their unit numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, TaskCommand
from cyclotron.domain.primaries import split_primaries, start_of
from cyclotron.errors import PluginError
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.fluka import fluka_files
from cyclotron.simulators.engine import ExecutableEngine

CARD = 10  # FLUKA fixed format: the keyword, then six fields of ten columns
PROGRESS_HEADER = "1NUMBER OF BEAM"
NUMBERS = re.compile(r"^\s*(\d+)\s+(\d+)\b")


def _field(value: float) -> str:
    """A number in one ten-column field (integers keep every digit up to 9 of them)."""
    text = f"{int(value)}." if float(value).is_integer() else f"{value:.6g}"
    if len(text) > CARD:
        text = f"{value:.3E}"
    return text.rjust(CARD)


def _set_what(line: str, position: int, value: float) -> str:
    """A fixed-format card with WHAT(``position``) replaced (1-based), the rest unchanged."""
    body = line.rstrip("\n").ljust(CARD * (position + 1))
    start = CARD * position
    return body[:start] + _field(value) + body[start + CARD :].rstrip()


def with_task_cards(text: str, primaries: int, seed: int) -> str:
    """The input with the first START set to ``primaries`` and RANDOMIZ's seed to ``seed``."""
    lines = text.splitlines()
    done_start = done_seed = False
    for number, line in enumerate(lines):
        if line.startswith("START") and not done_start:
            lines[number] = _set_what(line, 1, primaries)
            done_start = True
        elif line.startswith("RANDOMIZ") and not done_seed:
            lines[number] = _set_what(line, 2, seed)
            done_seed = True
    if not done_seed:
        at = next((i for i, line in enumerate(lines) if line.startswith("START")), len(lines))
        lines.insert(at, _set_what("RANDOMIZ", 1, 1.0).rstrip() + _field(seed))
    return "\n".join(lines) + "\n"


class FlukaProgress:
    """One task's progress: the numbers on the line after each ``1NUMBER OF BEAM`` header."""

    def __init__(self) -> None:
        self._after_header = False

    def __call__(self, line: str) -> ProgressReport | None:
        if line.startswith(PROGRESS_HEADER):
            self._after_header = True
            return None
        if not self._after_header:
            return None
        match = NUMBERS.match(line)
        if match is None:
            return None
        self._after_header = False
        done, left = int(match.group(1)), int(match.group(2))
        return ProgressReport(done=float(done), total=float(done + left))


class FlukaSimulator(ExecutableEngine):
    name: ClassVar[str] = "fluka"
    description: ClassVar[str] = "FLUKA particle transport (the site's own rfluka)"
    input_kinds: ClassVar[tuple[str, ...]] = ("files", "editor")
    engine: ClassVar[str] = "FLUKA"
    outputs_named: ClassVar[str] = "*_fort.<unit>"
    outputs: ClassVar[tuple[str, ...]] = ("*_fort.*",)
    # RANDOMIZ's WHAT(2) is below 9E8; 0 would mean its default seed.
    seed_range: ClassVar[tuple[int, int]] = (1, 899_999_999)

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        try:
            return fluka_files(project)
        except ConversionError as exc:
            raise PluginError(f"Cannot convert the project for FLUKA: {exc}") from exc

    @staticmethod
    def _input(directory: Path) -> Path:
        inputs = sorted(directory.glob("*.inp"))
        if len(inputs) != 1:
            raise PluginError(f"FLUKA input must be exactly one .inp file, found {len(inputs)}")
        return inputs[0]

    def validate(self, input_dir: Path) -> None:
        text = self._input(input_dir).read_text(encoding="utf-8", errors="replace")
        if start_of(text) is None:
            raise PluginError("the FLUKA input has no START card with a number of primaries")

    def set_total_primaries(self, input_dir: Path, total: int) -> None:
        path = self._input(input_dir)
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("START")), None)
        if at is None:
            raise PluginError("the FLUKA input has no START card")
        lines[at] = _set_what(lines[at], 1, total)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        path = self._input(workdir)
        text = path.read_text(encoding="utf-8", errors="replace")
        total = start_of(text)
        if total is None:
            raise PluginError("the FLUKA input has no START card")
        share = split_primaries(total, min(ntasks, total))[min(task_index, total - 1)]
        path.write_text(with_task_cards(text, share, seed), encoding="utf-8")
        return TaskCommand(
            argv=(self.resolved_executable(), "-M", "1", path.stem),
            progress_files=("*.out", "fluka_*/*.out"),
        )

    def progress_parser(self) -> Callable[[str], ProgressReport | None]:
        return FlukaProgress()
