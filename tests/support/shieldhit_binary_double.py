#!/usr/bin/env python3
"""Test double of the SHIELD-HIT12A executable: ``shieldhit_binary_double.py -N <seed> <dir>``.

SHIELD-HIT12A is licensed and cannot run here. This program stands in for the binary the
way the engine's own tests do: it replays the real console transcript and the real ``.bdo``
outputs of ``fixtures/shieldhit/mocks/shieldhit_minimal`` (a 20-primary run). Its progress
lines count up to the NSTAT of the task's beam.dat, spread over ``SHIELDHIT_DOUBLE_SECONDS``
(default 1.5), and it writes ``mesh_<seed>.bdo`` and ``fluence_<seed>.bdo`` as the engine
names per-task outputs. ``SHIELDHIT_DOUBLE_FAIL_SEEDS`` (comma-separated seeds) makes those
runs stop with the engine's error status; ``SHIELDHIT_DOUBLE_EMPTY_SEEDS`` makes them leave
empty ``.bdo`` files, as a crashed save would. On SIGUSR1 it saves its outputs early and
goes on, as the engine does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

MOCK = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "shieldhit"
    / "mocks"
    / "shieldhit_minimal"
)
OUTPUTS = ("mesh", "fluence")
LINES = 10


def _seeds(variable: str) -> set[int]:
    return {int(s) for s in os.environ.get(variable, "").split(",") if s.strip().isdigit()}


def _save(workdir: Path, seed: int, empty: bool) -> None:
    for name in OUTPUTS:
        target = workdir / f"{name}_{seed:04d}.bdo"
        if empty:
            target.write_bytes(b"")
        else:
            shutil.copyfile(MOCK / f"{name}.bdo", target)
        print(f"     Saving estimator to '{target}'", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "-N" or not argv[1].isdigit():
        print("usage: shieldhit -N <seed> <workdir>", file=sys.stderr)
        return 2
    seed, workdir = int(argv[1]), Path(argv[2])
    beam = (workdir / "beam.dat").read_text()
    match = re.search(r"^\s*NSTAT\s+(\d+)", beam, re.MULTILINE)
    if match is None:
        print(" ERROR: NSTAT missing in beam.dat", file=sys.stderr)
        return 1
    nstat = int(match.group(1))
    empty = seed in _seeds("SHIELDHIT_DOUBLE_EMPTY_SEEDS")
    seconds = float(os.environ.get("SHIELDHIT_DOUBLE_SECONDS", "1.5"))

    def save_now(signum: int, frame: FrameType | None) -> None:
        _save(workdir, seed, empty)

    signal.signal(signal.SIGUSR1, save_now)
    transcript = (MOCK / "shieldhit_stdout.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(transcript) if "Primary particle no." in line)
    for line in transcript[:start]:
        line = re.sub(r"(NSTAT\s+:\s+)\d+", lambda m: f"{m.group(1)}{nstat}", line)
        print(line.replace("/tmp/tmp22vtb74b/", f"{workdir}/"), flush=True)
    steps = sorted({max(1, round(nstat * k / LINES)) for k in range(1, LINES + 1)})
    for done in steps:
        left = seconds * (1 - done / nstat)
        print(
            f"     Primary particle no. {done:11d}      ETR: {int(left) // 3600:3d} hours"
            f" {int(left) % 3600 // 60:2d} minutes {int(left) % 60:2d} seconds",
            flush=True,
        )
        if seed in _seeds("SHIELDHIT_DOUBLE_FAIL_SEEDS") and done * 2 >= nstat:
            print(" ERROR: no memory for the estimator cache  STOP 1", file=sys.stderr)
            return 1
        time.sleep(seconds / len(steps))
    _save(workdir, seed, empty)
    print("  \n  Transport completed.\n   Run time:   0 hours  0 minutes  1 seconds", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
