"""One MCsquare run: write its inputs, run the binary, read dose and LET back.

The binary runs in the work directory with ``MCsquare_Materials_Dir`` set; every stdout line
is handed to ``on_line`` as it comes. MCsquare exits 0 even when it refuses its input, so a
run counts as failed when it exits non-zero, prints no primaries count, or leaves no dose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cyclotron.simulators.editor.records import BeamSpec, VoxelGrid
from cyclotron.simulators.mcsquare import install
from cyclotron.simulators.mcsquare.inputs import OUTPUT_DIR, dead_voxels, prepare_run
from cyclotron.simulators.mcsquare.outputs import (
    FloatArray,
    primaries_simulated,
    read_dose,
    read_let,
)

TAIL_LINES = 30
#: MCsquare keeps the materials path in a 200-byte buffer: longer paths go through a link.
MAX_MATERIALS_PATH = 180


class McsquareError(RuntimeError):
    """MCsquare failed or produced nothing usable; the message ends with its output's tail."""


@dataclass(frozen=True)
class McsquareResult:
    """Dose (MeV/g per primary, to medium) and dose-averaged LET (keV/µm) per scoring voxel."""

    dose: FloatArray
    let: FloatArray
    primaries_simulated: int
    seconds: float


def _materials_path(workdir: Path, materials: Path) -> str:
    if len(str(materials)) <= MAX_MATERIALS_PATH:
        return str(materials)
    link = workdir / "Materials"
    if not link.exists():
        link.symlink_to(materials, target_is_directory=True)
    return link.name  # relative to the run's cwd


def _failure(reason: str, tail: deque[str]) -> McsquareError:
    return McsquareError(f"MCsquare {reason}; its last output:\n" + "\n".join(tail))


def _stream(
    argv: list[str], workdir: Path, env: dict[str, str], on_line: Callable[[str], None] | None
) -> tuple[int, str, deque[str]]:
    """Run the binary, passing each stdout line on; returns exit code, stdout and its tail."""
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.rstrip("\r\n")
                lines.append(line)
                tail.append(line)
                if on_line is not None:
                    on_line(line)
        except BaseException:
            process.kill()  # the caller gave up (or was interrupted): do not leave it running
            raise
        code = process.wait()
    return code, "\n".join(lines), tail


def run_mcsquare(
    grid: VoxelGrid,
    beam: BeamSpec,
    primaries: int,
    seed: int,
    workdir: Path,
    *,
    threads: int = 1,
    on_line: Callable[[str], None] | None = None,
    heavy_secondaries: bool = True,
    scoring: VoxelGrid | None = None,
) -> McsquareResult:
    """Simulate ``primaries`` protons of ``beam`` through ``grid`` with MCsquare.

    Without ``heavy_secondaries`` (see inputs.config_text) the LET is that of protons alone,
    and the dose is not the full physics' (deuterons then stop where they are born). Dose and
    LET are on ``scoring`` where it is given (``scoring.scoring_grid``), else on ``grid``.
    """
    found = install.locate()
    scored = grid if scoring is None else scoring
    config = prepare_run(
        workdir,
        grid,
        beam,
        primaries,
        seed,
        threads,
        heavy_secondaries=heavy_secondaries,
        scoring=scored,
    )
    shutil.rmtree(workdir / OUTPUT_DIR, ignore_errors=True)  # never read a stale result
    env = {**os.environ, install.MATERIALS_ENV: _materials_path(workdir, found.materials)}
    started = time.monotonic()
    code, stdout, tail = _stream([str(found.binary), config.name], workdir, env, on_line)
    seconds = time.monotonic() - started
    if code != 0:
        raise _failure(f"exited with status {code}", tail)
    count = primaries_simulated(stdout)
    if count is None:
        raise _failure("did not report the primaries it simulated", tail)
    try:
        dose = read_dose(workdir, scored.shape)
        let = read_let(workdir, scored.shape)
    except (OSError, ValueError, RuntimeError) as exc:
        raise _failure(f"left no readable output ({exc})", tail) from exc
    dead = dead_voxels(scored)
    dose[dead] = 0.0
    let[dead] = 0.0
    if scored is grid and not np.any(dose > 0):  # a scoring grid may lie where none went
        outside = f", {count.outside} of them outside the geometry" if count.outside else ""
        raise _failure(f"scored no dose from {count.simulated} primaries{outside}", tail)
    return McsquareResult(dose, let, count.simulated, seconds)
