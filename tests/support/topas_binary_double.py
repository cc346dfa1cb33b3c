#!/usr/bin/env python3
"""Test double of the TOPAS executable: ``topas_binary_double.py <parameter file>``.

TOPAS is licensed and cannot run here. This program replays the real TOPAS 3.9 run of
``fixtures/shieldhit/topas/topas_minimal``: it prints that run's console transcript, with its
``G4WT<k> > Begin processing for Run: 0, History: <n>`` lines redone for the task's
``NumberOfHistoriesInRun`` (every ``Ts/ShowHistoryCountAtInterval`` histories, spread over
``TOPAS_DOUBLE_SECONDS``, default 1.5) and its total, then writes, for every scorer of the
parameter file whose ``OutputFile`` the fixture holds, that real CSV with each bin's Mean scaled
by a noise of 5 % drawn from ``i:Ts/Seed`` and the header naming the task's parameter file.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from pathlib import Path

RUN = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "shieldhit"
    / "topas"
    / "topas_minimal"
)
NOISE = 0.05
BEGIN = "Begin processing for Run:"


def _integer(parameters: str, name: str, default: int) -> int:
    match = re.search(rf"^\s*i:{name}\s*=\s*(\d+)", parameters, re.MULTILINE | re.IGNORECASE)
    return int(match.group(1)) if match else default


def _csv(source: Path, target: Path, parameter_file: str, rng: random.Random) -> None:
    lines = []
    for line in source.read_text().splitlines():
        if line.startswith("# Parameter File:"):
            line = f"# Parameter File: {parameter_file}"
        elif not line.startswith("#"):
            cells = [c.strip() for c in line.split(",")]
            mean = float(cells[3]) * (1 + NOISE * rng.gauss(0, 1))
            line = ", ".join([*cells[:3], repr(mean), *cells[4:]])
        lines.append(line)
    target.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: topas <parameter file>", file=sys.stderr)
        return 2
    path = Path(argv[0])
    parameters = path.read_bytes().decode()
    histories = _integer(parameters, r"So/\w+/NumberOfHistoriesInRun", 0)
    interval = _integer(parameters, "Ts/ShowHistoryCountAtInterval", 0)
    seed = _integer(parameters, "Ts/Seed", 1)
    seconds = float(os.environ.get("TOPAS_DOUBLE_SECONDS", "1.5"))
    transcript = (RUN / "topas_stdout.txt").read_text().splitlines()
    first = next(i for i, line in enumerate(transcript) if BEGIN in line)
    last = max(i for i, line in enumerate(transcript) if BEGIN in line)
    for line in transcript[:first]:
        print(line.replace("minimal.txt", path.name), flush=True)
    starts = list(range(0, histories, interval)) if interval else []
    for index, history in enumerate(starts):
        print(f"G4WT{index % 12} > {BEGIN} 0, History: {history}", flush=True)
        time.sleep(seconds / len(starts))
    rng = random.Random(seed)
    for line in transcript[last + 1 :]:
        line = re.sub(r"(Total number of histories: )\d+", rf"\g<1>{histories}", line)
        print(line, flush=True)
    for match in re.finditer(r"^\s*s:Sc/\w+/OutputFile\s*=\s*\"(\w+)\"", parameters, re.MULTILINE):
        source = RUN / f"{match.group(1)}.csv"
        if source.is_file():
            _csv(source, path.parent / source.name, path.name, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
