#!/usr/bin/env python3
"""Test double of FLUKA's ``rfluka``: ``rfluka_binary_double.py -M 1 <input name>``.

FLUKA is licensed and cannot run here. This program replays the real FLUKA 4-3.2 run of
``fixtures/shieldhit/fluka/fluka_minimal``: it prints that run's ``rfluka`` console output (paths
and input name made the task's), writes ``<input>001.out`` with FLUKA's progress table (a
``1NUMBER OF BEAM`` header, then the histories handled and left) counting up to the task's START
over ``RFLUKA_DOUBLE_SECONDS`` (default 1.5), and leaves the real USRBIN files as
``<input>001_fort.21`` and ``<input>001_fort.22``, as rfluka names them after cycle 1.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

RUN = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "shieldhit"
    / "fluka"
    / "fluka_minimal"
)
STEPS = 6
HEADER = (
    "1NUMBER OF BEAM     NUMBER OF BEAM      AVERAGE TIME USED      MAXIMUM TIME USED\n"
    "  PARTICLES HANDLED  PARTICLES LEFT    TO FOLLOW A BEAM PARTICLE\n"
)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[:2] != ["-M", "1"]:
        print("usage: rfluka -M 1 <input>", file=sys.stderr)
        return 2
    stem, workdir = argv[2], Path.cwd()
    text = (workdir / f"{stem}.inp").read_text()
    match = re.search(r"^START.{5}\s*([\d.E+-]+)", text, re.MULTILINE)
    if match is None:
        print(f"*** no START card in {stem}.inp", file=sys.stderr)
        return 1
    primaries = int(float(match.group(1)))
    seconds = float(os.environ.get("RFLUKA_DOUBLE_SECONDS", "1.5"))
    transcript = (RUN / "rfluka_stdout.txt").read_text()
    transcript = transcript.replace("/tmp/tmpzd_e7syv", str(workdir)).replace("minimal", stem)
    cycle = transcript.index("Removing links")
    print(transcript[:cycle], end="", flush=True)
    with (workdir / f"{stem}001.out").open("w") as listing:
        for step in range(1, STEPS + 1):
            done = max(1, primaries * step // STEPS)
            listing.write(f"{HEADER}{done:16d}{primaries - done:16d}      1.2E-03      3.4E-03\n")
            listing.flush()
            time.sleep(seconds / STEPS)
    for unit in ("21", "22"):
        shutil.copyfile(RUN / f"minimal001_fort.{unit}", workdir / f"{stem}001_fort.{unit}")
    print(transcript[cycle:], end="", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
