"""A test double of the SHIELD-HIT12A engine, replaying real outputs of the YAPTIDE UI examples.

SHIELD-HIT12A is a licensed binary that cannot run here. ``ShieldhitTestDouble`` stands in for
a SHIELD-HIT12A service in the YAPTIDE-face conformance tests, and nothing in it simulates
physics: it knows only the example projects of ``../shared/fixtures/yaptide`` (the UI's
``ex*.json`` exports whose ``metadata.simType`` is shieldhit), each with the input files the
real converter wrote and the estimators a real SHIELD-HIT12A run produced.

* ``editor_files`` converts an example project by looking its files up;
* ``validate`` accepts only those files (any NSTAT and RNDSEED);
* ``task_command`` runs ``python -m support.shieldhit_double`` in place of the ``shieldhit``
  binary: it prints SHIELD-HIT-like progress lines and writes the example's estimators in the
  wire format of spec/results.md, every value scaled by a per-task random factor near 1, so
  that merged results differ from any one task's as real statistics would.

Service options: ``examples_dir`` (the fixtures above), ``fail_tasks`` (1-based task numbers
whose run fails, or ``"all"``), ``seconds`` (how long each task runs, default 1.5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, SimulatorPlugin, TaskCommand
from cyclotron.domain.primaries import nstat_of, split_primaries, with_nstat
from cyclotron.errors import ConfigError, PluginError
from cyclotron.estimators.merge import MergeError
from cyclotron.estimators.store import TASK_FILE, merge_task_files, write_results

TESTS_DIR = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLES_DIR = TESTS_DIR.parents[1] / "shared" / "fixtures" / "yaptide"
PROGRAM = "support.shieldhit_double"
BEAM = "beam.dat"
GEO = "geo.dat"
# Written by the converter for the UI; SHIELD-HIT12A never reads it, so files mode may omit it.
OPTIONAL_FILES = frozenset({"info.json"})
# Input files where ``!`` starts a comment.
BANG_COMMENTED = frozenset({BEAM, "mat.dat"})

# Parts of an editor project that change when the UI merely loads, shows or re-saves it
# (view cameras, the project hash, material usage counts, display colours, the world zone's
# regenerated uuid), and what the job sets itself (its number of primaries).
VOLATILE_KEYS = frozenset({"hash", "viewManager", "selectedMaterials", "colorHex"})
VOLATILE_PATHS = (("zoneManager", "worldZone", "uuid"), ("beam", "numberOfParticles"))
# Keys newer UI versions write with these values and older exports leave out.
UI_DEFAULTS: Mapping[str, Any] = {"scoringType": "DETECTOR", "energyUnit": "MeV", "children": []}

# The UI's additions to the server's estimators (spec/results.md §2, §3 use neither).
UI_ESTIMATOR_KEYS = frozenset({"scoringOutputJsonRef"})
UI_PAGE_KEYS = frozenset({"name", "filterRef"})
# page_normalized values whose pages do not fluctuate between runs: geometry maps, records.
FIXED_PAGES = frozenset({"0", "4"})
SPREAD = 0.02  # relative standard deviation of a task's values around the recorded ones

PROGRESS = re.compile(
    r"^\s*Primary particle no\.\s+(\d+)"
    r"(?:\s+ETR:\s+(\d+)\s+hours\s+(\d+)\s+minutes\s+(\d+)\s+seconds)?\s*$"
)
PROGRESS_LINES = 9


@dataclass(frozen=True)
class Example:
    """One UI export: its editor project and the SHIELD-HIT12A input files made from it."""

    path: Path
    project: dict[str, Any]
    files: dict[str, str]


class ShieldhitTestDouble(SimulatorPlugin):
    """Test double of a SHIELD-HIT12A service: runs only the YAPTIDE example projects."""

    name: ClassVar[str] = "shieldhit-test-double"
    description: ClassVar[str] = "Test double of SHIELD-HIT12A replaying the YAPTIDE examples"
    version: ClassVar[str | None] = "test-double"
    input_kinds: ClassVar[tuple[str, ...]] = ("files", "editor")
    result_kind: ClassVar[str] = "estimators"
    merges_results: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.examples_dir = Path(self.options.get("examples_dir", DEFAULT_EXAMPLES_DIR))
        self.fail_tasks = _fail_tasks(self.options.get("fail_tasks", []))
        seconds = self.options.get("seconds", 1.5)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ConfigError(f"seconds must be a number >= 0, not {seconds!r}")
        self.seconds = float(seconds)

    @cached_property
    def examples(self) -> list[Example]:
        """The SHIELD-HIT12A examples of ``examples_dir``, read once."""
        found = []
        for path in sorted(self.examples_dir.glob("ex*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            if str(document.get("metadata", {}).get("simType", "")).lower() != "shieldhit":
                continue
            example = document["input"]
            found.append(Example(path, example["inputJson"], dict(example["inputFiles"])))
        return found

    def unavailable_reason(self) -> str | None:
        if not any(self.examples_dir.glob("ex*.json")):
            return f"the SHIELD-HIT12A test double finds no examples in {self.examples_dir}"
        return None

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        example = self._example_of_project(project)
        particles = project.get("beam", {}).get("numberOfParticles")
        if isinstance(particles, bool) or not isinstance(particles, int) or particles < 1:
            raise PluginError(f"beam.numberOfParticles must be a positive integer: {particles!r}")
        files = dict(example.files)
        files[BEAM] = with_nstat(files[BEAM], particles)
        return files

    def validate(self, input_dir: Path) -> None:
        beam = input_dir / BEAM
        if not beam.is_file():
            raise PluginError(f"{BEAM} is required")
        if nstat_of(beam.read_text(errors="replace")) is None:
            raise PluginError(f"{BEAM} has no NSTAT line with a number of primaries")
        self._example_of_files(input_dir)

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        example = self._example_of_files(workdir)
        beam = workdir / BEAM
        text = beam.read_text(errors="replace")
        total = nstat_of(text)
        if total is None:
            raise PluginError(f"{BEAM} has no NSTAT line with a number of primaries")
        share = split_primaries(total, ntasks)[task_index]
        beam.write_text(with_nstat(text, share))  # the task's own copy of the input
        number = task_index + 1
        argv = [sys.executable, "-m", PROGRAM, str(example.path)]
        argv += ["--primaries", str(share), "--seed", str(seed), "--seconds", str(self.seconds)]
        if self.fail_tasks is None or number in self.fail_tasks:
            argv.append("--fail")
        return TaskCommand(argv=tuple(argv), env={"PYTHONPATH": str(TESTS_DIR)})

    def parse_progress(self, line: str) -> ProgressReport | None:
        match = PROGRESS.match(line)
        if match is None:
            return None
        done = int(match.group(1))
        if match.group(2) is None:
            return ProgressReport(done=done, total=0)
        hours, minutes, seconds = (int(match.group(k)) for k in (2, 3, 4))
        return ProgressReport(done=done, total=0, eta_seconds=hours * 3600 + minutes * 60 + seconds)

    def merge(self, job_dir: Path, completed: list[int]) -> None:
        try:
            write_results(job_dir / "results", merge_task_files(job_dir, completed))
        except MergeError as exc:
            raise PluginError(exc.message) from exc

    def _example_of_project(self, project: Mapping[str, Any]) -> Example:
        for example in self.examples:
            if example.project == project:
                return example
        wanted = _comparable(project)
        for example in self.examples:
            if _comparable(example.project) == wanted:
                return example
        raise PluginError(
            f"the SHIELD-HIT12A test double converts only the example projects of "
            f"{self.examples_dir}"
        )

    def _example_of_files(self, input_dir: Path) -> Example:
        """The example whose input files these are; else PluginError naming the closest one."""
        if not self.examples:
            raise PluginError(
                f"the SHIELD-HIT12A test double has no examples in {self.examples_dir}"
            )
        differences = {e.path.name: _differing_files(input_dir, e.files) for e in self.examples}
        for example in self.examples:
            if not differences[example.path.name]:
                return example
        closest = min(differences, key=lambda name: len(differences[name]))
        raise PluginError(
            f"the SHIELD-HIT12A test double runs only the input files of the examples in "
            f"{self.examples_dir}; the closest, {closest}, differs in "
            f"{', '.join(differences[closest])}"
        )


def _fail_tasks(value: object) -> frozenset[int] | None:
    """The 1-based task numbers that must fail; None means every task."""
    if value == "all":
        return None
    if isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return frozenset(value)
    raise ConfigError(f'fail_tasks must be a list of task numbers or "all", not {value!r}')


def _comparable(value: Any, path: tuple[str, ...] = ()) -> Any:
    """A project without its volatile parts and UI defaults, for comparing two of them."""
    if isinstance(value, Mapping):
        return {
            key: _comparable(item, (*path, key))
            for key, item in value.items()
            if key not in VOLATILE_KEYS
            and (*path, key) not in VOLATILE_PATHS
            and not (key in UI_DEFAULTS and item == UI_DEFAULTS[key])
        }
    if isinstance(value, list):
        return [_comparable(item, path) for item in value]
    return value


def _differing_files(input_dir: Path, expected: Mapping[str, str]) -> list[str]:
    """Names of the expected files that are missing from ``input_dir`` or differ there.

    Other files are ignored, as SHIELD-HIT12A ignores them.
    """
    differing = []
    for name, text in sorted(expected.items()):
        path = input_dir / name
        if not path.is_file():
            if name not in OPTIONAL_FILES:
                differing.append(f"{name} (missing)")
        elif _canonical(name, path.read_text(errors="replace")) != _canonical(name, text):
            differing.append(name)
    return differing


def _canonical(name: str, text: str) -> list[tuple[str, ...]]:
    """The words of an input file, without what does not change the simulated geometry or beam.

    Dropped: comments, blank lines, spacing, the RNDSEED line, the NSTAT value; the terms of a
    geo.dat zone are sorted (their intersection does not depend on the order).
    """
    lines: list[tuple[str, ...]] = []
    ends = 0  # geo.dat: bodies, END, zones, END, media
    for line in text.splitlines():
        if name in BANG_COMMENTED:
            line = line.split("!", 1)[0]
        if name == GEO and line.startswith("*"):
            continue
        words = line.split()
        if not words:
            continue
        if name == BEAM and words[0] == "RNDSEED":
            continue
        if name == BEAM and words[0] == "NSTAT":
            words[1:2] = ["<primaries>"]
        if name == GEO and words[0] == "END":
            ends += 1
        elif name == GEO and ends == 1 and "OR" not in words:
            words = [words[0], *sorted(words[1:])]
        lines.append(tuple(words))
    return lines


# --- the stand-in for the shieldhit binary -------------------------------------------------


def snake_case(key: str) -> str:
    """``numberOfPrimaries`` → ``number_of_primaries``; keys with an ``_`` (``Tmax_MeV``) stay."""
    if "_" in key:
        return key
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def wire_estimators(
    ui_estimators: Sequence[Mapping[str, Any]], primaries: int, factor: float
) -> list[dict[str, Any]]:
    """A UI export's estimators as one task's output (spec/results.md), values times ``factor``."""
    estimators = []
    for estimator in ui_estimators:
        metadata = {snake_case(k): v for k, v in estimator["metadata"].items()}
        metadata["file_corename"] = metadata.get("file_corename", estimator["name"]).rstrip("_")
        metadata["number_of_primaries"] = str(primaries)
        metadata["file_counter"] = "1"
        pages = [_wire_page(page, factor) for page in estimator["pages"]]
        pages.sort(key=lambda page: int(page["metadata"]["page_number"]))
        extra = {k: v for k, v in estimator.items() if k not in UI_ESTIMATOR_KEYS}
        estimators.append({**extra, "metadata": metadata, "pages": pages})
    return estimators


def _wire_page(page: Mapping[str, Any], factor: float) -> dict[str, Any]:
    wire = {snake_case(k): v for k, v in page.items() if k not in UI_PAGE_KEYS}
    wire["metadata"] = {snake_case(k): v for k, v in page["metadata"].items()}
    if wire["metadata"].get("page_normalized") not in FIXED_PAGES:
        values = [v * factor if isinstance(v, int | float) else v for v in page["data"]["values"]]
        wire["data"] = {**page["data"], "values": values}
    return wire


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 3600:3d} hours {whole // 60 % 60:2d} minutes {whole % 60:2d} seconds"


def _progress_points(primaries: int) -> list[int]:
    """About PROGRESS_LINES increasing particle numbers, evenly spread, ending at ``primaries``."""
    return sorted({math.ceil(primaries * k / PROGRESS_LINES) for k in range(1, PROGRESS_LINES + 1)})


def _say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Behave like one ``shieldhit`` run of the example, in the current directory."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=main.__doc__)
    parser.add_argument("example", type=Path, help="a YAPTIDE UI export (ex*.json)")
    parser.add_argument("--primaries", type=int, required=True, help="this task's NSTAT")
    parser.add_argument("--seed", type=int, required=True, help="RNDSEED of this task")
    parser.add_argument("--seconds", type=float, default=1.5, help="how long the run lasts")
    parser.add_argument("--fail", action="store_true", help="stop with an error, no results")
    args = parser.parse_args(argv)

    _say("\n  *** SHIELD-HIT12A *** test double (replays a recorded result)")
    _say("  Version: test-double\n")
    _say(f"  Working directory: {Path.cwd()}/\n")
    _say(f"  Requested number of primaries NSTAT      : {args.primaries}")
    _say(f"  Random number seed RNDSEED               : {args.seed}\n")
    _say("  Starting transport engine...")
    points = _progress_points(args.primaries)
    if args.fail:
        points = points[: max(1, len(points) // 3)]
    pause = args.seconds / PROGRESS_LINES
    for count, number in enumerate(points, start=1):
        time.sleep(pause)
        left = args.seconds * (1 - count / len(points))
        _say(f"     Primary particle no. {number:11d}      ETR: {_duration(left)}")
    if args.fail:
        print(
            f" ERROR: particle lost in geometry: no zone found for position"
            f" (0.0, 0.0, 24.0) cm, primary no. {points[-1] + 1}\n STOP 1",
            file=sys.stderr,
            flush=True,
        )
        return 1

    document = json.loads(args.example.read_text(encoding="utf-8"))
    factor = 1 + SPREAD * random.Random(args.seed).gauss(0.0, 1.0)
    estimators = wire_estimators(document["estimators"], args.primaries, factor)
    target = Path(TASK_FILE)
    temporary = target.with_name(f".{TASK_FILE}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"estimators": estimators}, allow_nan=False))
    temporary.replace(target)  # a reader never sees half a file
    _say(f"     Saving estimators to '{target.resolve()}'\n")
    _say("  Transport completed.")
    _say(f"   Run time: {_duration(args.seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
