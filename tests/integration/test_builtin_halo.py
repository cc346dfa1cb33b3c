"""Issue 19, item 5: the lateral halo of the builtin engine against MCsquare's.

A 150 MeV pencil beam (1 % energy spread) in water, both engines on the same 1 mm voxels;
the dose per primary at mid-range (7-9 cm deep) in 1 mm rings out to 3 cm. The halo comes
from the secondary protons of nonelastic events and from elastic scattering on nuclei and
hydrogen (builtin/nuclear.py). With these secondaries but no elastic scattering the core
read 6.9 % high and the halo at 3-15 mm a third of MCsquare's.

Each engine runs its primaries in independent batches (seeds 1-4, one thread: the same
numbers on every machine), so each ring carries its statistical uncertainty: a ring must
agree within 1 % of MCsquare's maximum plus three standard errors of the difference. The
innermost ring (r < 1 mm: four voxel columns) is the only one where the statistics weigh:
three standard errors are 2.25 % of the maximum there at 40,000 primaries, 0.9 % at 1-2 mm
and below 0.07 % beyond 4 mm, so there the 1 % holds alone. Measured: the rings differ by
0.94 % of the maximum at the centre, -0.48 % at 2-3 mm and at most 0.06 % beyond 4 mm (one
run of MCsquare on two threads moved its centre ring by 1.2 % against one thread).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cyclotron.simulators.builtin.transport import simulate
from cyclotron.simulators.editor.records import BeamSpec, Medium, StepBatch, VoxelGrid
from cyclotron.simulators.mcsquare import install
from cyclotron.simulators.mcsquare.run import run_mcsquare

WATER = Medium(276, "WATER, LIQUID", 1.0)
HALF_WIDTH = 3.5  # cm
VOXEL = 0.1  # cm laterally
SLAB = 0.5  # cm in depth
DEPTH = 10.0  # cm
MID_RANGE = (7.0, 9.0)  # cm: R80 at 150 MeV is 15.8 cm
RINGS = np.arange(0.0, 3.05, 0.1)  # cm
PRIMARIES = 40000
BATCHES = 4  # independent runs per engine, for each ring's standard error
TOLERANCE = 0.01  # of the maximum


def _grid() -> VoxelGrid:
    n, nz = int(round(2 * HALF_WIDTH / VOXEL)), int(round(DEPTH / SLAB))
    return VoxelGrid(
        origin=np.array([-HALF_WIDTH, -HALF_WIDTH, 0.0]),
        spacing=np.array([VOXEL, VOXEL, SLAB]),
        zones=np.zeros((n, n, nz), dtype=np.int32),
        zone_names=("water",),
        zone_media=np.array([0], dtype=np.int32),
        media=(WATER,),
    )


def _radial(grid: VoxelGrid, dose: np.ndarray) -> np.ndarray:
    """Mean dose per ring at mid-range."""
    centres = [
        grid.origin[a] + (np.arange(grid.shape[a]) + 0.5) * grid.spacing[a] for a in range(3)
    ]
    depth = (centres[2] > MID_RANGE[0]) & (centres[2] < MID_RANGE[1])
    plane = dose[:, :, depth].mean(axis=2)
    x, y = np.meshgrid(centres[0], centres[1], indexing="ij")
    r = np.hypot(x, y)
    return np.array(
        [plane[(r >= RINGS[i]) & (r < RINGS[i + 1])].mean() for i in range(RINGS.size - 1)]
    )


def test_lateral_profile_at_mid_range_matches_mcsquare_to_one_percent(tmp_path: Path) -> None:
    reason = install.unavailable_reason()
    if reason is not None:
        pytest.fail(f"MCsquare must be installed for this test: {reason}")
    grid = _grid()
    beam = BeamSpec(150.0, 1.5, np.array([0.0, 0.0, -0.5]), np.array([0.0, 0.0, 1.0]))
    edges = [grid.origin[a] + np.arange(grid.shape[a] + 1) * grid.spacing[a] for a in range(3)]
    share = PRIMARIES // BATCHES
    ours_runs, theirs_runs = [], []
    for seed in range(1, BATCHES + 1):
        deposited = np.zeros(grid.shape)

        def sink(batch: StepBatch, deposited: np.ndarray = deposited) -> None:
            points = np.column_stack([batch.x, batch.y, batch.z])
            deposited[...] += np.histogramdd(points, bins=edges, weights=batch.edep)[0]

        simulate(grid, beam, share, seed, sink)
        builtin = deposited / (WATER.density * float(np.prod(grid.spacing))) / share
        ours_runs.append(_radial(grid, builtin))
        workdir = tmp_path / f"mcsquare-{seed}"
        workdir.mkdir()
        theirs_runs.append(_radial(grid, run_mcsquare(grid, beam, share, seed, workdir).dose))
    ours, theirs = np.mean(ours_runs, axis=0), np.mean(theirs_runs, axis=0)
    # The standard error of the difference of the two means, ring by ring.
    error = np.sqrt(
        (np.var(ours_runs, axis=0, ddof=1) + np.var(theirs_runs, axis=0, ddof=1)) / BATCHES
    )
    allowed = TOLERANCE * theirs.max() + 3 * error
    worst = float(np.max((np.abs(ours - theirs) - allowed) / theirs.max()))
    assert worst < 0, (
        f"rings differ beyond 1 % of the maximum + 3 standard errors by {100 * worst:.2f} %: "
        f"{np.round(100 * (ours - theirs) / theirs.max(), 2)}"
    )
    # Past 5 mm the statistics are small: the 1 % stands there on its own.
    assert np.all(3 * error[5:] < 0.1 * TOLERANCE * theirs.max())
    # and the halo is there: a tenth of a percent of the maximum 5 to 10 mm out
    halo = ours[5:10] / theirs.max()
    assert np.all(halo > 5e-4)
