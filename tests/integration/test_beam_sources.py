"""Issue 19, item 4: spot lists (sobp.dat), flat square and circular beams and SAD, on the
builtin engine and on MCsquare (through its plan).

A plan's dose is compared with the weighted sum of its spots run one by one, in 2.5 mm ×
2.5 mm × 1 mm bins: the spots run alone with the primaries the plan gives them on average,
so plan − sum has about the noise of plan − (the plan with another seed). The ratio of their
sums of squares over the bins that hold 5 % of the maximum or more is 1 within statistics
(0.7 to 1.1 measured), and a spot misplaced by one bin sends it above 15.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cyclotron.simulators.builtin.transport import simulate
from cyclotron.simulators.editor.beams import parse_spot_list
from cyclotron.simulators.editor.records import (
    FLAT_CIRCLE,
    FLAT_SQUARE,
    BeamSpec,
    Medium,
    Spot,
    StepBatch,
    VoxelGrid,
    beam_axes,
)
from cyclotron.simulators.mcsquare import install
from cyclotron.simulators.mcsquare.run import run_mcsquare

WATER = Medium(276, "WATER, LIQUID", 1.0)
SHAPE = (20, 20, 70)
SPACING = (0.25, 0.25, 0.1)
ORIGIN = (-2.5, -2.5, 0.0)
PLAN = """* E(GeV/u) DE X(cm) Y FWHM_X FWHM_Y W
0.070 0.0007  -1.0  0.0  0.7  0.7  1.0
0.080 0.0     0.5   0.5  0.5  0.6  2.0
0.090 0.0009  1.0  -0.5  0.9  0.9  1.5
"""
PRIMARIES = 12000
# Measured (seed pairs 1-2 and 5-6): builtin 0.92 and 0.77, MCsquare 1.11 and 0.69; with
# one spot moved by a bin, 17-22 (builtin) and 31-42 (MCsquare).
RATIO_RANGE = (0.5, 1.5)

Engine = Callable[[BeamSpec, int, int, Path], np.ndarray]


def _grid() -> VoxelGrid:
    return VoxelGrid(
        origin=np.array(ORIGIN),
        spacing=np.array(SPACING),
        zones=np.zeros(SHAPE, dtype=np.int32),
        zone_names=("water",),
        zone_media=np.array([0], dtype=np.int32),
        media=(WATER,),
    )


def _beam(**changes: object) -> BeamSpec:
    settings: dict[str, object] = {
        "energy": 80.0,
        "energy_sigma": 0.0,
        "position": np.array([0.0, 0.0, -0.5]),
        "direction": np.array([0.0, 0.0, 1.0]),
    }
    settings.update(changes)
    return BeamSpec(**settings)  # type: ignore[arg-type]


def _edges() -> list[np.ndarray]:
    return [ORIGIN[a] + np.arange(SHAPE[a] + 1) * SPACING[a] for a in range(3)]


def builtin(beam: BeamSpec, primaries: int, seed: int, _: Path) -> np.ndarray:
    """Energy deposited per bin (MeV, all primaries)."""
    total = np.zeros(SHAPE)
    edges = _edges()

    def sink(batch: StepBatch) -> None:
        points = np.column_stack([batch.x, batch.y, batch.z])
        total[...] += np.histogramdd(points, bins=edges, weights=batch.edep)[0]

    simulate(_grid(), beam, primaries, seed, sink)
    return total


def mcsquare(beam: BeamSpec, primaries: int, seed: int, work: Path) -> np.ndarray:
    """Energy deposited per voxel (MeV, all primaries simulated)."""
    if install.unavailable_reason() is not None:
        pytest.fail(f"MCsquare must be installed: {install.unavailable_reason()}")
    result = run_mcsquare(_grid(), beam, primaries, seed, work / f"{seed}-{primaries}")
    mass = WATER.density * float(np.prod(SPACING))
    return result.dose * mass * result.primaries_simulated


def _ratio(plan: np.ndarray, other_seed: np.ndarray, summed: np.ndarray) -> float:
    """Σ(plan − sum)² / Σ(plan − other seed)² over the bins with 5 % of the maximum."""
    inside = plan > 0.05 * plan.max()
    return float(((plan - summed)[inside] ** 2).sum() / ((plan - other_seed)[inside] ** 2).sum())


@pytest.mark.parametrize("engine", [builtin, mcsquare], ids=["builtin", "mcsquare"])
def test_a_plan_of_spots_is_the_weighted_sum_of_its_spots(engine: Engine, tmp_path: Path) -> None:
    spots = parse_spot_list(PLAN)
    plan = _beam(spots=spots)
    first, second = engine(plan, PRIMARIES, 1, tmp_path), engine(plan, PRIMARIES, 2, tmp_path)
    total = sum(spot.weight for spot in spots)
    alone = [
        engine(_beam(spots=(spot,)), round(PRIMARIES * spot.weight / total), 10 + i, tmp_path)
        for i, spot in enumerate(spots)
    ]
    summed = np.sum(alone, axis=0)
    ratio = _ratio(first, second, summed)
    assert RATIO_RANGE[0] < ratio < RATIO_RANGE[1], ratio
    # the test tells a spot one bin (2.5 mm) off apart
    shifted = summed - alone[1] + np.roll(alone[1], 1, axis=0)
    assert _ratio(first, second, shifted) > 2 * RATIO_RANGE[1]


def _lateral(dose: np.ndarray, depth_bins: slice, half_width: int = 1) -> np.ndarray:
    """Dose along x in the ``2 * half_width`` y bins around 0, summed over ``depth_bins``."""
    middle = SHAPE[1] // 2
    rows = slice(middle - half_width, middle + half_width)
    return np.asarray(dose[:, rows, depth_bins].sum(axis=(1, 2)))


@pytest.mark.parametrize("engine", [builtin, mcsquare], ids=["builtin", "mcsquare"])
@pytest.mark.parametrize("shape", [FLAT_SQUARE, FLAT_CIRCLE])
def test_a_flat_field_is_flat_inside_and_half_at_its_edge(
    engine: Engine, shape: str, tmp_path: Path
) -> None:
    """A field 3 cm across (half-side or radius 1.5 cm) at 0.5-1.5 cm deep, 30000 protons:
    the 2.5 mm bins within 0.75 cm of the axis hold about 1,500 each (2.6 % noise)."""
    beam = _beam(energy=70.0, shape=shape, sigma_x=1.5, sigma_y=1.5)
    dose = engine(beam, 30000, 3, tmp_path)
    x = ORIGIN[0] + (np.arange(SHAPE[0]) + 0.5) * SPACING[0]
    broad = _lateral(dose, slice(5, 15), half_width=3)
    inside = np.abs(x) < 0.75
    level = broad[inside].mean()
    assert np.all(np.abs(broad[inside] / level - 1) < 0.1)
    assert np.all(broad[np.abs(x) > 2.0] < 0.05 * level)
    narrow = _lateral(dose, slice(5, 15))
    edge = narrow[(np.abs(x) > 1.3) & (np.abs(x) < 1.7)].mean()  # bins 1.375 and 1.625
    assert edge == pytest.approx(0.5 * narrow[inside].mean(), rel=0.15)


@pytest.mark.parametrize("engine", [builtin, mcsquare], ids=["builtin", "mcsquare"])
def test_spots_lean_away_from_a_virtual_source_at_the_sad(engine: Engine, tmp_path: Path) -> None:
    spot = Spot(80.0, 0.0, 1.0, 0.0, 0.2, 0.2, 1.0)
    x = ORIGIN[0] + (np.arange(SHAPE[0]) + 0.5) * SPACING[0]
    centres = []
    for sad in (0.0, 10.0):
        beam = _beam(spots=(spot,), sad_x=sad, sad_y=sad)
        profile = _lateral(engine(beam, 4000, 4, tmp_path), slice(40, 45))  # 4.0-4.5 cm deep
        near = np.abs(x - x[profile.argmax()]) < 0.6
        centres.append(float((profile[near] * x[near]).sum() / profile[near].sum()))
    # from 0.5 cm upstream of the water to 4.25 cm deep: 4.75 cm at a slope of 1/10
    assert centres[0] == pytest.approx(1.0, abs=0.05)
    assert centres[1] - centres[0] == pytest.approx(0.475, abs=0.08)


@pytest.mark.parametrize("engine", [builtin, mcsquare], ids=["builtin", "mcsquare"])
@pytest.mark.parametrize(
    ("position", "direction"),
    [((0.0, 0.0, -0.5), (0, 0, 1)), ((-3.0, 0.0, 3.5), (1, 0, 0)), ((0.0, 3.0, 3.5), (0, -1, 0))],
)
def test_a_spot_lands_off_the_axis_where_the_beam_axes_put_it(
    engine: Engine,
    position: tuple[float, float, float],
    direction: tuple[float, float, float],
    tmp_path: Path,
) -> None:
    """A 60 MeV spot at (1, 0.5) cm along the beam's x and y axes (``beam_axes``): its dose
    centroid lies on the line through position + 1·x̂' + 0.5·ŷ' along the beam."""
    spot = Spot(60.0, 0.0, 1.0, 0.5, 0.1, 0.1, 1.0)
    unit = np.array(direction, dtype=float)
    beam = _beam(spots=(spot,), position=np.array(position), direction=unit)
    dose = engine(beam, 3000, 6, tmp_path)
    centres = np.meshgrid(
        *(ORIGIN[a] + (np.arange(SHAPE[a]) + 0.5) * SPACING[a] for a in range(3)), indexing="ij"
    )
    centroid = np.array([(dose * c).sum() / dose.sum() for c in centres])
    x_axis, y_axis = beam_axes(unit)
    offset = centroid - (np.array(position) + 1.0 * x_axis + 0.5 * y_axis)
    assert np.linalg.norm(offset - (offset @ unit) * unit) < 0.1
