"""FLUKA input from a YAPTIDE editor project: ``fl_sim.inp`` and ``info.json``.

The cards follow the layout of YAPTIDE's own FLUKA converter (card order, ``figN`` bodies,
``regionN`` regions plus ``world`` and a black-hole ``boundary`` shell, one USRBIN logical unit
per output from 21 on, DEFAULTS HADROTHE, RANDOMIZ 137), written for the whole job: START holds
``beam.numberOfParticles``. Where that converter drops or breaks something the project states,
this one keeps it: the world zone's own size and material, the beam's energy spread and
divergence, Gaussian widths as FLUKA's FWHM, flat-square half-sides as full widths, rotated
boxes as BOX bodies. Whatever FLUKA's cards cannot express is refused with a ConversionError
that names the item. Left out, as YAPTIDE leaves them out: the SHIELD-HIT physics switches
(DEFAULTS HADROTHE governs), the beam's energy cut-offs, and SAD (the editor uses it only for
file sources, which are refused).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.materials import zone_material
from cyclotron.simulators.converters.outline import read_checked
from cyclotron.simulators.converters.values import count, number, vector

__all__ = ["BOUNDARY_MARGIN_CM", "DEFAULT_SEED", "INPUT_FILE", "fluka_files"]

INPUT_FILE = "fl_sim.inp"
DEFAULT_SEED = 137
BOUNDARY_MARGIN_CM = 10.0
MAX_WORLD_TERMS = 10_000
_TITLE = "proton beam simulation"
_FIRST_UNIT, _LAST_UNIT = 21, 99
_FREE_FORMAT_WIDTH = 132
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_HEAVY_ION = 25

Vector = tuple[float, float, float]

# editor particle id -> FLUKA name, rest mass in MeV (per nucleon for HEAVYION), nucleons
_PARTICLES: dict[int, tuple[str, float, int]] = {
    1: ("NEUTRON", 939.565, 1),
    2: ("PROTON", 938.272, 1),
    3: ("PION-", 139.570, 1),
    4: ("PION+", 139.570, 1),
    5: ("PIZERO", 134.977, 1),
    6: ("ANEUTRON", 939.565, 1),
    7: ("APROTON", 938.272, 1),
    8: ("KAON-", 493.677, 1),
    9: ("KAON+", 493.677, 1),
    10: ("KAONZERO", 497.611, 1),
    11: ("KAONLONG", 497.611, 1),
    12: ("PHOTON", 0.0, 1),
    15: ("MUON-", 105.658, 1),
    16: ("MUON+", 105.658, 1),
    21: ("DEUTERON", 1875.613, 2),
    22: ("TRITON", 2808.921, 3),
    23: ("3-HELIUM", 2808.391, 3),
    24: ("4-HELIUM", 3727.379, 4),
    _HEAVY_ION: ("HEAVYION", 931.494, 0),
    26: ("ELECTRON", 0.511, 1),
}

_BLACK_HOLE_ICRU, _VACUUM_ICRU = 0, 1000
# ICRU compounds FLUKA predefines: name and the density FLUKA gives them (g/cm3)
_COMPOUNDS: dict[int, tuple[str, float]] = {
    103: ("ADTISSUE", 0.92),
    104: ("AIR", 0.00120479),
    119: ("BONECOMP", 1.85),
    120: ("BONECORT", 1.85),
    179: ("KAPTON", 1.42),
    201: ("MUSCLESK", 1.04),
    202: ("MUSCLEST", 1.04),
    216: ("PLASCINT", 1.032),
    221: ("POLYETHY", 0.94),
    223: ("PMMA", 1.19),
    226: ("POLYSTYR", 1.06),
    276: ("WATER", 1.0),
}
# elements (editor ICRU id = Z) with a FLUKA low-energy neutron data set, by its LOW-MAT name
_ELEMENTS: dict[int, str] = {
    int(z): name
    for z, name in (
        pair.split(":")
        for pair in """
        1:HYDROGEN 2:HELIUM 3:LITHIUM 4:BERYLLIU 5:BORON 6:CARBON 7:NITROGEN 8:OXYGEN
        9:FLUORINE 10:NEON 11:SODIUM 12:MAGNESIU 13:ALUMINUM 14:SILICON 15:PHOSPHO 16:SULFUR
        17:CHLORINE 18:ARGON 19:POTASSIU 20:CALCIUM 21:SCANDIUM 22:TITANIUM 23:VANADIUM
        24:CHROMIUM 25:MANGANES 26:IRON 27:COBALT 28:NICKEL 29:COPPER 30:ZINC 31:GALLIUM
        32:GERMANIU 33:ARSENIC 35:BROMINE 36:KRYPTON 38:STRONTIU 39:YTTRIUM 40:ZIRCONIU
        41:NIOBIUM 42:MOLYBDEN 43:99-TC 46:PALLADIU 47:SILVER 48:CADMIUM 49:INDIUM 50:TIN
        51:ANTIMONY 53:IODINE 54:XENON 55:CESIUM 56:BARIUM 57:LANTHANU 58:CERIUM 60:NEODYMIU
        62:SAMARIUM 63:EUROPIUM 64:GADOLINI 65:TERBIUM 71:LUTETIUM 72:HAFNIUM 73:TANTALUM
        74:TUNGSTEN 75:RHENIUM 77:IRIDIUM 78:PLATINUM 79:GOLD 80:MERCURY 82:LEAD 83:BISMUTH
        89:230-TH 92:233-U 94:239-PU 95:241-AM
        """.split()  # noqa: SIM905 (the table reads better as text)
    )
}


def fluka_files(project: Mapping[str, Any]) -> dict[str, str]:
    """The ``fl_sim.inp`` and ``info.json`` a FLUKA run of the whole job reads."""
    return read_checked(_files, project)


def _files(project: Mapping[str, Any]) -> dict[str, str]:
    _check_project(project)
    beam = _section(project, "beam")
    geometry = _Geometry.of(project)
    materials = _Materials.of(project)
    assignments = [
        *(_card("ASSIGNMA", materials.name_of(zone), region) for zone, region in geometry.zones),
        _card("ASSIGNMA", "BLCKHOLE", "boundary"),
    ]
    lines = [
        "TITLE",
        _TITLE,
        "* default physics settings for hadron therapy",
        _card("DEFAULTS", sdum="HADROTHE"),
        *_beam_cards(beam),
        "* geometry description starts here",
        _card("GEOBEGIN", sdum="COMBNAME"),
        "    0    0",
        *geometry.body_lines,
        "END",
        *geometry.region_lines,
        "END",
        "GEOEND",
        *materials.cards(),
        *assignments,
        "* generated scoring cards",
        *_scoring_cards(project),
        "* random number generator settings",
        _card("RANDOMIZ", None, DEFAULT_SEED),
        "* number of particles to simulate",
        _card("START", count(beam.get("numberOfParticles"), "beam.numberOfParticles")),
        "STOP",
    ]
    info = {"version": "unknown", "label": "", "simulator": "fluka"}
    return {INPUT_FILE: "\n".join(lines) + "\n", "info.json": json.dumps(info, indent=4) + "\n"}


def _check_project(project: Mapping[str, Any]) -> None:
    """Refuse projects made for Geant4 (other particle ids) or with SHIELD-HIT's components."""
    simulator = (project.get("project") or {}).get("simulator", "common")
    if simulator not in ("common", "fluka", "shieldhit"):
        raise ConversionError(f"project.simulator {simulator!r}: its particles differ from FLUKA's")
    special = project.get("specialComponentsManager") or {}
    for component in ("CTCube", "modulator"):
        if special.get(component):
            raise ConversionError(f"special component {component!r} has no FLUKA equivalent")


# --- card text ---------------------------------------------------------------------------


def _card(keyword: str, *what: float | str | None, sdum: str = "") -> str:
    """One fixed-format card: keyword, up to six 10-column WHATs, SDUM from column 71."""
    if len(what) > 6:
        raise ValueError(f"{keyword}: a card has at most six WHATs")
    fields = "".join(f"{_field(value):>10}" for value in what)
    return f"{keyword:<10}{fields:<60}{sdum}".rstrip()


def _field(value: float | str | None) -> str:
    """A WHAT's text: exact where it fits, and at most nine characters where that is exact,
    so that neighbouring fields stay apart even for readers that split on blanks."""
    if value is None:
        return ""
    if isinstance(value, str):
        if len(value) > 10:
            raise ConversionError(f"{value!r} is longer than a FLUKA field")
        return value
    number = _tidy(value)
    candidates = [repr(number)] if "e" not in repr(number) else []
    for digits in range(12, -1, -1):
        for style in ("g", "e"):
            mantissa, _, exponent = f"{number:.{digits}{style}}".partition("e")
            mantissa += "" if "." in mantissa else "."
            candidates.append(mantissa + (f"E{int(exponent)}" if exponent else ""))
    if number.is_integer() and abs(number) < 1e10:
        candidates.append(str(int(number)))
    exact = [text for text in candidates if float(text) == number]
    for fits in ([text for text in exact if len(text) <= n] for n in (9, 10)):
        if fits:
            return fits[0]
    rounded = [text for text in candidates if len(text) <= 9]
    if rounded:
        return min(rounded, key=lambda text: abs(float(text) - number))
    raise ConversionError(f"the number {number!r} does not fit a 10-column FLUKA field")


def _tidy(value: float) -> float:
    """The value without binary noise (12 significant digits) and without a negative zero."""
    if not math.isfinite(value):
        raise ConversionError(f"the number {value!r} is not finite")
    return float(f"{value:.12g}") + 0.0


def _free_format(tokens: Sequence[str], indent: str = "  ") -> list[str]:
    """Tokens wrapped into free-format lines of at most 132 columns."""
    lines = [tokens[0]]
    for token in tokens[1:]:
        if len(lines[-1]) + 1 + len(token) > _FREE_FORMAT_WIDTH:
            lines.append(indent + token)
        else:
            lines[-1] += " " + token
    return lines


def _indexed_name(prefix: str, index: int) -> str:
    name = f"{prefix}{index}"
    if len(name) > 8:
        raise ConversionError(f"{prefix}{index}: FLUKA names have at most 8 characters")
    return name


# --- project values ----------------------------------------------------------------------


def _section(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    if not isinstance(value, Mapping):
        raise ConversionError(f"the project has no {key!r} section")
    return value


def _particle(particle: Mapping[str, Any]) -> tuple[str, float, int] | None:
    """FLUKA name, mass and nucleons of an editor particle, None if FLUKA lacks it."""
    particle_id = particle.get("id")
    return _PARTICLES.get(particle_id) if isinstance(particle_id, int) else None


def _rotate(vector: Vector, degrees: Vector) -> Vector:
    """The vector turned by the editor's Euler angles (three.js order XYZ: Rx·Ry·Rz)."""
    x, y, z = vector
    ax, ay, az = (math.radians(angle) for angle in degrees)
    x, y = x * math.cos(az) - y * math.sin(az), x * math.sin(az) + y * math.cos(az)
    x, z = x * math.cos(ay) + z * math.sin(ay), -x * math.sin(ay) + z * math.cos(ay)
    y, z = y * math.cos(ax) - z * math.sin(ax), y * math.sin(ax) + z * math.cos(ax)
    return (x, y, z)


# --- geometry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Solid:
    """A box (width, height, depth), cylinder (radius, depth) or sphere (radius)."""

    kind: str
    center: Vector
    rotation: Vector
    sizes: tuple[float, ...]

    @classmethod
    def of(cls, geometry: Any, label: str, *, world: bool = False) -> _Solid:
        if not isinstance(geometry, Mapping):
            raise ConversionError(f"{label} has no geometryData")
        kind = geometry.get("geometryType")
        parameters = geometry.get("parameters") or {}
        keys = {"BoxGeometry": ("width", "height", "depth"), "SphereGeometry": ("radius",)}
        keys["HollowCylinderGeometry"] = ("radius", "depth")
        if kind not in keys:
            raise ConversionError(f"{label}: geometry {kind!r} has no FLUKA body here")
        if kind == "HollowCylinderGeometry" and not world:
            inner = number(parameters.get("innerRadius", 0), f"{label} inner radius")
            if inner > 0:
                raise ConversionError(
                    f"{label}: a hollow cylinder (inner radius {inner}) is refused"
                )
        sizes = tuple(number(parameters.get(key), f"{label} {key}") for key in keys[kind])
        if min(sizes) <= 0:
            raise ConversionError(f"{label}: sizes must be positive, not {sizes}")
        return cls(
            kind={"BoxGeometry": "box", "SphereGeometry": "sphere"}.get(kind, "cylinder"),
            center=vector(geometry.get("position", (0, 0, 0)), f"{label} position"),
            rotation=vector(geometry.get("rotation", (0, 0, 0)), f"{label} rotation"),
            sizes=sizes,
        )

    def grown(self, margin: float) -> _Solid:
        """The same solid with every face moved out by the margin."""
        if self.kind == "box":
            sizes = tuple(size + 2 * margin for size in self.sizes)
        elif self.kind == "cylinder":
            sizes = (self.sizes[0] + margin, self.sizes[1] + 2 * margin)
        else:
            sizes = (self.sizes[0] + margin,)
        return _Solid(self.kind, self.center, self.rotation, sizes)

    def body(self, name: str) -> list[str]:
        """The free-format body definition (RPP, BOX, RCC or SPH)."""
        cx, cy, cz = self.center
        if self.kind == "sphere":
            keyword, values = "SPH", [cx, cy, cz, self.sizes[0]]
        elif self.kind == "cylinder":
            radius, depth = self.sizes
            axis = _rotate((0.0, 0.0, depth), self.rotation)
            base = [c - a / 2 for c, a in zip(self.center, axis, strict=True)]
            keyword, values = "RCC", [*base, *axis, radius]
        elif not any(self.rotation):
            spans = zip(self.center, self.sizes, strict=True)
            keyword, values = "RPP", [c + s * side / 2 for c, s in spans for side in (-1, 1)]
        else:
            w, h, d = self.sizes
            edges = [_rotate(edge, self.rotation) for edge in ((w, 0, 0), (0, h, 0), (0, 0, d))]
            corner = [c - sum(edge[i] for edge in edges) / 2 for i, c in enumerate(self.center)]
            keyword, values = "BOX", [*corner, *(value for edge in edges for value in edge)]
        return _free_format([keyword, name, *(f"{_tidy(value):+}" for value in values)])


@dataclass
class _Geometry:
    """Bodies and regions: one region per zone, then the world and its black-hole shell."""

    body_lines: list[str] = field(default_factory=list)
    region_lines: list[str] = field(default_factory=list)
    zones: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)

    @classmethod
    def of(cls, project: Mapping[str, Any]) -> _Geometry:
        geometry = cls()
        bodies: dict[str, str] = {}
        for index, figure in enumerate(_section(project, "figureManager").get("figures") or []):
            name = _indexed_name("fig", index)
            label = f"figure {figure.get('name')!r}"
            geometry.body_lines += _Solid.of(figure.get("geometryData"), label).body(name)
            bodies[str(figure.get("uuid"))] = name
        zone_manager = _section(project, "zoneManager")
        occupied: list[list[str]] = []
        for index, zone in enumerate(zone_manager.get("zones") or []):
            expression = _zone_expression(zone, bodies)
            occupied += _terms(expression)
            geometry.add_region(_indexed_name("region", index), expression, zone)
        world_zone = _section(zone_manager, "worldZone")
        world = _Solid.of(world_zone.get("geometryData"), "world zone", world=True)
        geometry.body_lines += world.body("figworld")
        geometry.body_lines += world.grown(BOUNDARY_MARGIN_CM).body("figbound")
        geometry.add_region("world", _outside("+figworld", occupied), world_zone)
        geometry.add_region("boundary", ["+figbound", "-figworld"], None)
        return geometry

    def add_region(self, name: str, expression: list[str], zone: Mapping[str, Any] | None) -> None:
        self.region_lines += _free_format([name, "5", *expression])
        if zone is not None:
            self.zones.append((zone, name))


def _terms(expression: list[str]) -> list[list[str]]:
    """A region's expression as its ``|``-joined terms, each a list of signed bodies."""
    terms: list[list[str]] = [[]]
    for token in expression:
        if token == "|":
            terms.append([])
        else:
            terms[-1].append(token)
    return terms


def _outside(world: str, occupied: Sequence[Sequence[str]]) -> list[str]:
    """The world body minus every occupied term, as ``|``-joined terms.

    Subtracting all the bodies the zones name left out the parts of them no zone holds (a
    figure a zone subtracts, a figure outside an intersection): FLUKA finds such points in no
    region. The difference is expanded term by term (De Morgan), dropping the terms that hold
    a body and its complement and those another term contains.
    """

    def negated(token: str) -> str:
        return ("-" if token[0] == "+" else "+") + token[1:]

    parts: list[list[str]] = [[world]]
    for term in occupied:
        expanded: list[list[str]] = []
        for part in parts:
            if any(negated(t) in part for t in term):  # the term misses this part already
                expanded.append(part)
            else:  # a body the part holds cannot be subtracted from it
                expanded += [[*part, negated(t)] for t in term if t not in part]
        parts = [
            part
            for index, part in enumerate(expanded)
            if not any(
                set(other) < set(part) or (set(other) == set(part) and other_index < index)
                for other_index, other in enumerate(expanded)
            )
        ]
        if len(parts) > MAX_WORLD_TERMS:
            raise ConversionError(f"world zone too complex: more than {MAX_WORLD_TERMS} terms")
    return [token for index, part in enumerate(parts) for token in (["|"] if index else []) + part]


def _zone_expression(zone: Mapping[str, Any], bodies: Mapping[str, str]) -> list[str]:
    """The zone's boolean operations as FLUKA tokens; unions of operation lists become ``|``."""
    label = f"zone {zone.get('name')!r}"
    groups = zone.get("unionOperations") or []
    if not groups or not all(groups):
        raise ConversionError(f"{label} has no figures")
    tokens: list[str] = []
    for group in groups:
        if tokens:
            tokens.append("|")
        for position, operation in enumerate(group):
            mode, uuid = operation.get("mode"), operation.get("objectUuid")
            body = bodies.get(str(uuid))
            if body is None:
                raise ConversionError(f"{label} uses an unknown figure {uuid!r}")
            if mode == "intersection" or (mode == "union" and position == 0):
                tokens.append(f"+{body}")
            elif mode == "subtraction" and position > 0:
                tokens.append(f"-{body}")
            else:
                raise ConversionError(f"{label}: operation {mode!r} at position {position + 1}")
    return tokens


# --- materials ---------------------------------------------------------------------------


@dataclass
class _Materials:
    """FLUKA names for the zones' materials, defining new materials where FLUKA lacks them."""

    by_uuid: dict[str, Mapping[str, Any]]
    names: dict[tuple[int, float, float | None], str] = field(default_factory=dict)
    materials: list[str] = field(default_factory=list)
    low_mats: list[str] = field(default_factory=list)
    compounds: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, project: Mapping[str, Any]) -> _Materials:
        listed = _section(project, "materialManager").get("materials") or []
        return cls({str(material.get("uuid")): material for material in listed})

    def cards(self) -> list[str]:
        return [*self.materials, *self.low_mats, *self.compounds, *self.properties]

    def name_of(self, zone: Mapping[str, Any]) -> str:
        """The FLUKA material of a zone (its material with the zone's overrides)."""
        label = f"zone {zone.get('name')!r}"
        # The library's density unless the zone overrides it (a listed material's may be stale).
        found = zone_material(zone, self.by_uuid, label)
        material = found.source
        label = f"{label} material {found.name!r}"
        overrides = zone.get("materialPropertiesOverrides") or {}
        icru, density = found.icru, found.density
        potential = overrides.get(
            "averageIonisationPotential", material.get("averageIonisationPotential")
        )
        if potential is not None:
            potential = number(potential, f"{label} ionisation potential")
        if icru in (_BLACK_HOLE_ICRU, _VACUUM_ICRU):
            if potential is not None:
                raise ConversionError(f"{label}: FLUKA's {icru=} takes no ionisation potential")
            return "BLCKHOLE" if icru == _BLACK_HOLE_ICRU else "VACUUM"
        if density <= 0:
            raise ConversionError(f"{label}: density must be positive, not {density}")
        key = (icru, density, potential)
        if key not in self.names:
            self.names[key] = self._define(icru, density, potential, label)
        return self.names[key]

    def _define(self, icru: int, density: float, potential: float | None, label: str) -> str:
        if icru in _COMPOUNDS:
            base, base_density = _COMPOUNDS[icru]
            if potential is None and math.isclose(density, base_density, rel_tol=1e-6):
                return base
            name = f"COM{len(self.compounds) + 1:05d}"
            self.materials.append(_card("MATERIAL", 0.0, None, density, sdum=name))
            self.compounds.append(_card("COMPOUND", -1.0, base, sdum=name))
        elif icru in _ELEMENTS:
            name = f"MAT{len(self.low_mats) + 1:05d}"
            self.materials.append(_card("MATERIAL", float(icru), None, density, sdum=name))
            self.low_mats.append(_card("LOW-MAT", name, sdum=_ELEMENTS[icru]))
        else:
            raise ConversionError(f"{label} (ICRU {icru}) has no FLUKA equivalent")
        if potential is not None:
            self.properties.append(_card("MAT-PROP", None, None, potential, name))
        return name


# --- beam --------------------------------------------------------------------------------


def _beam_cards(beam: Mapping[str, Any]) -> list[str]:
    """BEAM (with HI-PROPE for heavy ions) and BEAMPOS."""
    if beam.get("sourceType", "simple") != "simple":
        raise ConversionError(f"beam source type {beam.get('sourceType')!r} (a SHIELD-HIT file)")
    particle = beam.get("particle") or {}
    known = _particle(particle)
    if known is None:
        raise ConversionError(
            f"beam particle {particle.get('name')!r} (id {particle.get('id')}) is not in FLUKA"
        )
    name, mass, nucleons = known
    heavy_ion: list[str] = []
    if name == "HEAVYION":
        charge = count(particle.get("z"), "heavy-ion beam Z")
        nucleons = count(particle.get("a"), "heavy-ion beam A")
        heavy_ion.append(_card("HI-PROPE", float(charge), float(nucleons)))
    energy, sigma = _beam_energy(beam, nucleons, per_nucleon=name == "HEAVYION")
    spread = _momentum_spread(energy, sigma, mass) / 1000
    divergence = _divergence(beam.get("divergence") or {})
    shape = _beam_shape(beam.get("sigma") or {})
    position = vector(beam.get("position"), "beam position")
    direction = vector(beam.get("direction"), "beam direction")
    length = math.sqrt(sum(c * c for c in direction))
    if length == 0:
        raise ConversionError("beam direction is a zero vector")
    u, v, w = (c / length for c in direction)
    per = " per nucleon" if name == "HEAVYION" else ""
    return [
        f"* {name} beam, kinetic energy {_tidy(energy)} MeV{per}, energy sigma {_tidy(sigma)}",
        _card("BEAM", -energy / 1000, spread, divergence, *shape, sdum=name),
        *heavy_ion,
        _card("BEAMPOS", *position, u, v, 0.0, sdum="NEGATIVE" if w < 0 else ""),
    ]


def _beam_energy(
    beam: Mapping[str, Any], nucleons: int, *, per_nucleon: bool
) -> tuple[float, float]:
    """Kinetic energy and its Gaussian sigma in MeV, per nucleon where FLUKA wants it."""
    energy = number(beam.get("energy"), "beam energy")
    sigma = number(beam.get("energySpread", 0), "beam energy spread")
    unit = beam.get("energyUnit", "MeV/nucl")
    if unit not in ("MeV", "MeV/nucl"):
        raise ConversionError(f"beam energy unit {unit!r}")
    if energy <= 0:
        raise ConversionError(f"beam energy must be positive, not {energy}")
    if sigma < 0:
        raise ConversionError(f"beam energy spread {sigma} (a momentum spread) is refused")
    if per_nucleon and unit == "MeV":
        scale = 1.0 / nucleons
    elif not per_nucleon and unit == "MeV/nucl":
        scale = float(nucleons)
    else:
        scale = 1.0
    return energy * scale, sigma * scale


def _momentum_spread(energy: float, sigma: float, mass: float) -> float:
    """FLUKA's WHAT(2): minus the FWHM of the momentum in MeV/c for an energy sigma."""
    if sigma == 0:
        return 0.0
    momentum = math.sqrt(energy * energy + 2 * energy * mass)
    return -_FWHM_PER_SIGMA * sigma * (energy + mass) / momentum


def _divergence(divergence: Mapping[str, Any]) -> float:
    """FLUKA's WHAT(3): minus the FWHM in mrad of a Gaussian angular spread."""
    x = number(divergence.get("x", 0), "beam divergence x")
    y = number(divergence.get("y", 0), "beam divergence y")
    focal = number(divergence.get("distanceToFocal", 0), "beam divergence focal distance")
    if x == y == 0:
        return 0.0
    if x != y or x < 0:
        raise ConversionError(f"beam divergence x={x}, y={y}: FLUKA takes one symmetric value")
    if focal != 0:
        raise ConversionError(f"beam divergence distance to focal point {focal}")
    return -_FWHM_PER_SIGMA * x


def _beam_shape(sigma: Mapping[str, Any]) -> Vector:
    """BEAM WHAT(4..6) for the editor's beam shape."""
    shape = sigma.get("type")
    x = number(sigma.get("x", 0), "beam shape x")
    y = number(sigma.get("y", 0), "beam shape y")
    if x < 0 or y < 0:
        raise ConversionError(f"beam shape {shape!r}: negative size x={x}, y={y}")
    # WHAT(6) is the particles' weight, its sign choosing a rectangle (+) or an annulus (-)
    if shape == "Gaussian":
        return (-_FWHM_PER_SIGMA * x, -_FWHM_PER_SIGMA * y, 1.0)
    if shape == "Flat square":
        return (2 * x, 2 * y, 1.0)
    if shape == "Flat circular":
        return (y, 0.0, -1.0)
    raise ConversionError(f"beam shape {shape!r}")


# --- scoring -----------------------------------------------------------------------------


def _scoring_cards(project: Mapping[str, Any]) -> list[str]:
    """One USRBIN pair per quantity (plus AUXSCORE for filters), one logical unit per output."""
    scoring = _section(project, "scoringManager")
    listed = _section(project, "detectorManager").get("detectors") or []
    detectors = {str(detector.get("uuid")): detector for detector in listed}
    filters = {str(item.get("uuid")): item for item in scoring.get("filters") or []}
    lines: list[str] = []
    estimators = 0
    for index, output in enumerate(scoring.get("outputs") or []):
        label = f"output {output.get('name')!r}"
        unit = _FIRST_UNIT + index
        if unit > _LAST_UNIT:
            raise ConversionError(f"{label}: FLUKA has no logical unit left")
        if output.get("trace"):
            raise ConversionError(f"{label}: particle tracing")
        if output.get("scoringType", "DETECTOR") != "DETECTOR":
            raise ConversionError(f"{label}: scoring type {output.get('scoringType')!r}")
        detector = detectors.get(str(output.get("detectorUuid")))
        if detector is None:
            raise ConversionError(f"{label} uses an unknown detector")
        code, first, second = _binning(detector)
        for quantity in output.get("quantities") or []:
            estimators += 1
            scored, selection = _scored(quantity, filters, label)
            # SDUM names the binning: ten ASCII columns, so a multibyte letter cannot shift them
            name = "".join(c if c.isascii() else "_" for c in str(quantity.get("name", "")))[:10]
            lines.append(_card("USRBIN", code, scored, float(-unit), *first, sdum=name))
            lines.append(_card("USRBIN", *second, sdum="&"))
            if selection is not None:
                index_ = float(estimators)
                lines.append(_card("AUXSCORE", "USRBIN", selection, None, index_, index_, 1.0))
    return lines


def _binning(detector: Mapping[str, Any]) -> tuple[float, Vector, tuple[float, ...]]:
    """USRBIN type and the two cards' geometry for a Mesh (10) or Cyl (11) detector."""
    geometry = detector.get("geometryData") or {}
    kind = geometry.get("geometryType")
    label = f"detector {detector.get('name')!r} ({kind})"
    parameters = geometry.get("parameters") or {}
    x, y, z = vector(geometry.get("position", (0, 0, 0)), f"{label} position")
    if any(vector(geometry.get("rotation", (0, 0, 0)), f"{label} rotation")):
        raise ConversionError(f"{label}: a rotated detector")

    def size(key: str) -> float:
        return number(parameters.get(key), f"{label} {key}")

    def bins(key: str) -> float:
        return float(count(parameters.get(key), f"{label} {key}"))

    if kind == "Mesh":
        half = (size("width") / 2, size("height") / 2, size("depth") / 2)
        second = (x - half[0], y - half[1], z - half[2])
        counts = (bins("xSegments"), bins("ySegments"), bins("zSegments"))
        return 10.0, (x + half[0], y + half[1], z + half[2]), (*second, *counts)
    if kind == "Cyl":
        half_depth = size("depth") / 2
        inner = number(parameters.get("innerRadius", 0), f"{label} innerRadius")
        counts = (bins("radialSegments"), 1.0, bins("zSegments"))
        return 11.0, (size("radius"), y, z + half_depth), (inner, x, z - half_depth, *counts)
    raise ConversionError(f"{label}: no FLUKA USRBIN binning for this detector type")


def _scored(
    quantity: Mapping[str, Any], filters: Mapping[str, Mapping[str, Any]], label: str
) -> tuple[str, str | float | None]:
    """USRBIN's generalised particle and the AUXSCORE selection (None: no filter)."""
    keyword = quantity.get("keyword")
    label = f"{label} quantity {quantity.get('name')!r} ({keyword})"
    if keyword not in ("Dose", "Energy", "Fluence"):
        raise ConversionError(f"{label}: no FLUKA USRBIN quantity")
    if quantity.get("modifiers"):
        raise ConversionError(f"{label}: differential scoring (modifiers)")
    refused = [key for key in ("primaries", "rescale", "medium", "materialUuid") if key in quantity]
    if refused:
        raise ConversionError(f"{label}: {refused[0]} has no FLUKA USRBIN equivalent")
    selection: str | float | None = None
    if quantity.get("filter"):
        chosen = filters.get(str(quantity["filter"]))
        if chosen is None:
            raise ConversionError(f"{label} uses an unknown filter {quantity['filter']!r}")
        selection = _selection(chosen)
    if keyword != "Fluence":
        return str(keyword).upper(), selection
    if isinstance(selection, str):
        return selection, None
    return "ALL-PART", selection


def _selection(chosen: Mapping[str, Any]) -> str | float:
    """A particle filter as a FLUKA particle name, a Z/A filter as -(100·Z + 100000·A)."""
    label = f"filter {chosen.get('name')!r}"
    particle = chosen.get("particle")
    if isinstance(particle, Mapping):
        known = _particle(particle)
        if known is None or known[0] == "HEAVYION":
            raise ConversionError(f"{label}: particle {particle.get('name')!r} is not in FLUKA")
        return known[0]
    values: dict[str, int] = {}
    for rule in _rules(chosen, label):
        keyword, operator, value = rule.get("keyword"), rule.get("operator"), rule.get("value")
        if keyword not in ("Z", "A") or operator not in ("==", "equal") or keyword in values:
            raise ConversionError(f"{label}: rule {keyword} {operator} {value} is refused")
        values[str(keyword)] = int(number(value, f"{label} {keyword}"))
    if values.get("Z", 0) <= 0 or values.get("A", 0) < 0:
        raise ConversionError(f"{label}: needs Z == (positive) and optionally A ==")
    return float(-(100 * values["Z"] + 100000 * values.get("A", 0)))


def _rules(chosen: Mapping[str, Any], label: str) -> Iterable[Mapping[str, Any]]:
    rules = chosen.get("rules")
    if not rules:
        raise ConversionError(f"{label} selects nothing")
    return [rule for rule in rules if isinstance(rule, Mapping)]
