"""The grid MCsquare scores dose and LET on: the CT's voxels split where the detectors need it.

MCsquare transports through the CT and can score on a grid of its own
(``Independent_scoring_grid``). A detector binned finer than the CT's voxels would otherwise
read each voxel's mean in every bin it covers: ex1's pencil beam stays narrower than a 1 mm
voxel for 14 cm, and its 0.5 mm map read half the dose on the axis (80.7 % of it passed
2 %/2 mm against SHIELD-HIT12A; 99 % or more scored on 0.5 mm).

The scoring grid covers the box around the detectors the outputs use (a Zone detector's
zone as the CT has it, an All detector the whole CT), clipped to the CT and grown to whole CT
voxels. Each CT voxel there is split ``n`` times along every axis, ``n`` the least that makes
a scoring voxel no wider than the finest bin of those detectors (at most ``MAX_SPLIT``),
lowered until the grid has at most ``MAX_VOXELS`` voxels. With ``n`` 1 MCsquare scores on the
CT itself. A scoring voxel lies in one CT voxel and takes its zone: its medium is the one
MCsquare transported through, so Volume and Mass weighting agree.
"""

from __future__ import annotations

import math

import numpy as np

from cyclotron.simulators.editor.geometry import MAX_VOXELS, DetectorBins, Int64Array
from cyclotron.simulators.editor.project import (
    AllDetector,
    Detector,
    EditorProject,
    ZoneDetector,
    rotation_matrix,
)
from cyclotron.simulators.editor.project import CylDetector as Cyl
from cyclotron.simulators.editor.project import MeshDetector as Mesh
from cyclotron.simulators.editor.records import FloatArray, VoxelGrid

#: The most parts a CT voxel is split into along each axis.
MAX_SPLIT = 4
_EDGE = 1e-6  # of a voxel: a detector face on a voxel edge does not take the next voxel


def scoring_grid(
    project: EditorProject, grid: VoxelGrid, *, max_voxels: int = MAX_VOXELS
) -> VoxelGrid:
    """The grid MCsquare scores on (see above): ``grid`` itself where no split fits."""
    detectors = [output.detector for output in project.outputs]
    if not detectors:
        return grid
    finest = min(DetectorBins(project, d, grid).finest_width() for d in detectors)
    spacing = float(np.max(grid.spacing))
    split = min(MAX_SPLIT, max(1, math.ceil(spacing / finest - _EDGE)))
    low, high = _voxel_box(project, detectors, grid)
    counts = high - low
    if np.any(counts <= 0):
        return grid
    while split > 1 and math.prod(int(c) * split for c in counts) > max_voxels:
        split -= 1
    if split == 1:
        return grid
    zones = grid.zones[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    for axis in range(3):
        zones = np.repeat(zones, split, axis=axis)
    return VoxelGrid(
        origin=grid.origin + low * grid.spacing,
        spacing=grid.spacing / split,
        zones=np.ascontiguousarray(zones),
        zone_names=grid.zone_names,
        zone_media=grid.zone_media,
        media=grid.media,
    )


def _voxel_box(
    project: EditorProject, detectors: list[Detector], grid: VoxelGrid
) -> tuple[Int64Array, Int64Array]:
    """The CT voxel indices [low, high) of the box around the detectors, clipped to the CT."""
    shape = np.array(grid.shape)
    lows, highs = [], []
    for detector in detectors:
        if isinstance(detector, AllDetector):
            return np.zeros(3, dtype=np.int64), shape.astype(np.int64)
        if isinstance(detector, ZoneDetector):
            held = grid.zones == project.zone_index(detector.zone)
            spans = [np.flatnonzero(held.any(axis=tuple({0, 1, 2} - {a}))) for a in range(3)]
            if all(len(span) for span in spans):
                lows.append(np.array([span[0] for span in spans]))
                highs.append(np.array([span[-1] + 1 for span in spans]))
            continue
        low, high = _detector_box(detector)
        lows.append(np.floor((low - grid.origin) / grid.spacing + _EDGE))
        highs.append(np.ceil((high - grid.origin) / grid.spacing - _EDGE))
    if not lows:
        return np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    low = np.clip(np.min(lows, axis=0), 0, shape).astype(np.int64)
    high = np.clip(np.max(highs, axis=0), 0, shape).astype(np.int64)
    return low, high


def _detector_box(detector: Detector) -> tuple[FloatArray, FloatArray]:
    """The axis-aligned box (cm) around a Mesh or Cyl detector, turned as it is."""
    if isinstance(detector, Mesh):
        half = np.array([detector.width, detector.height, detector.depth]) / 2
    elif isinstance(detector, Cyl):
        half = np.array([detector.radius, detector.radius, detector.depth / 2])
    else:
        raise TypeError(f"unknown detector kind {detector.kind!r}")
    half = np.abs(np.asarray(rotation_matrix(detector.rotation))) @ half
    centre = np.asarray(detector.position, dtype=np.float64)
    return centre - half, centre + half


def scoring_settings(scoring: VoxelGrid, grid: VoxelGrid) -> dict[str, str]:
    """config.txt's lines for scoring on ``scoring`` rather than on the CT ``grid``: its low
    corner from the CT's (MCsquare's frame is the CT's, from its first corner), its size and
    its voxels, in cm; none where ``scoring`` is the CT."""
    if scoring is grid:
        return {}
    origin = scoring.origin - grid.origin

    def triple(values: FloatArray | tuple[int, ...]) -> str:
        # MCsquare refuses a vector whose last number the line's end follows directly
        return " ".join(f"{v:.9g}" for v in values) + " "

    return {
        "Independent_scoring_grid": "True",
        "Scoring_origin": triple(origin),
        "Scoring_grid_size": triple(scoring.shape),
        "Scoring_voxel_spacing": triple(scoring.spacing),
        "Dose_weighting_algorithm": "Volume",
    }
