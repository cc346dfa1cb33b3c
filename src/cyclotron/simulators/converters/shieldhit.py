"""SHIELD-HIT12A input files (beam.dat, mat.dat, geo.dat, detect.dat) from a YAPTIDE editor project.

The layout follows what YAPTIDE's own converter writes, so that a project converted here and
one converted there give the same tokens: figures become bodies numbered in editor order
(the world zone's body after them, then the black-hole wrapper's), editor zones become
geo.dat zones numbered in editor order, and media are numbered in the order of the project's
material list, skipping the built-in black hole (0) and vacuum (1000).

The files describe the whole job: NSTAT is the project's ``numberOfParticles``; a server that
splits a job into tasks rewrites it per task.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.materials import sanitized_name
from cyclotron.simulators.converters.outline import read_checked

__all__ = ["shieldhit_files"]

Vector = tuple[float, float, float]
Part = set[int]  # bodies that intersect: +n inside body n, -n outside it

BLACK_HOLE = 0
VACUUM = 1000
FIELD_WIDTH = 10  # geo.dat body parameters are 10-column fields
WRAPPER_MARGIN_CM = 1.0  # the black-hole shell around a world zone that is not black hole
ZONES_PER_ROW = 14  # geo.dat zone/medium table rows
MAX_WORLD_PARTS = 10_000
RANDOM_SEED = 89736501
SOBP_FILE = "sobp.dat"
INFO = {"version": "", "label": "", "simulator": "shieldhit"}

# fmt: off
STRAGGLING = {"no straggling": 0, "Gaussian": 1, "Vavilov": 2}
SCATTERING = {"no scattering": 0, "Gaussian": 1, "Moliere": 2}
STOPPING_POWER_TABLES = {"ICRU49", "ICRU91"}  # chosen by the engine's data, not by beam.dat
MODULATOR_METHODS = {"modulus": 0, "sampling": 1}
MODULATOR_MODES = {"material": 0, "vacuum": 1, "vacumm": 1}  # the editor spells it "vacumm"
# Editor particle id -> (A, Z) for nuclei; the ids are SHIELD-HIT12A's JPART0 codes.
NUCLEI = {1: (1, 0), 2: (1, 1), 21: (2, 1), 22: (3, 1), 23: (3, 2), 24: (4, 2)}
HEAVY_ION = 25
OTHER_PARTICLES = {3, 4, 7, 8, 9, 10, 11, 15, 16}  # pions, antiproton, kaons, muons
FILTERABLE_BY_ID = {3, 4, 8, 9, 10, 11, 15, 16}  # detect.dat "ID" codes of the same particles
QUANTITIES = {
    "1MeVNEq", "Alanine", "AvgBeta", "AvgEnergy", "Dose", "DoseEqv", "DDD", "DoseGy", "dLET",
    "dQ", "dQeff", "Energy", "EqvDose", "Fluence", "MATERIAL", "NEqvDose", "NKERMA", "ZONE",
    "Rho", "tQ", "tQeff", "tLET", "dZ2Beta2", "tZ2Beta2", "dZeff2Beta2", "tZeff2Beta2",
}
DIFFERENTIALS = {"ANGLE", "DEDX", "E", "EAMU", "ENUC", "MDEDX", "TL", "Z", "Zeff", "Z2Beta2",
                 "Zeff2Beta2"}
FILTER_KEYWORDS = {"A", "Z", "GEN", "NPRIM", "AMASS", "AMU", "E", "ENUC", "EAMU", "ID"}
OPERATORS = {
    "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
    "equal": "==", "not_equal": "!=", "less_than": "<", "less_than_or_equal": "<=",
    "greater_than": ">", "greater_than_or_equal": ">=",
}
# fmt: on
MAX_DIFFERENTIALS = 2


def shieldhit_files(project: Mapping[str, Any]) -> dict[str, str]:
    """The SHIELD-HIT12A input files of the whole job, plus any beam or modulator files it uses."""
    return read_checked(_convert, project)


def _convert(project: Mapping[str, Any]) -> dict[str, str]:
    media = _Media(project)
    geometry = _Geometry.build(project, media)
    beam, extra = _beam_dat(project, geometry)
    detect = _detect_dat(project, geometry, media)  # may add custom media: write mat.dat last
    files = {
        "beam.dat": beam,
        "mat.dat": media.mat_dat(),
        "geo.dat": geometry.geo_dat(_title(project)),
        "detect.dat": detect,
        "info.json": json.dumps(INFO),
    }
    return {**files, **extra, **media.stopping_power_files()}


# --- numbers and names ---------------------------------------------------------------------


def _fit(value: float, width: int = FIELD_WIDTH) -> float:
    """``value`` rounded to the most decimals that keep it within ``width`` characters."""
    if value == 0:
        return 0.0
    room = width - 1 - (1 if value < 0 else 0)  # the decimal point, and the sign
    whole_digits = math.ceil(math.log10(abs(value)))
    if whole_digits > room - 1:
        raise ConversionError(f"number {value} does not fit a {width}-column geo.dat field")
    fitted = math.copysign(round(abs(float(value)), room - max(whole_digits, 1)), value)
    return 0.0 if fitted == 0 else fitted


def _fields(values: Sequence[float]) -> str:
    return "".join(f"{_fit(value):>{FIELD_WIDTH}}" for value in values)


def _rotate(vector: Vector, degrees: Sequence[float]) -> Vector:
    """Turn ``vector`` as the editor turns a figure: Euler order XYZ, i.e. about z, y, then x."""
    ax, ay, az = (math.radians(angle) for angle in degrees)
    x, y, z = vector
    x, y = x * math.cos(az) - y * math.sin(az), x * math.sin(az) + y * math.cos(az)
    x, z = x * math.cos(ay) + z * math.sin(ay), -x * math.sin(ay) + z * math.cos(ay)
    y, z = y * math.cos(ax) - z * math.sin(ax), y * math.sin(ax) + z * math.cos(ax)
    return (x, y, z)


def _vector(values: Sequence[Any]) -> Vector:
    x, y, z = values
    return (x, y, z)


def _token(name: Any, what: str) -> str:
    """A name the engine reads as one word."""
    if not isinstance(name, str) or not name or any(char.isspace() for char in name):
        raise ConversionError(
            f"{what} name {name!r} must be one word (no spaces) for SHIELD-HIT12A"
        )
    return name


def _named(kind: str, item: Mapping[str, Any]) -> str:
    return f"{kind} {item.get('name')!r}"


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConversionError(f"{what} must be a whole number, not {value!r}")
    return int(value)


def _title(project: Mapping[str, Any]) -> str:
    title = str((project.get("project") or {}).get("title") or "")
    return " ".join(title.split()) or "Unnamed geometry"


# --- solids --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Solid:
    """A figure as SHIELD-HIT12A sees it: a box, a cylinder along its own z axis, or a sphere."""

    shape: str  # "BOX" (size: edges x, y, z), "RCC" (radius, length) or "SPH" (radius)
    position: Vector
    rotation: Vector
    size: tuple[float, ...]

    @classmethod
    def of(cls, item: Mapping[str, Any], what: str, *, world: bool = False) -> _Solid:
        data = item["geometryData"]
        kind, params = data["geometryType"], data["parameters"]
        place = (_vector(data["position"]), _vector(data.get("rotation") or (0, 0, 0)))
        if kind == "BoxGeometry":
            return cls("BOX", *place, (params["width"], params["height"], params["depth"]))
        if kind in ("HollowCylinderGeometry", "CylinderGeometry"):
            # The world zone's inner radius is an editor artefact; a figure's would need two bodies.
            if not world and params.get("innerRadius", 0):
                raise ConversionError(f"{what}: hollow cylinder (innerRadius > 0) is not supported")
            return cls("RCC", *place, (params["radius"], params["depth"]))
        if kind == "SphereGeometry":
            return cls("SPH", *place, (params["radius"],))
        raise ConversionError(f"{what}: geometry type {kind!r} is not supported by SHIELD-HIT12A")

    def grown(self, margin: float) -> _Solid:
        """The same solid, ``margin`` larger on every side."""
        if self.shape == "BOX":
            return replace(self, size=tuple(edge + 2 * margin for edge in self.size))
        if self.shape == "RCC":
            return replace(self, size=(self.size[0] + margin, self.size[1] + 2 * margin))
        return replace(self, size=(self.size[0] + margin,))

    def card(self, number: int) -> str:
        """The body's lines in geo.dat: name, number, then 10-column parameters."""
        head, indent = f"  {self.shape} {number:>4}", " " * FIELD_WIDTH
        if self.shape == "SPH":
            return head + _fields([*self.position, self.size[0]])
        if self.shape == "RCC":
            axis = _rotate((0, 0, self.size[1]), self.rotation)
            base = [p - a / 2 for p, a in zip(self.position, axis, strict=True)]
            return f"{head}{_fields([*base, *axis])}\n{indent}{_fields([self.size[0]])}"
        edges = [_rotate(edge, self.rotation) for edge in _axes(self.size)]
        diagonal = [ex + ey + ez for ex, ey, ez in zip(*edges, strict=True)]
        corner = [p - d / 2 for p, d in zip(self.position, diagonal, strict=True)]
        return f"{head}{_fields([*corner, *edges[0]])}\n{indent}{_fields([*edges[1], *edges[2]])}"


def _axes(size: Sequence[float]) -> list[Vector]:
    return [(size[0], 0, 0), (0, size[1], 0), (0, 0, size[2])]


# --- media ---------------------------------------------------------------------------------


@dataclass
class _Medium:
    uuid: str
    icru: int
    sanitized_name: str
    density: float | None = None  # written only where a zone or quantity overrides it
    loads_dedx: bool = False


class _Media:
    """The project's materials plus per-zone overrides, numbered as mat.dat numbers them."""

    def __init__(self, project: Mapping[str, Any]) -> None:
        materials = project["materialManager"]["materials"]
        self._media = [
            _Medium(m.get("uuid"), m["icru"], _token(m.get("sanitizedName"), _named("material", m)))
            for m in materials
        ]
        physics = project.get("physic") or {}
        self._dedx_files: dict[int, Mapping[str, Any]] = {
            int(icru): entry
            for icru, entry in (physics.get("availableStoppingPowerFiles") or {}).items()
        }

    def add_override(self, owner: Mapping[str, Any]) -> None:
        """A zone's or quantity's copy of a material with its own density or stopping power
        (the editor's ``customMaterial``, which may lack ``sanitizedName``)."""
        custom = owner.get("customMaterial")
        if not isinstance(custom, Mapping):
            return
        overrides = owner.get("materialPropertiesOverrides") or {}
        loads_dedx = (
            bool(overrides.get("customStoppingPower")) and custom["icru"] in self._dedx_files
        )
        density = overrides.get("density", custom["density"])
        name = f"custom_{sanitized_name(custom)}"
        self._media.append(_Medium(custom["uuid"], custom["icru"], name, density, loads_dedx))

    def number(self, uuid: str) -> int:
        """The medium number a zone names: black hole and vacuum by their codes, others 1, 2, …"""
        for medium, number in self._numbered():
            if medium.uuid == uuid:
                return number
        raise ConversionError(f"material {uuid!r} is not in the project's material list")

    def sanitized_name(self, uuid: str) -> str:
        return next(m.sanitized_name for m, _ in self._numbered() if m.uuid == uuid)

    def mat_dat(self) -> str:
        blocks = []
        for medium, number in self._numbered():
            if medium.icru in (BLACK_HOLE, VACUUM):
                continue
            lines = [f"MEDIUM {number}", f"ICRU {medium.icru}"]
            if medium.density is not None:
                lines.append(f"RHO {_fit(medium.density)}")
            if medium.loads_dedx:
                lines.append("LOADDEDX")
            blocks.append("\n".join([*lines, "END"]) + "\n")
        return "".join(blocks)

    def stopping_power_files(self) -> dict[str, str]:
        """The stopping-power tables the project carries, written beside mat.dat."""
        files = self._dedx_files.values()
        return {str(f["name"]): str(f.get("content", "")) for f in files if f.get("name")}

    def _numbered(self) -> Iterator[tuple[_Medium, int]]:
        count = 0
        for medium in self._media:
            if medium.icru in (BLACK_HOLE, VACUUM):
                yield medium, medium.icru
            else:
                count += 1
                yield medium, count


# --- geometry ------------------------------------------------------------------------------


@dataclass
class _Zone:
    parts: list[Part]  # union of parts, each an intersection of bodies
    medium: int

    def line(self, number: int) -> str:
        """``  001     `` then one (A2, I5) field per body, "OR" in the A2 of each new part."""
        fields = [
            ("OR" if index and not position else "  ") + f"{body:+5}"
            for index, part in enumerate(self.parts)
            for position, body in enumerate(part)
        ]
        return f"  {number:03d}     " + "".join(fields)


@dataclass
class _Geometry:
    solids: list[_Solid] = field(default_factory=list)
    zones: list[_Zone] = field(default_factory=list)
    zone_numbers: dict[str, tuple[int, int]] = field(default_factory=dict)  # uuid -> first, last

    @classmethod
    def build(cls, project: Mapping[str, Any], media: _Media) -> _Geometry:
        geometry = cls()
        bodies: dict[str, int] = {}
        for figure in project["figureManager"]["figures"]:
            geometry.solids.append(_Solid.of(figure, f"figure {figure.get('name')!r}"))
            bodies[figure["uuid"]] = len(geometry.solids)
        for zone in project["zoneManager"]["zones"]:
            media.add_override(zone)
            parts = _zone_parts(zone, bodies)
            medium = media.number(str(zone.get("materialUuid")))
            geometry._add(str(zone.get("uuid", "")), [_Zone(parts, medium)])
        world = project["zoneManager"].get("worldZone")
        if world is None:
            raise ConversionError("the project has no world zone")
        geometry._add_world(world, media)
        return geometry

    def _add(self, uuid: str, zones: list[_Zone]) -> None:
        self.zone_numbers[uuid] = (len(self.zones) + 1, len(self.zones) + len(zones))
        self.zones.extend(zones)

    def _add_world(self, world: Mapping[str, Any], media: _Media) -> None:
        solid = _Solid.of(world, "world zone", world=True)
        self.solids.append(solid)
        medium = media.number(str(world.get("materialUuid")))
        parts = _outside(len(self.solids), [part for zone in self.zones for part in zone.parts])
        # One zone per part, as YAPTIDE writes it, while the parts cannot overlap.
        split = all(_disjoint(a, b) for i, a in enumerate(parts) for b in parts[i + 1 :])
        groups = [[part] for part in parts] if split else [_unique(parts)]
        self._add(str(world.get("uuid", "")), [_Zone(group, medium) for group in groups])
        if medium != BLACK_HOLE:  # particles must end in black hole: wrap the world in it
            self.solids.append(solid.grown(WRAPPER_MARGIN_CM))
            wrapper = len(self.solids)
            self.zones.append(_Zone([{wrapper, -(wrapper - 1)}], BLACK_HOLE))

    def geo_dat(self, title: str) -> str:
        numbers = [str(number) for number in range(1, len(self.zones) + 1)]
        media = [str(zone.medium) for zone in self.zones]
        table = [
            "".join(f"{value:>5}" for value in column[start : start + ZONES_PER_ROW])
            for column in (numbers, media)
            for start in range(0, len(column), ZONES_PER_ROW)
        ]
        lines = [
            f"{0:>5}{0:>5}          {title}",
            *(solid.card(number) for number, solid in enumerate(self.solids, start=1)),
            "  END",
            *(zone.line(number) for number, zone in enumerate(self.zones, start=1)),
            "  END",
            *table,
        ]
        return "\n" + "\n".join(lines) + "\n"


def _zone_parts(zone: Mapping[str, Any], bodies: Mapping[str, int]) -> list[Part]:
    """An editor boolean zone as a union of intersections of signed body numbers."""
    what = f"zone {zone.get('name')!r}"
    if zone.get("type", "BooleanZone") != "BooleanZone":
        raise ConversionError(f"{what}: zone type {zone.get('type')!r} is not supported")
    parts: list[Part] = []
    for group in zone.get("unionOperations") or []:
        for step in group:
            if step["objectUuid"] not in bodies:
                raise ConversionError(f"{what} uses a figure that is not in the project")
            body, mode = bodies[step["objectUuid"]], step["mode"]
            if mode == "union":
                parts.append({body})
            elif mode not in ("subtraction", "intersection"):
                raise ConversionError(f"{what}: boolean operation {mode!r} is not supported")
            elif not parts:
                raise ConversionError(f"{what} begins with a {mode} instead of a union")
            else:
                parts[-1].add(-body if mode == "subtraction" else body)
    if not parts:
        raise ConversionError(f"{what} uses no figure")
    return parts


def _outside(world_body: int, occupied: Sequence[Part]) -> list[Part]:
    """The world body minus every occupied part, expanded into a union of intersections."""
    parts: list[Part] = [{world_body}]
    for part in occupied:
        expanded = ({*current, -body} for current in parts for body in part)
        parts = [candidate for candidate in expanded if not any(-b in candidate for b in candidate)]
        if len(parts) > MAX_WORLD_PARTS:
            raise ConversionError("world zone too complex: more than 10000 parts")
    return parts


def _disjoint(first: Part, second: Part) -> bool:
    return any(-body in second for body in first)


def _unique(parts: list[Part]) -> list[Part]:
    unique: list[Part] = []
    for part in parts:
        if part not in unique:
            unique.append(part)
    return unique


# --- beam.dat ------------------------------------------------------------------------------


def _beam_dat(project: Mapping[str, Any], geometry: _Geometry) -> tuple[str, dict[str, str]]:
    beam, physics = project["beam"], project.get("physic") or {}
    particle = beam["particle"]
    jpart = particle["id"]
    energy, spread = _energy_per_nucleon(beam, particle)
    extra: dict[str, str] = {}
    lines = [
        f"RNDSEED      {RANDOM_SEED}      ! random seed",
        f"JPART0       {jpart}      ! incident particle ({particle.get('name', '')})",
        _heavy_ion(particle),
        f"TMAX0        {float(energy)} {float(spread)}      ! energy and spread [MeV/nucl]",
        _cutoffs(beam),
        f"NSTAT        {_primaries(beam)} 0      ! primaries of the whole job",
        *_physics(physics),
        _modulator(project, geometry, extra),
        "BEAMPOS      {} {} {}      ! beam position [cm]".format(
            *beam.get("position") or (0, 0, 0)
        ),
        "BEAMDIR      {} {}      ! polar and azimuthal angle [deg]".format(*_angles(beam)),
        "BEAMSIGMA    {} {}      ! beam extension [cm]".format(*_sigma(beam.get("sigma") or {})),
        _sad(beam.get("sad")),
        *_divergence(beam.get("divergence")),
        f"DELTAE       {physics.get('energyLoss', 0.03)}      ! relative energy loss per step",
    ]
    if beam.get("sourceType", "simple") == "file":
        content = (beam.get("sourceFile") or {}).get("value") or ""
        if not content:
            raise ConversionError("beam source type 'file' without a beam source file")
        extra[SOBP_FILE] = content
        lines.append(f"USECBEAM     {SOBP_FILE}      ! beam from a source file")
    elif beam.get("sourceType", "simple") != "simple":
        raise ConversionError(f"beam source type {beam['sourceType']!r} is not supported")
    return "\n" + "\n".join(lines) + "\n", extra


def _energy_per_nucleon(beam: Mapping[str, Any], particle: Mapping[str, Any]) -> tuple[Any, Any]:
    """TMAX0 takes MeV per nucleon for nuclei; newer editors may give the total in MeV."""
    jpart, unit = particle["id"], beam.get("energyUnit")
    if jpart == HEAVY_ION:
        mass = _count(particle.get("a"), "heavy-ion mass number A")
    elif jpart in NUCLEI:
        mass = NUCLEI[jpart][0]
    elif jpart in OTHER_PARTICLES:
        mass = 0
    else:
        name = particle.get("name", "?")
        raise ConversionError(f"particle {name!r} (id {jpart}) is not supported by SHIELD-HIT12A")
    energy, spread = beam["energy"], beam.get("energySpread") or 0
    if unit in (None, "MeV/nucl") and (unit is None or mass > 0):
        return energy, spread
    if unit == "MeV":
        return (energy / mass, spread / mass) if mass > 1 else (energy, spread)
    raise ConversionError(f"energy unit {unit!r} is not supported for particle id {jpart}")


def _heavy_ion(particle: Mapping[str, Any]) -> str:
    if particle["id"] != HEAVY_ION:
        return "! no heavy ion"
    mass = _count(particle.get("a"), "heavy-ion mass number A")
    charge = _count(particle.get("z"), "heavy-ion charge Z")
    return f"HIPROJ       {mass} {charge}      ! A and Z of the ion"


def _cutoffs(beam: Mapping[str, Any]) -> str:
    low, high = beam.get("energyLowCutoff"), beam.get("energyHighCutoff")
    if low is None or high is None:
        return "! no energy cutoffs"
    return f"TCUT0        {low} {high}      ! energy cutoffs [MeV]"


def _primaries(beam: Mapping[str, Any]) -> int:
    primaries = _count(beam["numberOfParticles"], "beam numberOfParticles")
    if primaries < 1:
        raise ConversionError(f"beam numberOfParticles must be at least 1, not {primaries}")
    return primaries


def _physics(physics: Mapping[str, Any]) -> list[str]:
    straggling = physics.get("energyModelStraggling", "Vavilov")
    scattering = physics.get("multipleScattering", "Moliere")
    table = physics.get("stoppingPowerTable", "ICRU91")
    if straggling not in STRAGGLING:
        raise ConversionError(f"straggling model {straggling!r} is not supported")
    if scattering not in SCATTERING:
        raise ConversionError(f"multiple scattering model {scattering!r} is not supported")
    if table not in STOPPING_POWER_TABLES:
        raise ConversionError(f"stopping power table {table!r} is not supported")
    nuclear = 1 if physics.get("enableNuclearReactions", True) else 0
    return [
        f"STRAGG       {STRAGGLING[straggling]}      ! straggling: 0 off, 1 Gauss, 2 Vavilov",
        f"MSCAT        {SCATTERING[scattering]}      ! scattering: 0 off, 1 Gauss, 2 Moliere",
        f"NUCRE        {nuclear}      ! nuclear reactions: 1 on, 0 off",
    ]


def _modulator(project: Mapping[str, Any], geometry: _Geometry, extra: dict[str, str]) -> str:
    modulator = (project.get("specialComponentsManager") or {}).get("modulator")
    if modulator is None:
        return "! no beam modulator"
    zone_uuid = modulator["geometryData"]["parameters"]["zoneUuid"]
    if zone_uuid not in geometry.zone_numbers:
        raise ConversionError("the beam modulator's zone is not in the project")
    source = modulator.get("sourceFile") or {}
    name, content = source.get("name"), source.get("value")
    if not name or content is None:
        raise ConversionError("the beam modulator has no configuration file")
    method = modulator.get("simulationMethod", "modulus")
    mode = modulator.get("interpretationMode", "material")
    if method not in MODULATOR_METHODS or mode not in MODULATOR_MODES:
        raise ConversionError(f"beam modulator method {method!r} / mode {mode!r} not supported")
    extra[_token(name, "beam modulator file")] = content
    return "\n".join(
        [
            f"USEBMOD      {geometry.zone_numbers[zone_uuid][0]} {name}  ! modulator zone, file",
            f"BMODMC       {MODULATOR_METHODS[method]}      ! 0 modulus, 1 Monte Carlo sampling",
            f"BMODTRANS    {MODULATOR_MODES[mode]}      ! thicknesses as 0 material, 1 vacuum",
        ]
    )


def _angles(beam: Mapping[str, Any]) -> tuple[float, float]:
    """The beam direction as polar angle from +z and azimuth in [0, 360), in degrees."""
    x, y, z = beam.get("direction") or (0, 0, 1)
    length = math.sqrt(x**2 + y**2 + z**2)
    if length == 0:
        raise ConversionError("beam direction is the zero vector")
    theta = math.degrees(math.acos(z / length))
    phi = math.degrees(math.atan2(y, x))
    return theta, phi + 360.0 if phi < 0.0 else phi


def _sigma(sigma: Mapping[str, Any]) -> tuple[Any, Any]:
    """BEAMSIGMA: positive for Gaussian, negative for flat; x > 0 with y < 0 makes a disc."""
    kind, x, y = sigma.get("type", "Gaussian"), sigma.get("x") or 0, sigma.get("y") or 0
    if kind == "Gaussian":
        return abs(x), abs(y)
    if kind == "Flat square":
        return -abs(x), -abs(y)
    if kind == "Flat circular":
        return 1.0, -abs(y)
    raise ConversionError(f"beam sigma type {kind!r} is not supported")


def _sad(sad: Mapping[str, Any] | None) -> str:
    if sad is None or sad["type"] == "none":
        return "! no BEAMSAD value"
    if sad["type"] == "single":
        return f"BEAMSAD      {sad['x']}      ! source-to-axis distance [cm]"
    if sad["type"] == "double":
        return f"BEAMSAD      {sad['x']} {sad['y']}      ! source-to-axis distances [cm]"
    raise ConversionError(f"beam SAD type {sad['type']!r} is not supported")


def _divergence(divergence: Mapping[str, Any] | None) -> list[str]:
    if not divergence or not any(divergence.get(key) for key in ("x", "y", "distanceToFocal")):
        return []
    values = (divergence.get("x", 0), divergence.get("y", 0), divergence.get("distanceToFocal", 0))
    return [
        "BEAMDIV      {} {} {}      ! divergence [mrad] and focal distance [cm]".format(*values)
    ]


# --- detect.dat ----------------------------------------------------------------------------


def _detect_dat(project: Mapping[str, Any], geometry: _Geometry, media: _Media) -> str:
    detectors = {d["uuid"]: d for d in project["detectorManager"]["detectors"]}
    scoring = project["scoringManager"]
    filters = {f["uuid"]: f for f in scoring.get("filters") or []}
    geometries = [_scoring_geometry(d, geometry) for d in detectors.values()]
    filter_blocks = [_filter_block(f) for f in filters.values()]
    settings: list[str] = []
    outputs = [_output_block(o, detectors, filters, media, settings) for o in scoring["outputs"]]
    return "\n\n".join([*geometries, *filter_blocks, *settings, *outputs]) + "\n"


def _scoring_geometry(detector: Mapping[str, Any], geometry: _Geometry) -> str:
    data, name = detector["geometryData"], _token(detector["name"], "detector")
    kind, params = data["geometryType"], data.get("parameters", {})
    what = f"detector {name!r}"
    if kind in ("Cyl", "Mesh") and any(data.get("rotation") or (0, 0, 0)):
        raise ConversionError(f"{what}: rotated {kind} detectors are not supported")
    x, y, z = data.get("position") or (0, 0, 0)
    if kind == "Cyl":
        if x or y:
            raise ConversionError(f"{what}: a Cyl detector must lie on the z axis")
        rows = [
            _bins(
                "R",
                params.get("innerRadius") or 0,
                params["radius"],
                params["radialSegments"],
                what,
            ),
            _bins("Z", z - params["depth"] / 2, z + params["depth"] / 2, params["zSegments"], what),
        ]
    elif kind == "Mesh":
        rows = [
            _bins(axis, centre - params[extent] / 2, centre + params[extent] / 2, params[n], what)
            for axis, centre, extent, n in (
                ("X", x, "width", "xSegments"),
                ("Y", y, "height", "ySegments"),
                ("Z", z, "depth", "zSegments"),
            )
        ]
    elif kind == "Zone":
        if params.get("zoneUuid") not in geometry.zone_numbers:
            raise ConversionError(f"{what} scores in a zone that is not in the project")
        first, last = geometry.zone_numbers[params["zoneUuid"]]
        rows = [f"Zone {first} {last if last != first else ''}".rstrip(), "Volume 1.000000"]
    elif kind == "All":
        rows = []
    else:
        raise ConversionError(f"{what}: detector type {kind!r} is not supported")
    return "\n".join([f"Geometry {kind}", f"    Name {name}", *(f"    {row}" for row in rows)])


def _bins(axis: str, low: float, high: float, bins: Any, what: str) -> str:
    return f"{axis} {low:g} {high:g} {_count(bins, f'{what} {axis} bins')}"


def _filter_block(scoring_filter: Mapping[str, Any]) -> str:
    name = _token(scoring_filter.get("name"), "filter")
    if scoring_filter.get("rules") is not None:
        rules = [_rule(rule, name) for rule in scoring_filter["rules"]]
    elif scoring_filter.get("particle") is not None:
        rules = _particle_rules(scoring_filter["particle"], name)
    else:
        raise ConversionError(f"filter {name!r} has neither rules nor a particle")
    return "\n".join(["Filter", f"    Name {name}", *(f"    {rule}" for rule in rules)])


def _rule(rule: Mapping[str, Any], name: str) -> str:
    keyword, operator = rule["keyword"], rule["operator"]
    if keyword not in FILTER_KEYWORDS:
        raise ConversionError(f"filter {name!r}: rule keyword {keyword!r} is not supported")
    if operator not in OPERATORS:
        raise ConversionError(f"filter {name!r}: operator {operator!r} is not supported")
    return f"{keyword} {OPERATORS[operator]} {rule['value']}"


def _particle_rules(particle: Mapping[str, Any], name: str) -> list[str]:
    """A particle filter as detect.dat rules: nuclei by Z and A, mesons and muons by ID."""
    jpart = particle["id"]
    if jpart in NUCLEI:
        mass, charge = NUCLEI[jpart]
    elif jpart == HEAVY_ION and "a" in particle and "z" in particle:
        mass, charge = _count(particle["a"], "A"), _count(particle["z"], "Z")
    elif jpart in FILTERABLE_BY_ID:
        return [f"ID == {jpart}"]
    else:
        label = particle.get("name", "?")
        raise ConversionError(f"filter {name!r}: particle {label!r} (id {jpart}) is not supported")
    return [f"Z == {charge}", f"A == {mass}"]


def _output_block(
    output: Mapping[str, Any],
    detectors: Mapping[str, Mapping[str, Any]],
    filters: Mapping[str, Mapping[str, Any]],
    media: _Media,
    settings: list[str],
) -> str:
    name = _token(output.get("name"), "output")
    if output.get("trace"):
        raise ConversionError(f"output {name!r}: trace outputs are not supported")
    if output.get("detectorUuid") not in detectors:
        raise ConversionError(f"output {name!r} has no detector in the project")
    lines = ["Output", f"    Filename {name}.bdo"]
    lines.append(f"    Geo {detectors[output['detectorUuid']]['name']}")
    for quantity in output.get("quantities") or []:
        lines.extend(_quantity_lines(quantity, name, filters, media, settings))
    return "\n".join(lines)


def _quantity_lines(
    quantity: Mapping[str, Any],
    output: str,
    filters: Mapping[str, Mapping[str, Any]],
    media: _Media,
    settings: list[str],
) -> list[str]:
    keyword, what = quantity["keyword"], f"output {output!r}"
    if keyword not in QUANTITIES:
        raise ConversionError(f"{what}: quantity {keyword!r} is not supported by SHIELD-HIT12A")
    filter_name = ""
    if quantity.get("filter"):
        if quantity["filter"] not in filters:
            name = quantity.get("name")
            raise ConversionError(f"{what}: quantity {name!r} uses an unknown filter")
        filter_name = filters[quantity["filter"]]["name"]
    media.add_override(quantity)
    settings_name = _settings(quantity, media, settings)
    lines = [f"    Quantity {keyword} {filter_name} {settings_name}".rstrip()]
    modifiers = quantity.get("modifiers") or []
    if len(modifiers) > MAX_DIFFERENTIALS:
        raise ConversionError(f"{what}: more than {MAX_DIFFERENTIALS} differential modifiers")
    for index, modifier in enumerate(modifiers, start=1):
        kind = modifier["diffType"]
        if kind not in DIFFERENTIALS:
            raise ConversionError(f"{what}: differential modifier {kind!r} is not supported")
        bins = _count(modifier["binsNumber"], f"{what} modifier bins")
        scale = " log" if modifier.get("isLog") else ""
        lines.append(
            f"    Diff{index} {modifier['lowerLimit']} {modifier['upperLimit']} {bins}{scale}"
        )
        lines.append(f"    Diff{index}Type {kind}")
    return lines


def _settings(quantity: Mapping[str, Any], media: _Media, blocks: list[str]) -> str:
    """A Settings block for a quantity with a medium, rescaling or per-primary normalisation."""
    keys = ("rescale", "offset", "primaries", "materialUuid", "medium")
    if not any(key in quantity for key in keys):
        return ""
    name = _settings_name(quantity, media)
    lines = ["Settings", f"    Name {name}"]
    for key, label in zip(
        keys, ("Rescale", "Offset", "Primaries", "Medium", "NKMedium"), strict=True
    ):
        if quantity.get(key) is not None:
            value = media.number(quantity[key]) if key == "materialUuid" else quantity[key]
            lines.append(f"    {label} {value}")
    blocks.append("\n".join(lines))
    return name


def _settings_name(quantity: Mapping[str, Any], media: _Media) -> str:
    """A generic name ("Quantity_3") spells out the settings; others lose non-word characters."""
    name = str(quantity["name"])
    if not re.fullmatch(r"Quantity(_\d*)?", name):
        return re.sub(r"\W+", "", name)
    prefix = "Absolute" if "primaries" in quantity else "Rescaled" if "rescale" in quantity else ""
    suffix = ""
    if "medium" in quantity:
        suffix = f"to_{quantity['medium']}"
    elif "materialUuid" in quantity:
        suffix = f"to_{media.sanitized_name(quantity['materialUuid'])}"
    return "_".join(part for part in (prefix, quantity["keyword"], name, suffix) if part)
