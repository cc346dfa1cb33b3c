#!/usr/bin/env python3
"""Test double of a site's Geant4 application: ``geant4_binary_double.py run.mac``.

Geant4 needs data sets that cannot be installed here, so this program stands in for the
application. It replays the real results of ``fixtures/yaptide/ex8.json`` (the estimators a
real Geant4 run of that project produced, per primary): for each ``/score/dumpQuantityToFile
<mesh> <quantity> <file>`` of the macro it writes ``<file>`` as Geant4's ``G4VScoreWriter`` does
(``# mesh name``, ``# primitive scorer name``, ``# iX, iY, iZ, total(value) [unit], total(val^2),
entry`` — ``iZ, iPHI, iR`` for a cylinder — then one row per bin), holding ex8's per-primary
values times the macro's ``/run/beamOn`` events, each bin scaled by a noise of 2 % drawn from the
macro's ``/random/setSeeds``. Meanwhile it prints ``G4WT0 > --> Event <n> starts ...`` every
``/run/printProgress`` events, spread over ``GEANT4_DOUBLE_SECONDS`` (default 1.5).
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

EX8 = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "yaptide" / "ex8.json"
NOISE = 0.02
UNIT_OF = {"energyDeposit": "MeV", "doseDeposit": "Gy", "cellFlux": "percm2"}


def _number(macro: str, command: str, default: int) -> list[int]:
    match = re.search(rf"^\s*{re.escape(command)}\s+(.+)$", macro, re.MULTILINE)
    return [int(w) for w in match.group(1).split()] if match else [default]


def _meshes(macro: str) -> dict[str, tuple[str, list[int], dict[str, str]]]:
    """Mesh name -> (kind, nBin as written, quantity name -> scorer)."""
    meshes: dict[str, tuple[str, list[int], dict[str, str]]] = {}
    current = ""
    for line in macro.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].startswith("/score/create/") and words[0].endswith("Mesh"):
            current = words[1]
            meshes[current] = ("cylinder" if "cylinder" in words[0] else "box", [1, 1, 1], {})
        elif words[0] == "/score/mesh/nBin" and current:
            meshes[current][1][:] = [int(w) for w in words[1:4]]
        elif words[0].startswith("/score/quantity/") and current:
            meshes[current][2][words[1]] = words[0].rsplit("/", 1)[1]
        elif words[0] == "/score/close":
            current = ""
    return meshes


def _dump(
    path: Path,
    mesh: str,
    spec: tuple[str, list[int], dict[str, str]],
    page: Any,
    quantity: str,
    events: int,
    rng: random.Random,
) -> None:
    kind, bins, scorers = spec
    if kind == "box":
        names, counts = ("X", "Y", "Z"), bins  # rows x, y, z; Fortran index x + nx*y + nx*ny*z
    else:
        names, counts = ("Z", "PHI", "R"), [bins[1], bins[2], bins[0]]
    values = page["data"]["values"]
    unit = UNIT_OF.get(scorers.get(quantity, ""), "")
    lines = [f"# mesh name: {mesh}", f"# primitive scorer name: {quantity}"]
    lines.append(
        f"# i{names[0]}, i{names[1]}, i{names[2]}, total(value) [{unit}], total(val^2), entry"
    )
    for i in range(counts[0]):
        for j in range(counts[1]):
            for k in range(counts[2]):
                if kind == "box":
                    flat = i + counts[0] * j + counts[0] * counts[1] * k
                else:  # Fortran order of (r, phi, z)
                    flat = k + bins[0] * j + bins[0] * bins[2] * i
                total = (values[flat] or 0.0) * events * (1 + NOISE * rng.gauss(0, 1))
                entries = events if total else 0
                lines.append(f"{i},{j},{k},{total!r},{total * total / max(events, 1)!r},{entries}")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: geant4-application run.mac", file=sys.stderr)
        return 2
    macro_path = Path(argv[0]).resolve()
    macro = macro_path.read_text()
    events = _number(macro, "/run/beamOn", 0)[0]
    seeds = _number(macro, "/random/setSeeds", 1)
    every = (
        max(1, _number(macro, "/run/printProgress", 0)[0]) if "/run/printProgress" in macro else 0
    )
    seconds = float(os.environ.get("GEANT4_DOUBLE_SECONDS", "1.5"))
    print("**************************************************************")
    print(" Geant4 version Name: geant4-11-02-patch-01 [MT]   (16-February-2024)  (test double)")
    print("**************************************************************")
    starts = list(range(0, events, every)) if every else []
    for event in starts:
        print(
            f"G4WT0 > --> Event {event} starts with initial seeds ({seeds[0]},{seeds[-1]}).",
            flush=True,
        )
        time.sleep(seconds / max(len(starts), 1))
    print(f" Run terminated.\nRun Summary\n  Number of events processed : {events}", flush=True)
    estimators = {e["name"]: e for e in json.loads(EX8.read_text())["estimators"]}
    meshes = _meshes(macro)
    rng = random.Random(seeds[0] * 1_000_003 + seeds[-1])
    for match in re.finditer(
        r"^\s*/score/dumpQuantityToFile\s+(\S+)\s+(\S+)\s+(\S+)", macro, re.MULTILINE
    ):
        mesh, quantity, name = match.groups()
        pages = {p["data"]["name"]: p for p in estimators[mesh]["pages"]}
        _dump(macro_path.parent / name, mesh, meshes[mesh], pages[quantity], quantity, events, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
