"""MCsquare's independent scoring grid, run for real: it lands where the CT's voxels are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cyclotron.simulators.editor.records import BeamSpec, Medium, VoxelGrid
from cyclotron.simulators.mcsquare import install
from cyclotron.simulators.mcsquare.run import run_mcsquare

WATER = Medium(276, "WATER, LIQUID", 1.0)


@pytest.fixture(autouse=True, scope="module")
def _mcsquare_installed() -> None:
    reason = install.unavailable_reason()
    if reason is not None:
        pytest.fail(f"MCsquare must be installed for these tests: {reason}")


def _water(origin: tuple[float, ...], spacing: float, shape: tuple[int, int, int]) -> VoxelGrid:
    return VoxelGrid(
        origin=np.array(origin, dtype=np.float64),
        spacing=np.full(3, spacing),
        zones=np.zeros(shape, np.int32),
        zone_names=("water",),
        zone_media=np.zeros(1, np.int32),
        media=(WATER,),
    )


def test_a_half_voxel_scoring_grid_reads_the_ct_dose_where_the_ct_has_it(tmp_path: Path) -> None:
    """A 100 MeV beam off the axis in x and y through 3 x 4 x 5 cm of water (1 mm voxels),
    scored on 0.5 mm voxels over a box off the middle: their means over each 1 mm voxel
    are the CT-grid dose, and the box mirrored in x or y would not be."""
    grid = _water((-1.0, 2.0, 0.0), 0.1, (30, 40, 50))
    beam = BeamSpec(
        energy=100.0,
        energy_sigma=1.0,
        position=np.array([-0.3, 3.2, 0.0]),
        direction=np.array([0.0, 0.0, 1.0]),
        sigma_x=0.15,
        sigma_y=0.15,
    )
    low, counts = np.array([4, 6, 5]), np.array([18, 20, 40])  # in CT voxels
    scoring = _water(tuple(grid.origin + low * 0.1), 0.05, tuple(2 * counts))
    coarse = run_mcsquare(grid, beam, 20000, 3, tmp_path / "ct", threads=2).dose
    fine = run_mcsquare(grid, beam, 20000, 3, tmp_path / "fine", threads=2, scoring=scoring).dose
    assert fine.shape == (36, 40, 80)
    box = coarse[tuple(slice(a, a + n) for a, n in zip(low, counts, strict=True))]
    means = fine.reshape(18, 2, 20, 2, 40, 2).mean(axis=(1, 3, 5))
    assert means.sum() == pytest.approx(box.sum(), rel=0.01)
    assert np.abs(means - box).max() < 0.05 * box.max()
    assert np.abs(means[::-1] - box).max() > 0.5 * box.max()
    assert np.abs(means[:, ::-1] - box).max() > 0.5 * box.max()
