"""The parts of a YAPTIDE editor project, as frozen dataclasses (parsed by ``model``).

Lengths are cm, angles degrees: a figure or detector turned by ``rotation`` (three.js Euler
order XYZ) has the matrix Rx·Ry·Rz, whose columns are its own axes in world coordinates, so a
world point p lies at Rᵀ(p − position) in the figure's frame. Energies are MeV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.editor.records import BeamSpec

__all__ = [
    "AllDetector",
    "BeamSettings",
    "BoxFigure",
    "CylDetector",
    "CylinderFigure",
    "Detector",
    "EditorProject",
    "Figure",
    "Filter",
    "FilterRule",
    "Material",
    "MeshDetector",
    "Modifier",
    "Operation",
    "Output",
    "Particle",
    "Physics",
    "Quantity",
    "SphereFigure",
    "UnsupportedFeature",
    "WorldZone",
    "Zone",
    "ZoneDetector",
    "euler_angles",
    "rotation_matrix",
]

Vector = tuple[float, float, float]
Matrix = tuple[Vector, Vector, Vector]

SYMBOLS = (
    "n", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca",
)  # fmt: skip


class UnsupportedFeature(ConversionError):
    """The project uses something that cannot run here; the message names the item."""


# --- figures, zones, materials ----------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A solid placed at ``position`` and turned by ``rotation`` (degrees about x, y, z)."""

    uuid: str
    name: str
    position: Vector
    rotation: Vector


@dataclass(frozen=True)
class BoxFigure(Figure):
    """A box with edges ``width`` (x), ``height`` (y), ``depth`` (z) centred on its position."""

    width: float
    height: float
    depth: float


@dataclass(frozen=True)
class CylinderFigure(Figure):
    """A cylinder (a tube when ``inner_radius`` > 0) along its own z axis, centred."""

    radius: float
    depth: float
    inner_radius: float = 0.0


@dataclass(frozen=True)
class SphereFigure(Figure):
    """A sphere of ``radius`` around its position."""

    radius: float


@dataclass(frozen=True)
class Material:
    """A material: ICRU id (0 black hole, 1000 vacuum), name and the density used (g/cm³)."""

    uuid: str
    name: str
    icru: int
    density: float


@dataclass(frozen=True)
class Operation:
    """One step of a zone term: ``mode`` applied with the figure ``figure`` (a uuid)."""

    mode: str  # union, subtraction, intersection (older editors: left-/right-subtraction)
    figure: str


@dataclass(frozen=True)
class Zone:
    """A region of one material: the union of its terms, each a sequence of operations."""

    uuid: str
    name: str
    terms: tuple[tuple[Operation, ...], ...]
    material: Material
    custom_stopping_power: bool = False


@dataclass(frozen=True)
class WorldZone:
    """The world: its figure bounds everything; what no zone holds is filled with its material."""

    uuid: str
    name: str
    figure: Figure
    material: Material


# --- beam --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Particle:
    """An editor particle; ``nucleus`` is (Z, A) for neutrons, protons and ions, else None."""

    id: int
    name: str
    nucleus: tuple[int, int] | None

    @property
    def label(self) -> str:
        """How messages name it: ``C-12`` for an ion, else the editor's name."""
        if self.nucleus is None or self.nucleus[1] <= 4:
            return self.name
        z, a = self.nucleus
        return f"{SYMBOLS[z] if z < len(SYMBOLS) else f'Z{z}'}-{a}"


@dataclass(frozen=True)
class BeamSettings:
    """The editor's beam as given (energies in total MeV, divergence in mrad, lengths in cm),
    kept so that an engine can refuse what it cannot run."""

    particle: Particle
    energy: float
    energy_sigma: float
    position: Vector
    direction: Vector
    shape: str  # "Gaussian", "Flat square" or "Flat circular"
    sigma_x: float
    sigma_y: float
    sad: str  # "none", "single" or "double"
    sad_x: float
    sad_y: float
    divergence_x: float
    divergence_y: float
    focal_distance: float
    source_type: str  # "simple" or "file"
    source_file: str  # the spot list (sobp.dat) of a "file" source
    primaries: int


# --- scoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Detector:
    """Where an output scores; Zone and All detectors ignore position and rotation."""

    kind: ClassVar[str] = ""
    uuid: str
    name: str
    position: Vector
    rotation: Vector


@dataclass(frozen=True)
class CylDetector(Detector):
    """Cylindrical bins in r (from ``inner_radius``), φ and z, along the detector's z axis."""

    kind: ClassVar[str] = "Cyl"
    radius: float
    inner_radius: float
    depth: float
    radial_segments: int
    angular_segments: int
    z_segments: int


@dataclass(frozen=True)
class MeshDetector(Detector):
    """Cartesian bins over a box ``width`` × ``height`` × ``depth`` centred on its position."""

    kind: ClassVar[str] = "Mesh"
    width: float
    height: float
    depth: float
    x_segments: int
    y_segments: int
    z_segments: int


@dataclass(frozen=True)
class ZoneDetector(Detector):
    """One bin: the zone ``zone`` (a uuid, the world zone's included)."""

    kind: ClassVar[str] = "Zone"
    zone: str


@dataclass(frozen=True)
class AllDetector(Detector):
    """One bin: the whole world."""

    kind: ClassVar[str] = "All"


@dataclass(frozen=True)
class FilterRule:
    """``keyword operator value``, e.g. ``Z == 1`` or ``GEN >= 1``."""

    keyword: str
    operator: str
    value: float


@dataclass(frozen=True)
class Filter:
    """Steps pass when every rule holds; ``unsupported`` says what rules cannot express."""

    uuid: str
    name: str
    rules: tuple[FilterRule, ...]
    unsupported: str = ""


@dataclass(frozen=True)
class Modifier:
    """A differential axis: ``bins`` bins of ``kind`` over [lower, upper], linear or log."""

    kind: str
    lower: float
    upper: float
    bins: int
    log: bool


@dataclass(frozen=True)
class Quantity:
    """One scored quantity (a page of its output's estimator)."""

    uuid: str
    name: str
    keyword: str
    filter: Filter | None
    modifiers: tuple[Modifier, ...]
    settings: tuple[str, ...] = ()  # editor settings it uses beyond the plain quantity


@dataclass(frozen=True)
class Output:
    """An editor output: a detector and its quantities (an estimator of the results)."""

    uuid: str
    name: str
    detector: Detector
    quantities: tuple[Quantity, ...]
    trace: bool = False


@dataclass(frozen=True)
class Physics:
    """The project's transport switches (engines use what they can)."""

    nuclear_reactions: bool = True
    energy_loss: float = 0.03
    straggling: str = "Vavilov"
    scattering: str = "Moliere"


@dataclass(frozen=True)
class EditorProject:
    """A parsed editor project."""

    title: str
    simulator: str
    figures: tuple[Figure, ...]
    zones: tuple[Zone, ...]
    world: WorldZone
    materials: tuple[Material, ...]
    beam: BeamSpec  # the beam as engines take it (Gaussian spot and divergence)
    beam_settings: BeamSettings
    detectors: tuple[Detector, ...]
    filters: tuple[Filter, ...]
    outputs: tuple[Output, ...]
    physics: Physics
    special_components: tuple[str, ...] = ()

    @property
    def primaries(self) -> int:
        """The primaries of the whole job (``beam.numberOfParticles``)."""
        return self.beam_settings.primaries

    def figure(self, uuid: str) -> Figure:
        """The figure of that uuid (the world's own included)."""
        for figure in (*self.figures, self.world.figure):
            if figure.uuid == uuid:
                return figure
        raise KeyError(f"figure {uuid!r} is not in the project")

    def zone_index(self, uuid: str) -> int:
        """The zone's index in the voxel grid: zones in editor order, then the world zone."""
        for index, zone in enumerate(self.zones):
            if zone.uuid == uuid:
                return index
        if uuid == self.world.uuid:
            return len(self.zones)
        raise KeyError(f"zone {uuid!r} is not in the project")


def rotation_matrix(degrees: Sequence[float]) -> Matrix:
    """The editor's rotation Rx·Ry·Rz: columns are the figure's axes in world coordinates."""
    a, b, c = (math.radians(value) for value in degrees)
    ca, sa, cb, sb, cc, sc = (
        math.cos(a),
        math.sin(a),
        math.cos(b),
        math.sin(b),
        math.cos(c),
        math.sin(c),
    )
    return (
        (cb * cc, -cb * sc, sb),
        (ca * sc + sa * sb * cc, ca * cc - sa * sb * sc, -sa * cb),
        (sa * sc - ca * sb * cc, sa * cc + ca * sb * sc, ca * cb),
    )


def euler_angles(matrix: Sequence[Sequence[float]]) -> Vector:
    """Degrees (x, y, z) whose ``rotation_matrix`` is ``matrix`` (a rotation)."""
    b = math.asin(max(-1.0, min(1.0, matrix[0][2])))
    if abs(matrix[0][2]) < 1 - 1e-12:
        a = math.atan2(-matrix[1][2], matrix[2][2])
        c = math.atan2(-matrix[0][1], matrix[0][0])
    else:  # gimbal lock: only a ± c is defined, put it all in a
        a, c = math.atan2(matrix[2][1], matrix[1][1]), 0.0
    return (math.degrees(a) + 0.0, math.degrees(b) + 0.0, math.degrees(c) + 0.0)  # no -0.0
