"""Scoring what an engine gives per voxel (MCsquare's dose and the dose-averaged LET of its
protons) into the project's outputs: each Dose page is the mass-weighted mean of the voxel
doses in a detector bin, each dLET page (filtered to protons) the dose-weighted mean of their
LET (spec/results.md pages, as ``scoring.Scoring`` writes them for step records)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from cyclotron.simulators.editor.geometry import DetectorBins, Int64Array, voxel_centres
from cyclotron.simulators.editor.model import UnsupportedFeature
from cyclotron.simulators.editor.project import EditorProject
from cyclotron.simulators.editor.records import FloatArray, IntArray, VoxelGrid
from cyclotron.simulators.editor.scoring import (
    DETECTOR_KINDS,
    KEV_PER_UM_IN_MEV_PER_CM,
    PAGES,
    PROTONS,
    estimator_of,
    page_of,
)
from cyclotron.simulators.editor.support import output_problems

#: The quantities ``estimators_from_voxels`` maps from voxel dose and LET.
VOXEL_QUANTITIES = frozenset({"Dose", "dLET"})
CHUNK = 1 << 20
MAX_PARTS = 4  # per axis, when a voxel is split among bins narrower than itself


def check_voxel_scorable(project: EditorProject) -> None:
    """Refuse, naming them, the outputs that voxel dose and dose-averaged LET cannot give:
    other quantities, filters, modifiers. A dLET must be filtered to protons (Z == 1 and
    A == 1): the engine's LET is that of protons, primary and secondary, and served for all
    particles it would read as SHIELD-HIT12A's, which heavier fragments raise."""
    problems = list(output_problems(project.outputs, VOXEL_QUANTITIES, DETECTOR_KINDS))
    for output in project.outputs:
        for quantity in output.quantities:
            what = f"quantity {quantity.name!r} of output {output.name!r}"
            chosen = quantity.filter
            rules = {(r.keyword, r.operator, r.value) for r in chosen.rules} if chosen else set()
            if quantity.keyword == "dLET" and chosen is None:
                problems.append(f"{what} without a filter for protons (Z == 1, A == 1)")
            elif chosen is not None and (quantity.keyword != "dLET" or rules != PROTONS):
                problems.append(f"the filter {chosen.name!r} of {what}")
            if quantity.modifiers:
                problems.append(f"the differential modifiers of {what}")
    if problems:
        raise UnsupportedFeature(f"{'; '.join(problems)}: not supported from voxel doses")


def estimators_from_voxels(
    project: EditorProject,
    grid: VoxelGrid,
    dose: FloatArray,
    let: FloatArray | None,
    primaries: int,
) -> list[dict[str, Any]]:
    """Estimators from dose per voxel (MeV/g/prim) and dose-averaged LET (keV/µm) on ``grid``.

    A Dose page holds, per detector bin, the mass-weighted mean dose of the voxels whose centres
    fall in it; a dLET page the dose-weighted mean LET (in MeV/cm). A bin no voxel centre falls
    in (a detector thinner than a voxel) takes the voxel under its representative point.
    """
    check_voxel_scorable(project)
    if let is None and any(q.keyword == "dLET" for o in project.outputs for q in o.quantities):
        raise UnsupportedFeature("the quantity 'dLET': the engine gave no LET")
    if np.shape(dose) != grid.shape or (let is not None and np.shape(let) != grid.shape):
        raise ValueError(f"dose and LET must have the grid's shape {grid.shape}")
    density = np.array([medium.density for medium in grid.media])[grid.zone_media]
    fields = _VoxelFields(grid, np.asarray(dose, dtype=np.float64), let, np.append(density, 0.0))
    result = []
    for output in project.outputs:
        bins = DetectorBins(project, output.detector, grid)
        mass, dose_mass, let_dose_mass, count = fields.sums(bins)
        pages = []
        for number, quantity in enumerate(output.quantities):
            kind = PAGES[quantity.keyword]
            if quantity.keyword == "Dose":
                values = np.divide(dose_mass, mass, out=np.zeros(bins.size), where=mass > 0)
                values = fields.fill(values, count, bins, fields.dose)
            else:
                values = np.divide(
                    let_dose_mass, dose_mass, out=np.zeros(bins.size), where=dose_mass > 0
                )
                values = fields.fill(values, count, bins, fields.let) * KEV_PER_UM_IN_MEV_PER_CM
            pages.append(page_of(number, quantity, kind, values, bins))
        result.append(estimator_of(output, pages, primaries))
    return result


class _VoxelFields:
    """Dose, LET and density over a grid, summed per detector bin in bounded chunks."""

    def __init__(
        self, grid: VoxelGrid, dose: FloatArray, let: FloatArray | None, density: FloatArray
    ) -> None:
        self.grid = grid
        self.dose = dose.reshape(-1)
        self.let = None if let is None else np.asarray(let, dtype=np.float64).reshape(-1)
        self._density = density  # per zone, and 0 for zone -1 (the last entry)

    def sums(self, bins: DetectorBins) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per bin: Σρ, Σρ·D, Σρ·D·L over the points in it, and their count.

        The points are the voxel centres, or where the detector's bins are narrower than a
        voxel, the centres of the voxels' equal parts (up to 4 per axis), so that a bin a voxel
        straddles gets its share of it rather than nothing.
        """
        totals = [np.zeros(bins.size) for _ in range(4)]
        spacing = self.grid.spacing
        parts = int(min(MAX_PARTS, max(1, math.ceil(float(np.max(spacing)) / bins.finest_width()))))
        offsets = (np.arange(parts) + 0.5) / parts - 0.5
        zones = self.grid.zones.reshape(-1)
        for start in range(0, zones.size, CHUNK):
            stop = min(start + CHUNK, zones.size)
            centres = voxel_centres(self.grid.origin, spacing, self.grid.shape, start, stop)
            zone = zones[start:stop]
            for shift in itertools.product(offsets, repeat=3):
                points = centres + np.array(shift) * spacing
                index = bins.index(points[:, 0], points[:, 1], points[:, 2], zone)
                keep = np.flatnonzero(index >= 0)
                self._add(totals, index[keep], keep, start, stop, zone)
        return totals[0], totals[1], totals[2], totals[3]

    def _add(
        self,
        totals: list[FloatArray],
        cells: Int64Array,
        keep: Int64Array,
        start: int,
        stop: int,
        zone: IntArray,
    ) -> None:
        mass = self._density[zone[keep]]
        dose_mass = mass * self.dose[start:stop][keep]
        let = self.let[start:stop][keep] if self.let is not None else np.zeros(len(keep))
        for total, weight in zip(totals, (mass, dose_mass, dose_mass * let, None), strict=True):
            total += np.bincount(cells, weight, len(total))

    def fill(
        self, values: FloatArray, count: FloatArray, bins: DetectorBins, field: FloatArray | None
    ) -> FloatArray:
        """Values of bins without voxel centres taken from the voxel under their point."""
        points = bins.points()
        empty = np.flatnonzero(count == 0)
        if points is None or field is None or len(empty) == 0:
            return values
        grid = self.grid
        ijk = np.floor((points[empty] - grid.origin) / grid.spacing).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < np.array(grid.shape)), axis=1)
        flat = np.ravel_multi_index(tuple(ijk[inside].T), grid.shape)
        filled = values.copy()
        filled[empty[inside]] = field[flat]
        return filled
