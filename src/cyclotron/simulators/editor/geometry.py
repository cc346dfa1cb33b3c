"""Where points are in an editor project: in which zone, and in which bin of a detector.

``zone_at`` classifies points exactly against the project's solids (vectorised NumPy, in
chunks): a point inside the world figure belongs to the first zone, in editor order, that
holds it, else to the world zone (index ``len(zones)``, filled with the world's material);
outside the world figure it gets -1. Solids include their surface, and a zone subtracting a
figure excludes that same surface, so adjacent zones share no point. ``voxelise`` samples
``zone_at`` at voxel centres over the world's bounding box. ``DetectorBins`` maps points to the
flat (Fortran-order) bin index of a detector, the same for scored steps and for voxels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cyclotron.simulators.editor.project import (
    AllDetector,
    BoxFigure,
    CylDetector,
    CylinderFigure,
    Detector,
    EditorProject,
    Figure,
    MeshDetector,
    SphereFigure,
    Vector,
    WorldZone,
    Zone,
    ZoneDetector,
    rotation_matrix,
)
from cyclotron.simulators.editor.records import FloatArray, IntArray, Medium, VoxelGrid

__all__ = [
    "Axis",
    "DetectorBins",
    "figure_volume",
    "voxel_centres",
    "voxelise",
    "world_bounds",
    "zone_at",
]

BoolArray = npt.NDArray[np.bool_]
CHUNK = 1 << 20  # points classified at once: ~100 MB of temporaries at most
SPACINGS_CM = 0.05  # the finest default voxel (0.5 mm), doubled until the grid fits
MAX_VOXELS = 20_000_000


def zone_at(project: EditorProject, points: npt.ArrayLike) -> IntArray:
    """The zone index of each point of an (N, 3) array (cm); -1 outside the world."""
    xyz = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    result = np.empty(len(xyz), dtype=np.int32)
    for start in range(0, len(xyz), CHUNK):
        result[start : start + CHUNK] = _classify(project, xyz[start : start + CHUNK])
    return result


def _classify(project: EditorProject, xyz: FloatArray) -> IntArray:
    figures = {figure.uuid: figure for figure in project.figures}
    inside: dict[str, BoolArray] = {}

    def member(uuid: str) -> BoolArray:
        if uuid not in inside:
            inside[uuid] = contains(figures[uuid], xyz)
        return inside[uuid]

    world = contains(project.world.figure, xyz)
    result = np.where(world, len(project.zones), -1).astype(np.int32)
    free = world.copy()
    for index, zone in enumerate(project.zones):
        held = _zone_mask(zone, member, len(xyz))
        result[held & free] = index
        free &= ~held
    return result


def _zone_mask(zone: Zone, member: Callable[[str], BoolArray], size: int) -> BoolArray:
    """The union of the zone's terms, each its figures combined left to right from nothing."""
    total = np.zeros(size, dtype=bool)
    for term in zone.terms:
        part = np.zeros(size, dtype=bool)
        for operation in term:
            solid = member(operation.figure)
            if operation.mode == "union":
                part = part | solid
            elif operation.mode == "intersection":
                part = part & solid
            elif operation.mode == "right-subtraction":
                part = solid & ~part
            else:  # subtraction, left-subtraction
                part = part & ~solid
        total |= part
    return total


def local(xyz: FloatArray, position: Vector, rotation: Vector) -> FloatArray:
    """Points in the frame of something placed at ``position`` turned by ``rotation``."""
    shifted: FloatArray = xyz - np.asarray(position, dtype=np.float64)
    if not any(rotation):
        return shifted
    turned: FloatArray = shifted @ np.asarray(rotation_matrix(rotation))  # rows·R is Rᵀ·p
    return turned


def contains(figure: Figure, xyz: FloatArray) -> BoolArray:
    """Whether each point lies in the figure, its surface included."""
    p = local(xyz, figure.position, figure.rotation)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if isinstance(figure, BoxFigure):
        half = (figure.width / 2, figure.height / 2, figure.depth / 2)
        return (np.abs(x) <= half[0]) & (np.abs(y) <= half[1]) & (np.abs(z) <= half[2])
    if isinstance(figure, CylinderFigure):
        r2 = x * x + y * y
        inner = r2 >= figure.inner_radius**2 if figure.inner_radius > 0 else True
        return (r2 <= figure.radius**2) & inner & (np.abs(z) <= figure.depth / 2)
    if isinstance(figure, SphereFigure):
        return x * x + y * y + z * z <= figure.radius**2
    raise TypeError(f"unknown figure type {type(figure).__name__}")


def figure_volume(figure: Figure) -> float:
    """The figure's volume (cm³)."""
    if isinstance(figure, BoxFigure):
        return figure.width * figure.height * figure.depth
    if isinstance(figure, CylinderFigure):
        return math.pi * (figure.radius**2 - figure.inner_radius**2) * figure.depth
    if isinstance(figure, SphereFigure):
        return 4.0 / 3.0 * math.pi * figure.radius**3
    raise TypeError(f"unknown figure type {type(figure).__name__}")


def world_bounds(project: EditorProject) -> tuple[FloatArray, FloatArray]:
    """The axis-aligned box (low and high corners, cm) around the world figure."""
    figure = project.world.figure
    matrix = np.abs(np.asarray(rotation_matrix(figure.rotation)))
    if isinstance(figure, BoxFigure):
        half = matrix @ np.array([figure.width, figure.height, figure.depth]) / 2
    elif isinstance(figure, CylinderFigure):
        axis = matrix[:, 2]
        half = axis * figure.depth / 2 + figure.radius * np.sqrt(np.clip(1 - axis**2, 0, 1))
    elif isinstance(figure, SphereFigure):
        half = np.full(3, figure.radius)
    else:
        raise TypeError(f"unknown figure type {type(figure).__name__}")
    centre = np.asarray(figure.position, dtype=np.float64)
    return centre - half, centre + half


def voxelise(
    project: EditorProject, *, spacing: float | None = None, max_voxels: int = MAX_VOXELS
) -> VoxelGrid:
    """The project as cubic voxels over the world's bounding box, classified at their centres.

    The grid starts at the box's low corner; ``spacing`` (cm) defaults to the finest of 0.5, 1,
    2, 4 … mm that keeps at most ``max_voxels`` voxels. ValueError if a given spacing does not.
    """
    low, high = world_bounds(project)
    extent = high - low
    step = spacing if spacing is not None else _default_spacing(extent, max_voxels)
    if step <= 0:
        raise ValueError(f"voxel spacing must be positive, not {step}")
    shape = _shape(extent, step)
    if math.prod(shape) > max_voxels:
        raise ValueError(
            f"a {step} cm grid over the world needs {math.prod(shape)} voxels "
            f"(at most {max_voxels}): choose a coarser spacing"
        )
    zones = np.empty(shape, dtype=np.int32)
    flat = zones.reshape(-1)  # a view, C order
    spacing_xyz = np.full(3, float(step))
    for start in range(0, flat.size, CHUNK):
        centres = voxel_centres(low, spacing_xyz, shape, start, min(start + CHUNK, flat.size))
        flat[start : start + CHUNK] = _classify(project, centres)
    names, zone_media, media = _media_tables(project)
    return VoxelGrid(low, spacing_xyz, zones, names, zone_media, media)


def voxel_centres(
    origin: FloatArray, spacing: FloatArray, shape: tuple[int, int, int], start: int, stop: int
) -> FloatArray:
    """The centres (cm) of the voxels ``start`` to ``stop`` of a grid, in C order."""
    index = np.arange(start, stop, dtype=np.int64)
    i, rest = np.divmod(index, shape[1] * shape[2])
    j, k = np.divmod(rest, shape[2])
    return origin + (np.stack([i, j, k], axis=1) + 0.5) * spacing


def _default_spacing(extent: FloatArray, max_voxels: int) -> float:
    step = SPACINGS_CM
    while math.prod(_shape(extent, step)) > max_voxels:
        step *= 2
    return step


def _shape(extent: FloatArray, step: float) -> tuple[int, int, int]:
    nx, ny, nz = (max(1, math.ceil(length / step - 1e-9)) for length in extent)
    return nx, ny, nz


def _media_tables(project: EditorProject) -> tuple[tuple[str, ...], IntArray, tuple[Medium, ...]]:
    """Zone names, each zone's medium index, and the media (one per ICRU, name, density)."""
    media: list[Medium] = []
    indices = []
    zones: list[Zone | WorldZone] = [*project.zones, project.world]
    for zone in zones:
        medium = Medium(zone.material.icru, zone.material.name, zone.material.density)
        if medium not in media:
            media.append(medium)
        indices.append(media.index(medium))
    names = tuple(zone.name for zone in zones)
    return names, np.array(indices, dtype=np.int32), tuple(media)


# --- detector bins -----------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a detector: its name, unit, and bin centres (what SHIELD-HIT12A's
    reader writes: ``Position (X)`` …, ``Radius (R)``, ``Angle (PHI)``)."""

    name: str
    unit: str
    values: FloatArray


Int64Array = npt.NDArray[np.int64]


class DetectorBins:
    """A detector's spatial bins: the flat index (Fortran order: first axis fastest) of points,
    and per bin its volume and a representative point; ``axes`` label the three axes.

    Mesh bins are x, y, z over its box; Cyl bins r (from the inner radius), φ (radians from the
    detector's x axis) and z; Zone and All detectors have one bin: the zone (its volume counted
    in the voxel grid) or the whole world. Axis values are bin centres in world coordinates as
    if the detector were not turned (the editor does not turn detectors; a turned one still
    bins in its own frame).
    """

    def __init__(self, project: EditorProject, detector: Detector, grid: VoxelGrid) -> None:
        self.detector = detector
        self._zone = -1
        if isinstance(detector, MeshDetector):
            self._extent = (detector.width, detector.height, detector.depth)
            self.shape = (detector.x_segments, detector.y_segments, detector.z_segments)
            names = ("Position (X)", "Position (Y)", "Position (Z)")
            lows = [c - e / 2 for c, e in zip(detector.position, self._extent, strict=True)]
            self.axes = tuple(
                Axis(n, "cm", _centres(lo, lo + e, k))
                for n, lo, e, k in zip(names, lows, self._extent, self.shape, strict=True)
            )
            self.volumes = np.full(math.prod(self.shape), math.prod(self._extent) / self.size)
        elif isinstance(detector, CylDetector):
            self.shape = (detector.radial_segments, detector.angular_segments, detector.z_segments)
            edges = np.linspace(detector.inner_radius, detector.radius, self.shape[0] + 1)
            z0 = detector.position[2] - detector.depth / 2
            self.axes = (
                Axis(
                    "Radius (R)",
                    "cm",
                    _centres(detector.inner_radius, detector.radius, self.shape[0]),
                ),
                Axis("Angle (PHI)", "radians", _centres(0.0, 2 * math.pi, self.shape[1])),
                Axis("Position (Z)", "cm", _centres(z0, z0 + detector.depth, self.shape[2])),
            )
            ring = math.pi * np.diff(edges**2) * detector.depth / (self.shape[1] * self.shape[2])
            self.volumes = np.tile(ring, self.shape[1] * self.shape[2])
        else:
            self.shape = (1, 1, 1)
            self.axes = tuple(Axis("", "", np.zeros(1)) for _ in range(3))
            if isinstance(detector, ZoneDetector):
                self._zone = project.zone_index(detector.zone)
                count = int(np.count_nonzero(grid.zones == self._zone))
                self.volumes = np.array([count * float(np.prod(grid.spacing))])
            elif isinstance(detector, AllDetector):
                self.volumes = np.array([figure_volume(project.world.figure)])
            else:
                raise TypeError(f"unknown detector kind {detector.kind!r}")

    @property
    def size(self) -> int:
        """The number of bins."""
        return math.prod(self.shape)

    def finest_width(self) -> float:
        """The narrowest extent of a bin along its spatial axes (cm; infinite for one bin)."""
        detector = self.detector
        if isinstance(detector, MeshDetector):
            return min(e / k for e, k in zip(self._extent, self.shape, strict=True))
        if isinstance(detector, CylDetector):
            radial = (detector.radius - detector.inner_radius) / self.shape[0]
            return min(radial, detector.depth / self.shape[2])
        return math.inf

    def index(self, x: FloatArray, y: FloatArray, z: FloatArray, zone: IntArray) -> Int64Array:
        """The flat bin index of each point (cm) in zone ``zone``; -1 outside the detector."""
        detector = self.detector
        if isinstance(detector, ZoneDetector):
            return np.where(zone == self._zone, 0, -1).astype(np.int64)
        if isinstance(detector, AllDetector):
            return np.where(zone >= 0, 0, -1).astype(np.int64)
        lx, ly, lz = _local_axes(x, y, z, detector.position, detector.rotation)
        if isinstance(detector, MeshDetector):
            ix, valid = _linear_bins(lx, -self._extent[0] / 2, self._extent[0], self.shape[0])
            iy, valid_y = _linear_bins(ly, -self._extent[1] / 2, self._extent[1], self.shape[1])
        else:
            assert isinstance(detector, CylDetector)
            ix, iy, valid, valid_y = self._ring_bins(detector, lx, ly)
        iz, valid_z = _linear_bins(lz, -detector.depth / 2, detector.depth, self.shape[2])
        flat = ix + self.shape[0] * (iy + self.shape[1] * iz)
        flat[~(valid & valid_y & valid_z)] = -1
        return flat

    def _ring_bins(
        self, detector: CylDetector, lx: FloatArray, ly: FloatArray
    ) -> tuple[Int64Array, Int64Array, BoolArray, BoolArray]:
        r2 = lx * lx + ly * ly
        valid = (r2 >= detector.inner_radius**2) & (r2 < detector.radius**2)
        nr, nphi = self.shape[0], self.shape[1]
        ir = np.zeros(len(lx), dtype=np.int64)
        if nr > 1:
            scale = nr / (detector.radius - detector.inner_radius)
            ir = np.minimum(
                ((np.sqrt(r2) - detector.inner_radius) * scale).astype(np.int64), nr - 1
            )
        iphi = np.zeros(len(lx), dtype=np.int64)
        if nphi > 1:
            phi = np.mod(np.arctan2(ly, lx), 2 * math.pi)
            iphi = np.minimum((phi * (nphi / (2 * math.pi))).astype(np.int64), nphi - 1)
        return ir, iphi, valid, np.ones(len(lx), dtype=bool)

    def points(self) -> FloatArray | None:
        """A representative point (world cm) of each bin: its centre, or for a cylinder bin
        around the whole axis a point on the axis; None for Zone and All detectors."""
        detector = self.detector
        if not isinstance(detector, MeshDetector | CylDetector):
            return None
        a, b, c = (np.asarray(axis.values) for axis in self.axes)
        grid = np.stack(np.meshgrid(a, b, c, indexing="ij"), axis=-1).reshape(-1, 3, order="F")
        if isinstance(detector, CylDetector):
            whole = detector.inner_radius == 0 and self.shape[:2] == (1, 1)
            r = np.zeros(len(grid)) if whole else grid[:, 0]
            offsets = np.stack([r * np.cos(grid[:, 1]), r * np.sin(grid[:, 1]), grid[:, 2]], axis=1)
            offsets[:, 2] -= detector.position[2]
        else:
            offsets = grid - np.asarray(detector.position)
        matrix = np.asarray(rotation_matrix(detector.rotation))
        points: FloatArray = np.asarray(detector.position) + offsets @ matrix.T
        return points


def _centres(low: float, high: float, bins: int) -> FloatArray:
    return low + (np.arange(bins, dtype=np.float64) + 0.5) * ((high - low) / bins)


def _local_axes(
    x: FloatArray, y: FloatArray, z: FloatArray, position: Vector, rotation: Vector
) -> tuple[FloatArray, FloatArray, FloatArray]:
    if not any(rotation):
        return x - position[0], y - position[1], z - position[2]
    p = local(np.stack([x, y, z], axis=1), position, rotation)
    return p[:, 0], p[:, 1], p[:, 2]


def _linear_bins(
    values: FloatArray, low: float, width: float, bins: int
) -> tuple[Int64Array, BoolArray]:
    """Bin of each value in [low, low + width) split in ``bins``; and whether it is inside."""
    if bins == 1:
        return np.zeros(len(values), dtype=np.int64), (values >= low) & (values < low + width)
    u = (values - low) * (bins / width)
    valid = (u >= 0) & (u < bins)
    return u.astype(np.int64), valid
