"""TOPAS input from a YAPTIDE editor project: one parameter file, ``topas_config.txt``.

Geometry. TOPAS has no boolean solids: components are boxes, cylinders and spheres placed
inside one another, and a component's region is its solid minus its children. A zone therefore
becomes the component of the figure it starts from (its only ``union``, named after the figure),
and every figure it subtracts must be the figure of another zone, placed inside that component
(the innermost one when several zones subtract it). The world zone becomes the component
``WorldZone`` inside a vacuum ``World`` box; figures no zone subtracts are its children. This is
exact only when each child lies wholly inside its parent and siblings do not overlap, which the
converter checks on the shapes (touching faces allowed). A zone made of several union terms or
an intersection, a subtracted figure that sticks out of the figure it is subtracted from or that
no zone is made of, overlapping siblings, zones subtracting one another, or a hollow cylinder
with figures inside it is refused, naming the zone. Figures no zone uses are left out.

A black-hole world zone (ICRU 0) is vacuum in TOPAS: Geant4 ends every track that leaves the
``World``, and a straight vacuum flight out of a convex figure never comes back to it. So it is
accepted only around a single convex top-level figure that holds the beam's start and every
scoring grid; black hole anywhere else is refused.

Materials map ICRU numbers to Geant4 NIST names (``G4_WATER``, vacuum ``G4_Galactic``) at
Geant4's density; a density the project sets (a zone's override or ``customMaterial``) must
equal that material's within 0.1 %, since TOPAS changes a density only by redefining the
material element by element. A listed material's own density is not the project's choice.
Figures, detectors and the beam take the editor's position (cm) and rotation (degrees, three.js
Euler order XYZ); TOPAS places a component turned by the inverse of ``RotZ·RotY·RotX`` in its
parent's frame, so the angles are written negated.

Beam: ``So/<beam>`` of type ``Beam`` at ``Ge/BeamPosition`` (a Group turned so that its +z, the
TOPAS beam axis, is the editor direction); ``BeamEnergy`` is the total kinetic energy (MeV/nucl
times A for nuclei), ``BeamEnergySpread`` the Gaussian sigma in percent of the energy, ions are
``GenericIon(Z,A,Z)`` (without the charge TOPAS starts them neutral); Gaussian sigma or flat
square (half-widths) and circular profiles; ``NumberOfHistoriesInRun`` is the whole job's
primaries and ``Ts/Seed`` 1, both for each task to override. SAD, divergence, active energy
cut-offs and source files are refused. Physics: the TOPAS modular list (Geant4 standard EM
option 4, plus its hadronic modules when nuclear reactions are on). The editor's SHIELD-HIT12A
transport settings (straggling and scattering models, DELTAE, stopping-power table) choose
models, not the setup, and are not carried over; turning straggling or scattering off is refused.

Scoring: a Mesh or Cyl detector becomes a parallel-world ``TsBox``/``TsCylinder`` binned like it,
a Zone detector its zone's component (only for a zone with no figures inside, as TOPAS divides
by the whole solid's volume). Quantity j of output ``o`` is the scorer ``Sc/o__j`` writing CSV to
``o__j.csv``: Dose as ``DoseToMedium``, Energy as ``EnergyDeposit``, Fluence as ``Fluence``
(per-history mean and standard deviation, in TOPAS's units), dLET/tLET as ``ProtonLET`` weighted
by dose/track (its sum, the averaged LET in MeV/mm/(g/cm3); only with a filter that selects
protons). Particle filters (Z and A, or an editor particle) and generation filters (primary,
secondary) become TOPAS filters; an energy-differential quantity bins the step's kinetic energy
(``EBinEnergy`` ``PreStep``; TOPAS adds an underflow and an overflow bin). Anything else, All
detectors and the other SHIELD-HIT12A quantities included, is refused with a ConversionError.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.materials import ZoneMaterial, zone_material
from cyclotron.simulators.converters.outline import read_checked
from cyclotron.simulators.converters.values import count, number, vector

__all__ = ["CONFIG_FILE", "topas_files"]

CONFIG_FILE = "topas_config.txt"

Array = npt.NDArray[np.float64]

_EPS = 1e-6  # cm: how far a surface may stick out and still count as touching
_DENSITY_RTOL = 1e-3
_MAX_INT = 2**31 - 1  # TOPAS integers are 32-bit
_BLACK_HOLE, _VACUUM_ICRU = 0, 1000
_WORLD, _WORLD_ZONE, _BEAM_POSITION = "World", "WorldZone", "BeamPosition"

# Geant4 NIST materials: ICRU 1-98 are the elements, 99-278 the compounds (NIST order), with
# Geant4's densities in g/cm3. ICRU 172 (glucose) is missing from older Geant4 releases.
_ELEMENTS = (  # noqa: SIM905 - a table reads better as text
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy "
    "Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf"
).split()
_ELEMENT_DENSITIES = (
    8.3748e-5, 1.66322e-4, 0.534, 1.848, 2.37, 2.0, 1.1652e-3, 1.33151e-3, 1.58029e-3, 8.38505e-4,
    0.971, 1.74, 2.699, 2.33, 2.2, 2.0, 2.99473e-3, 1.66201e-3, 0.862, 1.55, 2.989, 4.54, 6.11,
    7.18, 7.44, 7.874, 8.9, 8.902, 8.96, 7.133, 5.904, 5.323, 5.73, 4.5, 7.0721e-3, 3.47832e-3,
    1.532, 2.54, 4.469, 6.506, 8.57, 10.22, 11.5, 12.41, 12.41, 12.02, 10.5, 8.65, 7.31, 7.31,
    6.691, 6.24, 4.93, 5.48536e-3, 1.873, 3.5, 6.154, 6.657, 6.71, 6.9, 7.22, 7.46, 5.243, 7.9004,
    8.229, 8.55, 8.795, 9.066, 9.321, 6.73, 9.84, 13.31, 16.654, 19.3, 21.02, 22.57, 22.42, 21.45,
    19.32, 13.546, 11.72, 11.35, 9.747, 9.32, 9.32, 9.00662e-3, 1.0, 5.0, 10.07, 11.72, 15.37,
    18.95, 20.25, 19.84, 13.67, 13.51, 14.0, 10.0,
)  # fmt: skip
_COMPOUNDS = """
A-150_TISSUE 1.127 ACETONE 0.7899 ACETYLENE 0.0010967 ADENINE 1.6 ADIPOSE_TISSUE_ICRP 0.95
AIR 0.00120479 ALANINE 1.42 ALUMINUM_OXIDE 3.97 AMBER 1.1 AMMONIA 0.000826019 ANILINE 1.0235
ANTHRACENE 1.283 B-100_BONE 1.45 BAKELITE 1.25 BARIUM_FLUORIDE 4.89 BARIUM_SULFATE 4.5
BENZENE 0.87865 BERYLLIUM_OXIDE 3.01 BGO 7.13 BLOOD_ICRP 1.06 BONE_COMPACT_ICRU 1.85
BONE_CORTICAL_ICRP 1.92 BORON_CARBIDE 2.52 BORON_OXIDE 1.812 BRAIN_ICRP 1.04 BUTANE 0.00249343
N-BUTYL_ALCOHOL 0.8098 C-552 1.76 CADMIUM_TELLURIDE 6.2 CADMIUM_TUNGSTATE 7.9
CALCIUM_CARBONATE 2.8 CALCIUM_FLUORIDE 3.18 CALCIUM_OXIDE 3.3 CALCIUM_SULFATE 2.96
CALCIUM_TUNGSTATE 6.062 CARBON_DIOXIDE 0.00184212 CARBON_TETRACHLORIDE 1.594
CELLULOSE_CELLOPHANE 1.42 CELLULOSE_BUTYRATE 1.2 CELLULOSE_NITRATE 1.49 CERIC_SULFATE 1.03
CESIUM_FLUORIDE 4.115 CESIUM_IODIDE 4.51 CHLOROBENZENE 1.1058 CHLOROFORM 1.4832 CONCRETE 2.3
CYCLOHEXANE 0.779 1,2-DICHLOROBENZENE 1.3048 DICHLORODIETHYL_ETHER 1.2199
1,2-DICHLOROETHANE 1.2351 DIETHYL_ETHER 0.71378 N,N-DIMETHYL_FORMAMIDE 0.9487
DIMETHYL_SULFOXIDE 1.1014 ETHANE 0.00125324 ETHYL_ALCOHOL 0.7893 ETHYL_CELLULOSE 1.13
ETHYLENE 0.00117497 EYE_LENS_ICRP 1.07 FERRIC_OXIDE 5.2 FERROBORIDE 7.15 FERROUS_OXIDE 5.7
FERROUS_SULFATE 1.024 FREON-12 1.12 FREON-12B2 1.8 FREON-13 0.95 FREON-13B1 1.5 FREON-13I1 1.8
GADOLINIUM_OXYSULFIDE 7.44 GALLIUM_ARSENIDE 5.31 GEL_PHOTO_EMULSION 1.2914 Pyrex_Glass 2.23
GLASS_LEAD 6.22 GLASS_PLATE 2.4 GLUCOSE 1.54 GLUTAMINE 1.46 GLYCEROL 1.2613 GUANINE 2.2 GYPSUM 2.32
N-HEPTANE 0.68376 N-HEXANE 0.6603 KAPTON 1.42 LANTHANUM_OXYBROMIDE 6.28
LANTHANUM_OXYSULFIDE 5.86 LEAD_OXIDE 9.53 LITHIUM_AMIDE 1.178 LITHIUM_CARBONATE 2.11
LITHIUM_FLUORIDE 2.635 LITHIUM_HYDRIDE 0.82 LITHIUM_IODIDE 3.494 LITHIUM_OXIDE 2.013
LITHIUM_TETRABORATE 2.44 LUNG_ICRP 1.04 M3_WAX 1.05 MAGNESIUM_CARBONATE 2.958
MAGNESIUM_FLUORIDE 3.0 MAGNESIUM_OXIDE 3.58 MAGNESIUM_TETRABORATE 2.53 MERCURIC_IODIDE 6.36
METHANE 0.000667151 METHANOL 0.7914 MIX_D_WAX 0.99 MS20_TISSUE 1.0 MUSCLE_SKELETAL_ICRP 1.05
MUSCLE_STRIATED_ICRU 1.04 MUSCLE_WITH_SUCROSE 1.11 MUSCLE_WITHOUT_SUCROSE 1.07 NAPHTHALENE 1.145
NITROBENZENE 1.19867 NITROUS_OXIDE 0.00183094 NYLON-8062 1.08 NYLON-6-6 1.14 NYLON-6-10 1.14
NYLON-11_RILSAN 1.425 OCTANE 0.7026 PARAFFIN 0.93 N-PENTANE 0.6262 PHOTO_EMULSION 3.815
PLASTIC_SC_VINYLTOLUENE 1.032 PLUTONIUM_DIOXIDE 11.46 POLYACRYLONITRILE 1.17 POLYCARBONATE 1.2
POLYCHLOROSTYRENE 1.3 POLYETHYLENE 0.94 MYLAR 1.4 PLEXIGLASS 1.19 POLYOXYMETHYLENE 1.425
POLYPROPYLENE 0.9 POLYSTYRENE 1.06 TEFLON 2.2 POLYTRIFLUOROCHLOROETHYLENE 2.1
POLYVINYL_ACETATE 1.19 POLYVINYL_ALCOHOL 1.3 POLYVINYL_BUTYRAL 1.12 POLYVINYL_CHLORIDE 1.3
POLYVINYLIDENE_CHLORIDE 1.7 POLYVINYLIDENE_FLUORIDE 1.76 POLYVINYL_PYRROLIDONE 1.25
POTASSIUM_IODIDE 3.13 POTASSIUM_OXIDE 2.32 PROPANE 0.00187939 lPROPANE 0.43
N-PROPYL_ALCOHOL 0.8035 PYRIDINE 0.9819 RUBBER_BUTYL 0.92 RUBBER_NATURAL 0.92
RUBBER_NEOPRENE 1.23 SILICON_DIOXIDE 2.32 SILVER_BROMIDE 6.473 SILVER_CHLORIDE 5.56
SILVER_HALIDES 6.47 SILVER_IODIDE 6.01 SKIN_ICRP 1.09 SODIUM_CARBONATE 2.532 SODIUM_IODIDE 3.667
SODIUM_MONOXIDE 2.27 SODIUM_NITRATE 2.261 STILBENE 0.9707 SUCROSE 1.5805 TERPHENYL 1.234
TESTIS_ICRP 1.04 TETRACHLOROETHYLENE 1.625 THALLIUM_CHLORIDE 7.004 TISSUE_SOFT_ICRP 1.03
TISSUE_SOFT_ICRU-4 1.0 TISSUE-METHANE 0.00106409 TISSUE-PROPANE 0.00182628 TITANIUM_DIOXIDE 4.26
TOLUENE 0.8669 TRICHLOROETHYLENE 1.46 TRIETHYL_PHOSPHATE 1.07 TUNGSTEN_HEXAFLUORIDE 2.4
URANIUM_DICARBIDE 11.28 URANIUM_MONOCARBIDE 13.63 URANIUM_OXIDE 10.96 UREA 1.323 VALINE 1.23
VITON 1.8 WATER 1.0 WATER_VAPOR 0.000756182 XYLENE 0.87
""".split()  # noqa: SIM905 - a table reads better as text
_NOT_IN_OLDER_GEANT4 = {172}


def _nist_table() -> dict[int, tuple[str, float]]:
    table = {
        z: (f"G4_{symbol}", density)
        for z, (symbol, density) in enumerate(zip(_ELEMENTS, _ELEMENT_DENSITIES, strict=True), 1)
    }
    pairs = zip(_COMPOUNDS[::2], _COMPOUNDS[1::2], strict=True)
    for icru, (name, density) in enumerate(pairs, 99):
        if icru not in _NOT_IN_OLDER_GEANT4:
            table[icru] = (f"G4_{name}", float(density))
    return table


_NIST = _nist_table()

# Editor particle ids (SHIELD-HIT12A/FLUKA list) -> TOPAS name and nucleon number (for MeV/nucl).
_PARTICLES: dict[int, tuple[str, int]] = {
    1: ("neutron", 1),
    2: ("proton", 1),
    3: ("pi-", 0),
    4: ("pi+", 0),
    7: ("anti_proton", 1),
    8: ("kaon-", 0),
    9: ("kaon+", 0),
    15: ("mu-", 0),
    16: ("mu+", 0),
    21: ("deuteron", 2),
    22: ("triton", 3),
    23: ("He3", 3),
    24: ("alpha", 4),
    26: ("e-", 0),
}
_HEAVY_ION = 25
_NUCLEI = {
    (0, 1): "neutron",
    (1, 1): "proton",
    (1, 2): "deuteron",
    (1, 3): "triton",
    (2, 3): "He3",
    (2, 4): "alpha",
}

_MODULES_EM_ONLY = ("g4em-standard_opt4", "g4decay")
_MODULES_WITH_NUCLEAR = (
    "g4em-standard_opt4",
    "g4h-phy_QGSP_BIC_HP",
    "g4decay",
    "g4ion-binarycascade",
    "g4h-elastic_HP",
    "g4stopping",
)  # the TOPAS default list

_QUANTITIES = {
    "Dose": "DoseToMedium",
    "Energy": "EnergyDeposit",
    "Fluence": "Fluence",
    "dLET": "ProtonLET",
    "tLET": "ProtonLET",
}
_LET_WEIGHT = {"dLET": "Dose", "tLET": "Track"}
_QUANTITY_KEYS = {"keyword", "name", "uuid", "type", "filter", "modifiers", "visible"}


def topas_files(project: Mapping[str, Any]) -> dict[str, str]:
    """The TOPAS parameter file for the project (editor ``inputJson``), or a ConversionError."""
    return read_checked(_files, project)


def _files(project: Mapping[str, Any]) -> dict[str, str]:
    out = _Parameters()
    out.comment("TOPAS parameter file written by Cyclotron from a YAPTIDE editor project")
    primaries = _count(_section(project, "beam").get("numberOfParticles"), "beam.numberOfParticles")
    out.int("Ts/Seed", 1)  # each task overrides the seed
    out.int("Ts/ShowHistoryCountAtInterval", max(1, primaries // 100))
    geometry = _Geometry.of(project)
    geometry.write(out)
    _write_beam(out, project, geometry, primaries)
    _write_physics(out, _section(project, "physic"))
    _write_scoring(out, project, geometry)
    return {CONFIG_FILE: out.text()}


# ---------------------------------------------------------------------------------------------
# Reading the project


def _section(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    if not isinstance(value, Mapping):
        raise ConversionError(f"the project has no '{key}' section")
    return value


def _items(mapping: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    value = mapping.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ConversionError(f"{what}: '{key}' is not a list of objects")
    return value


def _count(value: Any, what: str) -> int:
    return count(value, what, most=_MAX_INT)


def _vector(value: Any, what: str) -> Array:
    return np.array(vector(value, what), dtype=np.float64)


def _label(item: Mapping[str, Any], kind: str) -> str:
    return f"{kind} '{item.get('name', item.get('uuid', '?'))}'"


def _identifier(name: Any, what: str) -> str:
    """A TOPAS-safe name: letters, digits and underscores only."""
    text = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_")
    if not text:
        raise ConversionError(f"{what} has no name usable in TOPAS")
    return text


# ---------------------------------------------------------------------------------------------
# Shapes: position and rotation in the world frame, and the geometry the checks need


def _rotation(degrees: Array) -> Array:
    """The editor's (three.js) rotation: Euler angles applied in the order X, Y, Z."""
    x, y, z = np.radians(degrees)
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return np.asarray(rx @ ry @ rz, dtype=np.float64)


def _topas_angles(matrix: Array) -> tuple[float, float, float]:
    """RotX, RotY, RotZ (degrees) that make TOPAS place a component turned by ``matrix``.

    TOPAS builds ``R = RotZ·RotY·RotX`` and places with its inverse, ``Rx(-x)·Ry(-y)·Rz(-z)``:
    the editor's XYZ Euler angles of ``matrix``, negated.
    """
    sine = float(np.clip(matrix[0, 2], -1.0, 1.0))
    y = math.asin(sine)
    if abs(sine) < 1 - 1e-12:
        x = math.atan2(-matrix[1, 2], matrix[2, 2])
        z = math.atan2(-matrix[0, 1], matrix[0, 0])
    else:
        x, z = math.atan2(matrix[2, 1], matrix[1, 1]), 0.0
    return (-math.degrees(x), -math.degrees(y), -math.degrees(z))


@dataclass(frozen=True)
class _Shape:
    """A box (half-lengths), cylinder (rmin, rmax, half-length) or sphere (0, radius, 0)."""

    kind: str
    size: tuple[float, float, float]
    center: Array
    rotation: Array  # columns: the shape's local axes in world coordinates

    @classmethod
    def of(cls, geometry: Any, what: str, *, world: bool = False) -> _Shape:
        if not isinstance(geometry, Mapping) or not isinstance(geometry.get("parameters"), Mapping):
            raise ConversionError(f"{what} has no geometry")
        kind, parameters = geometry.get("geometryType"), geometry["parameters"]

        def size(key: str) -> float:
            value = number(parameters.get(key), f"{what} {key}")
            if value < 0:
                raise ConversionError(f"{what} {key} is negative")
            return value

        if kind in ("BoxGeometry", "Mesh"):
            dims = (size("width") / 2, size("height") / 2, size("depth") / 2)
            shape = "box"
        elif kind in ("HollowCylinderGeometry", "Cyl"):
            inner = 0.0 if world else size("innerRadius")
            dims, shape = (inner, size("radius"), size("depth") / 2), "cylinder"
            if inner >= dims[1]:
                raise ConversionError(f"{what} has an inner radius not below its radius")
        elif kind == "SphereGeometry":
            dims, shape = (0.0, size("radius"), 0.0), "sphere"
        else:
            raise ConversionError(f"{what}: geometry '{kind}' cannot be expressed in TOPAS")
        if min(dims if shape == "box" else dims[1:] if shape == "cylinder" else dims[1:2]) <= 0:
            raise ConversionError(f"{what} has a zero size")
        return cls(
            shape,
            dims,
            _vector(geometry.get("position"), f"{what} position"),
            _rotation(_vector(geometry.get("rotation", [0, 0, 0]), f"{what} rotation")),
        )

    @property
    def convex(self) -> bool:
        return self.kind != "cylinder" or self.size[0] == 0

    def axes(self) -> list[Array]:
        if self.kind == "box":
            return [self.rotation[:, i] for i in range(3)]
        return [self.rotation[:, 2]] if self.kind == "cylinder" else []

    def support(self, u: Array) -> float:
        """The largest ``u·x`` over the shape (over its convex hull for a hollow cylinder)."""
        offset = float(u @ self.center)
        if self.kind == "box":
            return offset + sum(
                h * abs(float(u @ e)) for h, e in zip(self.size, self.axes(), strict=True)
            )
        if self.kind == "sphere":
            return offset + self.size[1] * float(np.linalg.norm(u))
        along = float(u @ self.rotation[:, 2])
        across = math.sqrt(max(0.0, float(u @ u) - along * along))
        return offset + self.size[2] * abs(along) + self.size[1] * across

    def corners(self) -> Iterator[Array]:
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            yield self.center + self.rotation @ (np.array(signs) * np.array(self.size))

    def rims(self) -> Iterator[tuple[Array, Array, float]]:
        """A cylinder's two end circles as (centre, axis, radius)."""
        axis = self.rotation[:, 2]
        for sign in (-1.0, 1.0):
            yield self.center + sign * self.size[2] * axis, axis, self.size[1]

    def bounds(self) -> Array:
        """Half-extent of the shape's bounding box about the world origin, per axis."""
        unit = np.eye(3)
        return np.array([max(self.support(unit[i]), self.support(-unit[i])) for i in range(3)])


def _farthest(shape: _Shape, point: Array, axis: Array | None = None) -> float:
    """Largest distance from ``point`` (or, given ``axis``, from that line) over the shape."""
    project = np.eye(3) if axis is None else np.eye(3) - np.outer(axis, axis)
    if shape.kind == "sphere":
        return float(np.linalg.norm(project @ (shape.center - point))) + shape.size[1]
    if shape.kind == "box":
        return max(float(np.linalg.norm(project @ (c - point))) for c in shape.corners())
    farthest = 0.0
    for centre, normal, radius in shape.rims():
        if axis is not None and abs(float(normal @ axis)) > 1 - 1e-12:
            distance = float(np.linalg.norm(project @ (centre - point))) + radius
        elif axis is None:
            offset = centre - point
            in_plane = offset - float(offset @ normal) * normal
            squared = float(offset @ offset) + radius**2 + 2 * radius * np.linalg.norm(in_plane)
            distance = math.sqrt(squared)
        else:  # a tilted rim seen from a line: sample it; a chord is shorter than the arc
            e1 = np.cross(normal, [1.0, 0, 0] if abs(normal[0]) < 0.9 else [0, 1.0, 0])
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(normal, e1)
            angles = np.linspace(0, 2 * math.pi, 720, endpoint=False)
            points = centre + radius * (np.outer(np.cos(angles), e1) + np.outer(np.sin(angles), e2))
            distance = float(np.max(np.linalg.norm((points - point) @ project, axis=1)))
            distance += radius * math.pi / 720
        farthest = max(farthest, distance)
    return farthest


def _inside(inner: _Shape, outer: _Shape) -> bool:
    """Whether ``inner`` lies wholly in the convex ``outer`` (touching allowed)."""
    if outer.kind == "sphere":
        return _farthest(inner, outer.center) <= outer.size[1] + _EPS
    if outer.kind == "box":
        slabs = list(zip(outer.axes(), outer.size, strict=True))
    else:
        slabs = [(outer.rotation[:, 2], outer.size[2])]
    for axis, half in slabs:
        middle = float(axis @ outer.center)
        if (
            inner.support(axis) > middle + half + _EPS
            or inner.support(-axis) > half - middle + _EPS
        ):
            return False
    if outer.kind == "cylinder":
        return _farthest(inner, outer.center, outer.rotation[:, 2]) <= outer.size[1] + _EPS
    return True


def _apart(a: _Shape, b: _Shape) -> bool:
    """Whether a plane separates the shapes (touching allowed); False when it cannot tell."""
    between = b.center - a.center
    candidates = [*a.axes(), *b.axes(), between]
    candidates += [np.cross(u, v) for u in a.axes() for v in b.axes()]
    for shape in (a, b):
        if shape.kind == "cylinder":  # the offset across a cylinder's axis
            axis = shape.rotation[:, 2]
            candidates.append(between - float(between @ axis) * axis)
    for u in candidates:
        norm = float(np.linalg.norm(u))
        if norm < 1e-12:
            continue
        u = u / norm
        if a.support(u) <= -b.support(-u) + _EPS or b.support(u) <= -a.support(-u) + _EPS:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Geometry: zones as a hierarchy of components


@dataclass
class _Component:
    name: str
    shape: _Shape
    material: str
    what: str  # how the editor calls it, for messages
    parent: str | None = None
    children: list[str] = field(default_factory=list)


@dataclass
class _Geometry:
    components: dict[str, _Component]  # by figure uuid; the world zone under key ""
    zone_component: dict[str, str]  # zone uuid -> figure uuid
    black_hole: bool
    names: dict[str, str]  # lower-case TOPAS name -> what holds it

    @classmethod
    def of(cls, project: Mapping[str, Any]) -> _Geometry:
        figures = {
            str(f.get("uuid")): f
            for f in _items(_section(project, "figureManager"), "figures", "figureManager")
        }
        materials = _Materials(project)
        zone_manager = _section(project, "zoneManager")
        special = project.get("specialComponentsManager") or {}
        for key, value in special.items():
            if key not in ("metadata", "name", "type", "uuid") and value:
                raise ConversionError(f"special component '{key}' cannot be expressed in TOPAS")

        world = _section(zone_manager, "worldZone")
        world_icru = materials.icru(world)
        geometry = cls({}, {}, world_icru == _BLACK_HOLE, {_WORLD.lower(): "the TOPAS World"})
        geometry.names[_BEAM_POSITION.lower()] = "the beam position"
        world_name = geometry.claim(_WORLD_ZONE, _label(world, "world zone"))
        world_material = "G4_Galactic" if world_icru == _BLACK_HOLE else materials.nist(world)
        geometry.components[""] = _Component(
            world_name,
            _Shape.of(world.get("geometryData"), _label(world, "world zone"), world=True),
            world_material,
            _label(world, "world zone"),
        )
        geometry.zone_component[str(world.get("uuid"))] = ""

        zones = _items(zone_manager, "zones", "zoneManager")
        subtracted_by: dict[str, list[str]] = {}
        terms: dict[str, list[str]] = {}
        for zone in zones:
            what = _label(zone, "zone")
            primary, subtracted = _zone_terms(zone, figures, what)
            if primary in geometry.components:
                raise ConversionError(f"{what} is made of the same figure as another zone")
            if materials.icru(zone) == _BLACK_HOLE:
                raise ConversionError(f"{what}: black hole is only possible as the world zone")
            figure = figures[primary]
            name = geometry.claim(figure.get("name"), _label(figure, "figure"))
            shape = _Shape.of(figure.get("geometryData"), f"{_label(figure, 'figure')} ({what})")
            geometry.components[primary] = _Component(name, shape, materials.nist(zone), what)
            geometry.zone_component[str(zone.get("uuid"))] = primary
            terms[primary] = subtracted
            for uuid in subtracted:
                subtracted_by.setdefault(uuid, []).append(primary)
        geometry.build_tree(subtracted_by, terms, figures)
        return geometry

    def claim(self, name: Any, what: str) -> str:
        text = _identifier(name, what)
        holder = self.names.setdefault(text.lower(), what)
        if holder != what:
            raise ConversionError(f"{what} and {holder} have the same TOPAS name '{text}'")
        return text

    def build_tree(
        self,
        subtracted_by: Mapping[str, list[str]],
        terms: Mapping[str, list[str]],
        figures: Mapping[str, Mapping[str, Any]],
    ) -> None:
        for uuid, owners in subtracted_by.items():
            if uuid not in self.components:
                raise ConversionError(
                    f"{self.components[owners[0]].what} subtracts {_label(figures[uuid], 'figure')}"
                    " that no zone is made of, so TOPAS would have no material for it"
                )
        for uuid, component in self.components.items():
            if not uuid:
                continue
            owners = subtracted_by.get(uuid, [])
            # the innermost zone subtracting a figure holds it; the others must then contain it
            parent = min(owners, key=lambda o: _volume(self.components[o].shape), default="")
            component.parent = parent
            self.components[parent].children.append(uuid)
        for uuid, component in self.components.items():
            if uuid and not self.descends(uuid, ""):
                raise ConversionError(
                    f"{component.what} and the zones it is subtracted from subtract one another"
                )
        for uuid, component in self.components.items():
            self.check_placement(uuid, component, terms.get(uuid, []))

    def check_placement(self, uuid: str, component: _Component, subtracted: list[str]) -> None:
        if component.children and not component.shape.convex:
            raise ConversionError(
                f"{component.what}: figures inside a hollow cylinder cannot be expressed in TOPAS"
            )
        for child_uuid in component.children:
            child = self.components[child_uuid]
            if not _inside(child.shape, component.shape):
                raise ConversionError(
                    f"{child.what} does not lie inside {component.what}; TOPAS places it in"
                    f" {component.name} and cannot cut it to fit"
                )
        siblings = component.children
        for i, first in enumerate(siblings):
            for second in siblings[i + 1 :]:
                a, b = self.components[first], self.components[second]
                if not _apart(a.shape, b.shape):
                    raise ConversionError(
                        f"{a.what} and {b.what} may overlap inside {component.what};"
                        " TOPAS needs disjoint neighbours"
                    )
        for other in subtracted:
            if not self.descends(other, uuid):
                raise ConversionError(
                    f"{component.what} subtracts {self.components[other].what}, which does not"
                    " lie inside it"
                )

    def descends(self, uuid: str, ancestor: str) -> bool:
        seen: set[str] = set()
        parent = self.components[uuid].parent
        while parent is not None and parent not in seen:
            if parent == ancestor:
                return True
            seen.add(parent)
            parent = self.components[parent].parent
        return False

    def top_level(self) -> list[_Component]:
        return [self.components[uuid] for uuid in self.components[""].children]

    def in_live_region(self, shape: _Shape) -> bool:
        """Whether the shape lies where particles are transported as in the editor."""
        if not self.black_hole:
            return _inside(shape, self.components[""].shape)
        return any(_inside(shape, top.shape) for top in self.top_level())

    def write(self, out: _Parameters) -> None:
        world = self.components[""]
        if self.black_hole:
            tops = self.top_level()
            if len(tops) != 1 or not tops[0].shape.convex:
                raise ConversionError(
                    f"{world.what}: a black-hole world zone is only expressible around one convex"
                    " figure (TOPAS would let particles travel between figures)"
                )
        out.comment("Geometry: the world zone inside a vacuum World; zones as nested components")
        # everything transported or scored lies in the world zone, so a margin suffices
        half = world.shape.bounds() * 1.1 + 1.0
        out.string(f"Ge/{_WORLD}/Type", "TsBox")
        out.string(f"Ge/{_WORLD}/Material", "G4_Galactic")
        for axis, value in zip("XYZ", half, strict=True):
            out.length(f"Ge/{_WORLD}/HL{axis}", float(value))
        for uuid in self.order():
            component = self.components[uuid]
            parent = self.components[component.parent] if component.parent is not None else None
            out.comment(component.what)
            _write_solid(out, component.name, component.shape, parent.shape if parent else None)
            out.string(f"Ge/{component.name}/Parent", parent.name if parent else _WORLD)
            out.string(f"Ge/{component.name}/Material", component.material)

    def order(self) -> Iterator[str]:
        """Components parents first."""
        stack = [""]
        while stack:
            uuid = stack.pop(0)
            yield uuid
            stack.extend(self.components[uuid].children)


def _volume(shape: _Shape) -> float:
    if shape.kind == "box":
        return 8 * shape.size[0] * shape.size[1] * shape.size[2]
    if shape.kind == "sphere":
        return 4 / 3 * math.pi * shape.size[1] ** 3
    return 2 * math.pi * shape.size[2] * (shape.size[1] ** 2 - shape.size[0] ** 2)


def _zone_terms(
    zone: Mapping[str, Any], figures: Mapping[str, Any], what: str
) -> tuple[str, list[str]]:
    """The figure a zone starts from and the figures it subtracts."""
    operations = [op for group in zone.get("unionOperations") or [] for op in group]
    if not operations or not all(isinstance(op, Mapping) for op in operations):
        raise ConversionError(f"{what} has no figures")
    modes = [op.get("mode") for op in operations]
    if modes[0] != "union" or modes.count("union") != 1:
        raise ConversionError(f"{what} is a union of several figures; TOPAS has no boolean solids")
    if any(mode not in ("union", "subtraction") for mode in modes):
        raise ConversionError(
            f"{what} uses '{', '.join(map(str, set(modes)))}'; TOPAS has no"
            " boolean solids, only figures inside figures"
        )
    uuids = [str(op.get("objectUuid")) for op in operations]
    for uuid in uuids:
        if uuid not in figures:
            raise ConversionError(f"{what} refers to a figure that does not exist ({uuid})")
    if uuids[0] in uuids[1:]:
        raise ConversionError(f"{what} subtracts its own figure")
    return uuids[0], uuids[1:]


class _Materials:
    def __init__(self, project: Mapping[str, Any]) -> None:
        manager = _section(project, "materialManager")
        self.by_uuid = {
            str(m.get("uuid")): m for m in _items(manager, "materials", "materialManager")
        }

    def entry(self, zone: Mapping[str, Any]) -> ZoneMaterial:
        """The zone's material (its customMaterial included); a listed material's density is
        the library's, whatever the list says (converters/materials.py)."""
        what = _label(zone, "zone")
        overrides = zone.get("materialPropertiesOverrides") or {}
        if any(value for key, value in overrides.items() if key != "density"):
            raise ConversionError(f"{what}: material property overrides cannot be expressed")
        return zone_material(zone, self.by_uuid, what)

    def icru(self, zone: Mapping[str, Any]) -> int:
        return self.entry(zone).icru

    def nist(self, zone: Mapping[str, Any]) -> str:
        material = self.entry(zone)
        icru = material.icru
        what = f"{_label(material.source, 'material')} (ICRU {icru}) of {_label(zone, 'zone')}"
        if icru == _VACUUM_ICRU:
            return "G4_Galactic"
        if icru not in _NIST:
            raise ConversionError(f"{what} has no Geant4 NIST counterpart")
        name, density = _NIST[icru]
        given = material.density
        if material.overridden and not math.isclose(given, density, rel_tol=_DENSITY_RTOL):
            raise ConversionError(
                f"{what} has density {given} g/cm3 but {name} has {density} g/cm3;"
                " TOPAS cannot change a NIST material's density"
            )
        return name


def _write_solid(out: _Parameters, name: str, shape: _Shape, parent: _Shape | None) -> None:
    """Type, dimensions and placement of a component relative to its parent (or the World)."""
    origin, frame = (parent.center, parent.rotation) if parent else (np.zeros(3), np.eye(3))
    translation = frame.T @ (shape.center - origin)
    rotation = frame.T @ shape.rotation
    kind = {"box": "TsBox", "cylinder": "TsCylinder", "sphere": "TsSphere"}[shape.kind]
    out.string(f"Ge/{name}/Type", kind)
    if shape.kind == "box":
        for axis, value in zip("XYZ", shape.size, strict=True):
            out.length(f"Ge/{name}/HL{axis}", value)
    else:
        out.length(f"Ge/{name}/RMin", shape.size[0])
        out.length(f"Ge/{name}/RMax", shape.size[1])
        if shape.kind == "cylinder":
            out.length(f"Ge/{name}/HL", shape.size[2])
    for axis, value in zip("XYZ", translation, strict=True):
        out.length(f"Ge/{name}/Trans{axis}", float(value))
    for axis, value in zip("XYZ", _topas_angles(rotation), strict=True):
        out.angle(f"Ge/{name}/Rot{axis}", value)


# ---------------------------------------------------------------------------------------------
# Beam and physics


def _write_beam(
    out: _Parameters, project: Mapping[str, Any], geometry: _Geometry, primaries: int
) -> None:
    beam = _section(project, "beam")
    if beam.get("sourceType", "simple") != "simple":
        raise ConversionError("beam: a source file cannot be expressed in TOPAS")
    sad = beam.get("sad") or {}
    if sad.get("type", "none") != "none":
        raise ConversionError(
            f"beam.sad ('{sad.get('type')}'): a source-to-axis distance needs position-angle"
            " correlation, which a TOPAS Beam source does not have"
        )
    divergence = beam.get("divergence") or {}
    if any(number(divergence.get(k, 0), f"beam.divergence.{k}") for k in ("x", "y")):
        raise ConversionError("beam.divergence cannot be expressed in TOPAS")
    if number(divergence.get("distanceToFocal", 0), "beam.divergence.distanceToFocal"):
        raise ConversionError("beam.divergence.distanceToFocal cannot be expressed in TOPAS")

    particle, nucleons = _beam_particle(beam)
    energy = number(beam.get("energy"), "beam.energy")
    spread = number(beam.get("energySpread", 0), "beam.energySpread")
    if energy <= 0 or spread < 0:
        raise ConversionError("beam.energy must be positive and beam.energySpread not negative")
    unit = beam.get("energyUnit")
    if nucleons > 1 and unit is None:
        raise ConversionError("beam.energyUnit is missing: MeV or MeV/nucl is ambiguous for ions")
    total = energy * nucleons if unit in (None, "MeV/nucl") and nucleons else energy
    low = number(beam.get("energyLowCutoff", 0), "beam.energyLowCutoff")
    high = number(beam.get("energyHighCutoff", math.inf), "beam.energyHighCutoff")
    if low > 0 or high < energy + 5 * spread:
        raise ConversionError(
            "beam.energyLowCutoff/energyHighCutoff (transport cut-offs)"
            " cannot be expressed in TOPAS"
        )

    position = _vector(beam.get("position"), "beam.position")
    direction = _vector(beam.get("direction"), "beam.direction")
    norm = float(np.linalg.norm(direction))
    if norm == 0:
        raise ConversionError("beam.direction is a zero vector")
    direction /= norm
    if not geometry.in_live_region(_Shape("sphere", (0.0, 0.0, 0.0), position, np.eye(3))):
        raise ConversionError(
            "beam.position lies outside the figures the world zone holds; particles would start"
            " where the editor's geometry stops them"
        )

    source = _identifier(beam.get("name") or "Beam", "beam")
    out.comment("Beam: its +z axis along the editor direction")
    out.string(f"Ge/{_BEAM_POSITION}/Type", "Group")
    out.string(f"Ge/{_BEAM_POSITION}/Parent", _WORLD)
    for axis, value in zip("XYZ", position, strict=True):
        out.length(f"Ge/{_BEAM_POSITION}/Trans{axis}", float(value))
    tilt_x, tilt_y = math.atan2(-direction[1], direction[2]), math.asin(direction[0])
    angles = _topas_angles(_rotation(np.degrees([tilt_x, tilt_y, 0.0])))
    for axis, angle in zip("XYZ", angles, strict=True):
        out.angle(f"Ge/{_BEAM_POSITION}/Rot{axis}", angle)
    out.string(f"So/{source}/Type", "Beam")
    out.string(f"So/{source}/Component", _BEAM_POSITION)
    out.string(f"So/{source}/BeamParticle", particle)
    out.energy(f"So/{source}/BeamEnergy", total)
    out.unitless(f"So/{source}/BeamEnergySpread", 100 * spread / energy)
    _write_profile(out, source, beam.get("sigma") or {}, axial=abs(direction[2] - 1) < 1e-12)
    out.string(f"So/{source}/BeamAngularDistribution", "None")
    out.int(f"So/{source}/NumberOfHistoriesInRun", primaries)


def _beam_particle(beam: Mapping[str, Any]) -> tuple[str, int]:
    particle = beam.get("particle") or {}
    identity = particle.get("id")
    if identity == _HEAVY_ION:
        z = _count(particle.get("z"), "beam.particle.z")
        a = _count(particle.get("a"), "beam.particle.a")
        if a < z:
            raise ConversionError(f"beam.particle: an ion with Z {z} above A {a}")
        # without the third (charge) argument TOPAS starts the ion with no charge at all
        return (_NUCLEI.get((z, a), f"GenericIon({z},{a},{z})"), a)
    if identity not in _PARTICLES:
        raise ConversionError(
            f"beam.particle '{particle.get('name', identity)}' cannot be expressed in TOPAS"
        )
    return _PARTICLES[identity]


def _write_profile(out: _Parameters, source: str, sigma: Mapping[str, Any], axial: bool) -> None:
    kind = sigma.get("type", "Gaussian")
    x = number(sigma.get("x", 0), "beam.sigma.x")
    y = number(sigma.get("y", 0), "beam.sigma.y")
    if x < 0 or y < 0:
        raise ConversionError("beam.sigma must not be negative")
    if kind == "Flat circular":
        if x != 0:
            raise ConversionError("beam.sigma: an annular flat beam cannot be expressed in TOPAS")
        shape, x, y = "Ellipse", y, y
    elif kind == "Flat square":
        shape = "Rectangle"
    elif kind != "Gaussian":
        raise ConversionError(f"beam.sigma type '{kind}' cannot be expressed in TOPAS")
    if x == 0 and y == 0:
        out.string(f"So/{source}/BeamPositionDistribution", "None")
        return
    if x == 0 or y == 0:
        raise ConversionError("beam.sigma: a profile spread along one axis only is not supported")
    if x != y and not axial:
        raise ConversionError("beam.sigma: an elliptical profile on a tilted beam is ambiguous")
    if kind == "Gaussian":
        out.string(f"So/{source}/BeamPositionDistribution", "Gaussian")
        out.string(f"So/{source}/BeamPositionCutoffShape", "Ellipse")
        out.length(f"So/{source}/BeamPositionCutoffX", 10 * x)  # 10 sigma: nothing is cut
        out.length(f"So/{source}/BeamPositionCutoffY", 10 * y)
        out.length(f"So/{source}/BeamPositionSpreadX", x)
        out.length(f"So/{source}/BeamPositionSpreadY", y)
        return
    out.string(f"So/{source}/BeamPositionDistribution", "Flat")
    out.string(f"So/{source}/BeamPositionCutoffShape", shape)
    out.length(f"So/{source}/BeamPositionCutoffX", x)
    out.length(f"So/{source}/BeamPositionCutoffY", y)


def _write_physics(out: _Parameters, physics: Mapping[str, Any]) -> None:
    if physics.get("energyModelStraggling", "Vavilov") not in ("Vavilov", "Gaussian"):
        raise ConversionError("physic.energyModelStraggling: Geant4 cannot switch straggling off")
    if physics.get("multipleScattering", "Moliere") not in ("Moliere", "Gaussian"):
        raise ConversionError("physic.multipleScattering: Geant4 cannot switch scattering off")
    nuclear = physics.get("enableNuclearReactions", True)
    modules = _MODULES_WITH_NUCLEAR if nuclear else _MODULES_EM_ONLY
    out.comment("Physics: Geant4 modular list (nuclear reactions follow the project)")
    out.string("Ph/ListName", "Default")
    out.string("Ph/Default/Type", "Geant4_Modular")
    out.strings("Ph/Default/Modules", modules)


# ---------------------------------------------------------------------------------------------
# Scoring


def _write_scoring(out: _Parameters, project: Mapping[str, Any], geometry: _Geometry) -> None:
    manager = _section(project, "scoringManager")
    detectors = {
        str(d.get("uuid")): d
        for d in _items(_section(project, "detectorManager"), "detectors", "detectorManager")
    }
    filters = {str(f.get("uuid")): f for f in _items(manager, "filters", "scoringManager")}
    placed: dict[str, str] = {}
    scorers: set[str] = set()
    for output in _items(manager, "outputs", "scoringManager"):
        what = _label(output, "output")
        if output.get("trace"):
            raise ConversionError(f"{what}: track tracing cannot be expressed in TOPAS")
        detector = detectors.get(str(output.get("detectorUuid")))
        if detector is None:
            raise ConversionError(f"{what} has no detector")
        component = placed.get(str(detector.get("uuid")))
        if component is None:
            component = _write_detector(out, detector, geometry)
            placed[str(detector.get("uuid"))] = component
        stem = _identifier(output.get("name"), what)
        for j, quantity in enumerate(_items(output, "quantities", what)):
            scorer = f"{stem}__{j}"
            if scorer.lower() in scorers:
                raise ConversionError(f"{what} has the same TOPAS name as another output")
            scorers.add(scorer.lower())
            qwhat = f"quantity '{quantity.get('name')}' of {what}"
            out.comment(f"{qwhat}: {quantity.get('keyword')}")
            _write_scorer(out, scorer, component, quantity, filters, qwhat)


def _write_detector(out: _Parameters, detector: Mapping[str, Any], geometry: _Geometry) -> str:
    what = _label(detector, "detector")
    data = detector.get("geometryData")
    if not isinstance(data, Mapping) or not isinstance(data.get("parameters"), Mapping):
        raise ConversionError(f"{what} has no geometry")
    kind, parameters = data.get("geometryType"), data["parameters"]
    if kind == "Zone":
        figure = geometry.zone_component.get(str(parameters.get("zoneUuid")))
        if figure is None:
            raise ConversionError(f"{what} scores in a zone that does not exist")
        component = geometry.components[figure]
        if component.children:
            raise ConversionError(
                f"{what}: {component.what} has figures inside it, and TOPAS would divide by"
                " the volume of the whole figure"
            )
        return component.name
    if kind not in ("Mesh", "Cyl"):
        raise ConversionError(f"{what}: detector type '{kind}' cannot be expressed in TOPAS")
    shape = _Shape.of(data, what)
    if not geometry.in_live_region(shape):
        raise ConversionError(
            f"{what} reaches outside the figures the world zone holds, where the editor's"
            " geometry stops particles"
        )
    name = geometry.claim(detector.get("name"), what)
    out.comment(f"{what}: a parallel-world scoring grid")
    _write_solid(out, name, shape, None)
    out.string(f"Ge/{name}/Parent", _WORLD)
    out.boolean(f"Ge/{name}/IsParallel", True)
    bins = (
        ("X", "xSegments", "Y", "ySegments", "Z", "zSegments")
        if kind == "Mesh"
        else ("R", "radialSegments", "Phi", None, "Z", "zSegments")
    )
    for axis, key in zip(bins[::2], bins[1::2], strict=True):
        count = 1 if key is None else _count(parameters.get(key), f"{what} {key}")
        out.int(f"Ge/{name}/{axis}Bins", count)
    return name


def _write_scorer(
    out: _Parameters,
    scorer: str,
    component: str,
    quantity: Mapping[str, Any],
    filters: Mapping[str, Mapping[str, Any]],
    what: str,
) -> None:
    keyword = quantity.get("keyword")
    if keyword not in _QUANTITIES:
        raise ConversionError(f"{what}: '{keyword}' cannot be scored by TOPAS")
    extra = sorted(
        key
        for key, value in quantity.items()
        if key not in _QUANTITY_KEYS and value is not None and (key, value) != ("rescale", 1)
    )
    if extra:
        raise ConversionError(f"{what}: {', '.join(extra)} cannot be expressed in TOPAS")
    chosen = filters.get(str(quantity["filter"])) if quantity.get("filter") else None
    if quantity.get("filter") and chosen is None:
        raise ConversionError(f"{what} uses a filter that does not exist")
    particle, generation = _selection(chosen) if chosen else (None, None)
    sc = f"Sc/{scorer}"
    out.string(f"{sc}/Quantity", _QUANTITIES[keyword])
    out.string(f"{sc}/Component", component)
    if keyword in _LET_WEIGHT:
        if particle != "proton":
            raise ConversionError(
                f"{what}: TOPAS scores LET of protons only; give it a filter selecting protons"
            )
        out.string(f"{sc}/WeightBy", _LET_WEIGHT[keyword])
        out.strings(f"{sc}/Report", ["Sum"])  # the scorer's sum is already the averaged LET
    else:
        out.strings(f"{sc}/Report", ["Mean", "Standard_Deviation"])
    if particle:
        out.strings(f"{sc}/OnlyIncludeParticlesNamed", [particle])
    if generation:
        out.string(f"{sc}/OnlyIncludeParticlesOfGeneration", generation)
    _write_energy_bins(out, sc, _items(quantity, "modifiers", what), what)
    out.string(f"{sc}/OutputType", "csv")
    out.string(f"{sc}/OutputFile", scorer)
    out.string(f"{sc}/IfOutputFileAlreadyExists", "Overwrite")


def _write_energy_bins(
    out: _Parameters, sc: str, modifiers: Sequence[Mapping[str, Any]], what: str
) -> None:
    if not modifiers:
        return
    if len(modifiers) > 1 or modifiers[0].get("diffType") != "E":
        kinds = ", ".join(str(m.get("diffType")) for m in modifiers)
        raise ConversionError(
            f"{what}: differential scoring in {kinds} cannot be expressed in"
            " TOPAS (kinetic energy E alone can)"
        )
    modifier = modifiers[0]
    bins = _count(modifier.get("binsNumber"), f"{what} energy bins")
    low = number(modifier.get("lowerLimit"), f"{what} energy lower limit")
    high = number(modifier.get("upperLimit"), f"{what} energy upper limit")
    log = bool(modifier.get("isLog"))
    if not 0 <= low < high or (log and low == 0):
        raise ConversionError(f"{what}: energy binning {low}-{high} MeV is not valid")
    out.int(f"{sc}/EBins", bins)
    out.energy(f"{sc}/EBinMin", low)
    out.energy(f"{sc}/EBinMax", high)
    out.string(f"{sc}/EBinEnergy", "PreStep")
    if log:
        out.boolean(f"{sc}/EBinLog", True)


def _selection(chosen: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A filter as (TOPAS particle name, generation), or refused."""
    what = _label(chosen, "filter")
    if isinstance(chosen.get("particle"), Mapping):
        identity = chosen["particle"].get("id")
        if identity not in _PARTICLES:
            raise ConversionError(f"{what}: particle '{identity}' cannot be expressed in TOPAS")
        return _PARTICLES[identity][0], None
    values: dict[str, tuple[str, float]] = {}
    for rule in _items(chosen, "rules", what):
        keyword, operator = rule.get("keyword"), rule.get("operator")
        value = number(rule.get("value"), f"{what} {keyword}")
        if keyword not in ("Z", "A", "GEN") or keyword in values:
            raise ConversionError(f"{what}: rule on '{keyword}' cannot be expressed in TOPAS")
        values[str(keyword)] = (str(operator), value)
    particle = generation = None
    if "Z" in values or "A" in values:
        z, a = values.get("Z"), values.get("A")
        if z is None or a is None or z[0] != "==" or a[0] != "==":
            raise ConversionError(f"{what}: TOPAS filters name a particle (Z == and A ==)")
        key = (int(z[1]), int(a[1]))
        if key[0] < 0 or key[1] < max(key[0], 1) or key != (z[1], a[1]):
            raise ConversionError(f"{what}: Z {z[1]:g}, A {a[1]:g} is not a nucleus")
        particle = _NUCLEI.get(key, f"GenericIon({key[0]},{key[1]})")
    if "GEN" in values:
        operator, value = values["GEN"]
        if (operator, value) == ("==", 0):
            generation = "Primary"
        elif (operator, value) in ((">=", 1), (">", 0), ("!=", 0)):
            generation = "Secondary"
        else:
            raise ConversionError(f"{what}: GEN {operator} {value:g} cannot be expressed in TOPAS")
    return particle, generation


# ---------------------------------------------------------------------------------------------
# Writing parameters


def _format(value: float) -> str:
    text = np.format_float_positional(round(value, 10), trim="-")
    return "0" if text in ("-0", "0") else text


class _Parameters:
    """Typed TOPAS parameter lines; a name may appear once (TOPAS ignores case)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.seen: set[str] = set()

    def add(self, kind: str, name: str, value: str) -> None:
        if name.lower() in self.seen:
            raise ConversionError(f"two items of the project both define TOPAS parameter {name}")
        self.seen.add(name.lower())
        self.lines.append(f"{kind}:{name} = {value}")

    def comment(self, text: str) -> None:
        self.lines.append("# " + re.sub(r"[\r\n]+", " ", text))

    def string(self, name: str, value: str) -> None:
        self.add("s", name, f'"{value}"')

    def strings(self, name: str, values: Sequence[str]) -> None:
        self.add("sv", name, " ".join([str(len(values)), *(f'"{v}"' for v in values)]))

    def int(self, name: str, value: int) -> None:
        self.add("i", name, str(value))

    def boolean(self, name: str, value: bool) -> None:
        self.add("b", name, '"True"' if value else '"False"')

    def unitless(self, name: str, value: float) -> None:
        self.add("u", name, _format(value))

    def length(self, name: str, value: float) -> None:
        self.add("d", name, f"{_format(value)} cm")

    def angle(self, name: str, value: float) -> None:
        self.add("d", name, f"{_format(value)} deg")

    def energy(self, name: str, value: float) -> None:
        self.add("d", name, f"{_format(value)} MeV")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
