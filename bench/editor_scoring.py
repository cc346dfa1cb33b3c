"""Scoring cost per step record for the outputs of ex1 ("Proton pencil beam in water").

Parses ex1's editor project (``../shared/fixtures/yaptide/ex1.json``), voxelises it, and feeds
``Scoring.add`` batches of synthetic steps shaped like a 150 MeV pencil beam's: depths up to
the range (15.8 cm), lateral spread growing with depth, a fifth of the steps from secondary
protons spread wider, energies and LET falling with depth. ex1 has four outputs (a depth
profile, a Y–Z mesh of 32 000 bins, two slabs with averages, LET and an energy spectrum):
21 quantities in all. Prints the voxelisation time, the ns per step record of ``add`` (after
one warm-up batch), and the time to build the estimators.

Run: ``.venv/bin/python bench/editor_scoring.py [--batch 200000] [--batches 20]``.
Figures are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cyclotron.simulators.editor.geometry import voxelise
from cyclotron.simulators.editor.model import parse_project
from cyclotron.simulators.editor.records import StepBatch, VoxelGrid
from cyclotron.simulators.editor.scoring import Scoring

EX1 = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "yaptide" / "ex1.json"
RANGE_CM = 15.8


def steps(grid: VoxelGrid, size: int, rng: np.random.Generator) -> StepBatch:
    """A batch of steps spread like a 150 MeV proton pencil beam's in ex1's water."""
    z = RANGE_CM * np.sqrt(rng.random(size))  # more steps deep down, where they are short
    secondary = rng.random(size) < 0.2
    sigma = 0.02 + 0.03 * z + 0.5 * secondary
    x, y = rng.normal(0, 1, size) * sigma, rng.normal(0, 1, size) * sigma
    energy = 150 * np.sqrt(np.clip(1 - z / RANGE_CM, 1e-4, 1))
    let = 0.5 * (150 / energy) ** 0.8
    length = rng.uniform(0.01, 0.2, size)
    index = np.floor((np.stack([x, y, z], axis=1) - grid.origin) / grid.spacing).astype(int)
    index = np.clip(index, 0, np.array(grid.shape) - 1)
    zone = grid.zones[index[:, 0], index[:, 1], index[:, 2]]
    ones = np.ones(size, dtype=np.int32)
    return StepBatch(
        x, y, z, let * length / 10, length, energy, let, zone,
        secondary.astype(np.int32), ones, ones,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=200_000, help="step records per batch")
    parser.add_argument("--batches", type=int, default=20, help="batches timed")
    args = parser.parse_args()
    if not EX1.is_file():
        print(f"ex1 not found at {EX1} (the shared fixtures)", file=sys.stderr)
        return 1
    project = parse_project(json.loads(EX1.read_text())["input"]["inputJson"])
    started = time.perf_counter()
    grid = voxelise(project)
    voxelised = time.perf_counter() - started
    scoring = Scoring(project, grid)
    rng = np.random.default_rng(1)
    batches = [steps(grid, args.batch, rng) for _ in range(min(args.batches, 4))]
    scoring.add(batches[0])  # warm-up
    started = time.perf_counter()
    for number in range(args.batches):
        scoring.add(batches[number % len(batches)])
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    estimators = scoring.estimators(args.batches * args.batch // 100)
    built = time.perf_counter() - started
    records = args.batches * args.batch
    quantities = sum(len(output.quantities) for output in project.outputs)
    print(f"host: {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(f"voxelise ex1: {grid.shape} voxels of {grid.spacing[0] * 10:g} mm in {voxelised:.2f} s")
    print(f"outputs: {len(project.outputs)}, quantities: {quantities}, batch: {args.batch} records")
    per_record = elapsed / records * 1e9
    print(f"scoring: {records} step records in {elapsed:.2f} s = {per_record:.0f} ns/record")
    print(f"estimators: {len(estimators)} built in {built * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
