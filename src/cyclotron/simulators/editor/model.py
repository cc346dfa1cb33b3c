"""Reading a YAPTIDE editor project into the dataclasses of ``project``.

``parse_project`` reads the editor's ``input_json`` (spec/engines.md, "The editor project"):
figures, zones (a union of terms, each term figures combined left to right starting from
nothing, as the editor's CSG does), the world zone, materials, the beam, detectors, filters and
outputs. A project made in the editor's Geant4 mode (a tree of figures, each with its own
material, a child placed in its parent's frame) becomes the same model: the first figure is the
world, every figure inside it a zone holding the figure minus its children. A beam energy given
per nucleon becomes the particle's total; the beam's shape, SAD and spot list are read as
beams.py says.

This module is the editor side's front door: it re-exports the dataclasses and
``check_supported`` (module ``support``), with which an engine refuses a project at submission.

Errors (both are ``ConversionError``, so a caller needs one ``except``)::

    ConversionError          a malformed project (a missing key, a figure no zone can find)
    └── UnsupportedFeature   something the model or an engine cannot run; names the item
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.materials import zone_material
from cyclotron.simulators.converters.outline import read_checked
from cyclotron.simulators.converters.values import count, number, vector
from cyclotron.simulators.editor.beams import beam_spec
from cyclotron.simulators.editor.project import (
    AllDetector,
    BeamSettings,
    BoxFigure,
    CylDetector,
    CylinderFigure,
    Detector,
    EditorProject,
    Figure,
    Filter,
    FilterRule,
    Material,
    MeshDetector,
    Modifier,
    Operation,
    Output,
    Particle,
    Physics,
    Quantity,
    SphereFigure,
    UnsupportedFeature,
    Vector,
    WorldZone,
    Zone,
    ZoneDetector,
    euler_angles,
    rotation_matrix,
)
from cyclotron.simulators.editor.records import BeamSpec
from cyclotron.simulators.editor.support import DIFFERENTIALS, FILTER_KEYWORDS, check_supported

# The dataclasses are ``project``'s; these are the names engines take from here.
__all__ = [
    "DIFFERENTIALS",
    "FILTER_KEYWORDS",
    "EditorProject",
    "UnsupportedFeature",
    "check_supported",
    "parse_project",
]

OPERATORS = {
    "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "==",
    "equal": "==", "not_equal": "!=", "less_than": "<", "less_than_or_equal": "<=",
    "greater_than": ">", "greater_than_or_equal": ">=",
}  # fmt: skip
# Particle ids -> (Z, A) of the nuclei; the editor's Geant4 mode numbers particles its own way.
COMMON_NUCLEI = {1: (0, 1), 2: (1, 1), 21: (1, 2), 22: (1, 3), 23: (2, 3), 24: (2, 4)}
GEANT4_NUCLEI = {1: (0, 1), 2: (1, 1), 6: (2, 4), 11: (6, 12)}
HEAVY_ION = 25
MODES = {"union", "subtraction", "intersection", "left-subtraction", "right-subtraction"}
# Quantity keys that rescale or re-normalise a result, or score in another medium, with the
# value that changes nothing.
SETTINGS: dict[str, Any] = {
    "rescale": 1, "offset": 0, "primaries": None, "materialUuid": None, "medium": None,
    "customMaterial": None,
}  # fmt: skip
MANAGER_KEYS = {"uuid", "name", "type", "metadata"}
ENERGY_UNITS = {"eV": 1e-6, "keV": 1e-3, "MeV": 1.0, "GeV": 1e3}


def parse_project(project: Mapping[str, Any]) -> EditorProject:
    """The editor project (``input_json``) as an ``EditorProject``; ConversionError if malformed."""
    return read_checked(_parse, project)


def _parse(project: Mapping[str, Any]) -> EditorProject:
    meta = project.get("project") or {}
    figures_json = project["figureManager"]["figures"]
    geant4 = _geant4_mode(meta, figures_json)
    # A Geant4-mode figure carries its own material: the list may be absent there.
    listed_materials = (project.get("materialManager") or {}).get("materials") or []
    if not geant4:
        listed_materials = project["materialManager"]["materials"]
    materials = tuple(_material(m) for m in listed_materials)
    if geant4:
        figures, zones, world = _figure_tree(figures_json)
    else:
        figures = tuple(_figure(f) for f in figures_json)
        listed = project["materialManager"]["materials"]
        by_uuid = {str(m.get("uuid", "")): m for m in listed}
        known = {f.uuid for f in figures}
        zones = tuple(_zone(z, by_uuid, known) for z in project["zoneManager"]["zones"])
        world = _world(project["zoneManager"].get("worldZone"), by_uuid)
    detectors = tuple(_detector(d) for d in project["detectorManager"]["detectors"])
    scoring = project["scoringManager"]
    filters = tuple(_filter(f, geant4) for f in scoring.get("filters") or [])
    outputs = tuple(_output(o, detectors, filters) for o in scoring["outputs"])
    zone_uuids = {z.uuid for z in zones} | {world.uuid}
    for detector in detectors:
        if isinstance(detector, ZoneDetector) and detector.zone not in zone_uuids:
            raise ConversionError(f"detector {detector.name!r} scores in a zone not in the project")
    special = project.get("specialComponentsManager") or {}
    settings = _beam(project["beam"], geant4)
    return EditorProject(
        title=str(meta.get("title") or ""),
        simulator=str(meta.get("simulator") or "common"),
        figures=figures,
        zones=zones,
        world=world,
        materials=materials,
        beam=_beam_spec(settings),
        beam_settings=settings,
        detectors=detectors,
        filters=filters,
        outputs=outputs,
        physics=_physics(project.get("physic") or {}),
        special_components=tuple(k for k, v in special.items() if k not in MANAGER_KEYS and v),
    )


def _geant4_mode(meta: Mapping[str, Any], figures: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the project is the editor's Geant4 mode (a tree of figures): the simulator it
    names decides, else its figures' types, as the Geant4 converter reads it."""
    simulator = str(meta.get("simulator") or "")
    if simulator:
        return simulator.lower() == "geant4"
    return any(str(f.get("type", "")).startswith("Geant4") for f in figures)


def _figure(item: Mapping[str, Any], parent: Figure | None = None) -> Figure:
    """A figure in world coordinates (a Geant4-mode child is placed in its parent's frame)."""
    what = f"figure {item.get('name')!r}"
    data = item["geometryData"]
    kind, params = data["geometryType"], data.get("parameters") or {}
    position = vector(data.get("position", (0, 0, 0)), f"{what} position")
    rotation = vector(data.get("rotation", (0, 0, 0)), f"{what} rotation")
    if parent is not None:
        position, rotation = _placed_in(parent, position, rotation)
    base = (str(item["uuid"]), str(item.get("name", "")), position, rotation)

    def size(key: str) -> float:
        value = number(params.get(key), f"{what} {key}")
        if value < 0:
            raise ConversionError(f"{what} {key} must not be negative, not {value}")
        return value

    if kind == "BoxGeometry":
        return BoxFigure(*base, size("width"), size("height"), size("depth"))
    if kind in ("CylinderGeometry", "HollowCylinderGeometry"):
        inner_radius = size("innerRadius") if "innerRadius" in params else 0.0
        return CylinderFigure(*base, size("radius"), size("depth"), inner_radius)
    if kind == "SphereGeometry":
        return SphereFigure(*base, size("radius"))
    raise UnsupportedFeature(f"{what}: geometry type {kind!r} is not supported")


def _placed_in(parent: Figure, position: Vector, rotation: Vector) -> tuple[Vector, Vector]:
    """World position and rotation of something placed in ``parent``'s frame."""
    outer = np.array(rotation_matrix(parent.rotation))
    x, y, z = np.asarray(parent.position) + outer @ np.asarray(position)
    matrix = outer @ np.array(rotation_matrix(rotation))
    return (float(x), float(y), float(z)), euler_angles(matrix.tolist())


def _material(item: Mapping[str, Any], uuid: str | None = None) -> Material:
    name = str(item.get("name", ""))
    icru = item["icru"]
    if isinstance(icru, bool) or not isinstance(icru, int):
        raise ConversionError(f"material {name!r}: ICRU id must be an integer, not {icru!r}")
    density = number(item.get("density", 1.0), f"material {name!r} density")
    return Material(uuid or str(item.get("uuid", "")), name, icru, density)


def _zone_material(
    zone: Mapping[str, Any], materials: Mapping[str, Mapping[str, Any]], what: str
) -> Material:
    """The zone's material at the density the engines use: the library's unless the project
    overrides it (converters/materials.py), its ``customMaterial`` included."""
    found = zone_material(zone, materials, what)
    return Material(found.uuid, found.name, found.icru, found.density)


def _zone(
    item: Mapping[str, Any], materials: Mapping[str, Mapping[str, Any]], known: set[str]
) -> Zone:
    what = f"zone {item.get('name')!r}"
    if item.get("type", "BooleanZone") != "BooleanZone":
        raise UnsupportedFeature(f"{what}: zone type {item.get('type')!r}")
    terms: list[tuple[Operation, ...]] = []
    for row in item.get("unionOperations") or []:
        term = []
        for step in row:
            if step.get("mode") not in MODES:
                raise UnsupportedFeature(f"{what}: boolean operation {step.get('mode')!r}")
            if step.get("objectUuid") not in known:
                raise ConversionError(f"{what} uses a figure that is not in the project")
            term.append(Operation(str(step["mode"]), str(step["objectUuid"])))
        terms.append(tuple(term))
    if not any(terms):
        raise ConversionError(f"{what} uses no figure")
    overrides = item.get("materialPropertiesOverrides") or {}
    return Zone(
        str(item["uuid"]),
        str(item.get("name", "")),
        tuple(terms),
        _zone_material(item, materials, what),
        bool(overrides.get("customStoppingPower")),
    )


def _world(item: Mapping[str, Any] | None, materials: Mapping[str, Mapping[str, Any]]) -> WorldZone:
    if not isinstance(item, Mapping):
        raise ConversionError("the project has no world zone")
    # A world cylinder's inner radius is an editor artefact (ex1 has inner = outer radius).
    figure = _figure({**item, "geometryData": _solid_cylinder(item["geometryData"])})
    material = _zone_material(item, materials, "world zone")
    return WorldZone(str(item["uuid"]), str(item.get("name", "World Zone")), figure, material)


def _solid_cylinder(data: Mapping[str, Any]) -> Mapping[str, Any]:
    params = {k: v for k, v in (data.get("parameters") or {}).items() if k != "innerRadius"}
    return {**data, "parameters": params}


def _figure_tree(
    items: Sequence[Mapping[str, Any]],
) -> tuple[tuple[Figure, ...], tuple[Zone, ...], WorldZone]:
    """Geant4 mode: the first figure is the world; each figure inside it is a zone, minus its
    children (which Geant4 places inside it)."""
    if len(items) != 1:
        raise UnsupportedFeature("Geant4-mode figures outside the world figure")
    top = items[0]
    world = _figure({**top, "geometryData": _solid_cylinder(top["geometryData"])})
    figures: list[Figure] = []
    zones: list[Zone] = []
    pending = [(child, world) for child in top.get("children") or []]
    while pending:
        item, parent = pending.pop(0)
        figure = _figure(item, parent)
        children = item.get("children") or []
        holes = [Operation("subtraction", str(child["uuid"])) for child in children]
        material = _material(item["simulationMaterial"], f"{figure.uuid}/material")
        terms = ((Operation("union", figure.uuid), *holes),)
        figures.append(figure)
        zones.append(Zone(figure.uuid, figure.name, terms, material))
        pending.extend((child, figure) for child in children)
    material = _material(top["simulationMaterial"], f"{world.uuid}/material")
    return tuple(figures), tuple(zones), WorldZone(world.uuid, world.name, world, material)


def _beam(item: Mapping[str, Any], geant4: bool) -> BeamSettings:
    particle = _particle(item["particle"], geant4)
    unit = item.get("energyUnit") or ("MeV" if geant4 else "MeV/nucl")
    if unit not in ("MeV", "MeV/nucl"):
        raise UnsupportedFeature(f"beam energy unit {unit!r}")
    scale = particle.nucleus[1] if unit == "MeV/nucl" and particle.nucleus else 1
    direction = vector(item.get("direction", (0, 0, 1)), "beam direction")
    length = math.sqrt(sum(c * c for c in direction))
    if length == 0:
        raise ConversionError("beam direction is the zero vector")
    sigma, sad = item.get("sigma") or {}, item.get("sad") or {}
    divergence = item.get("divergence") or {}
    return BeamSettings(
        particle=particle,
        energy=number(item["energy"], "beam energy") * scale,
        energy_sigma=number(item.get("energySpread", 0), "beam energySpread") * scale,
        position=vector(item.get("position", (0, 0, 0)), "beam position"),
        direction=(direction[0] / length, direction[1] / length, direction[2] / length),
        shape=str(sigma.get("type", "Gaussian")),
        sigma_x=abs(number(sigma.get("x", 0), "beam sigma x")),
        sigma_y=abs(number(sigma.get("y", 0), "beam sigma y")),
        sad=str(sad.get("type", "none")),
        sad_x=number(sad.get("x", 0), "beam SAD x"),
        sad_y=number(sad.get("y", 0), "beam SAD y"),
        divergence_x=number(divergence.get("x", 0), "beam divergence x"),
        divergence_y=number(divergence.get("y", 0), "beam divergence y"),
        focal_distance=number(divergence.get("distanceToFocal", 0), "beam focal distance"),
        source_type=str(item.get("sourceType", "simple")),
        source_file=str((item.get("sourceFile") or {}).get("value") or ""),
        primaries=count(item["numberOfParticles"], "beam numberOfParticles"),
    )


def _particle(item: Mapping[str, Any], geant4: bool) -> Particle:
    ident = item["id"]
    if isinstance(ident, bool) or not isinstance(ident, int):
        raise ConversionError(f"particle id must be an integer, not {ident!r}")
    name = str(item.get("name", ident))
    nucleus = (GEANT4_NUCLEI if geant4 else COMMON_NUCLEI).get(ident)
    if ident == HEAVY_ION and not geant4:
        nucleus = (count(item.get("z"), "ion Z"), count(item.get("a"), "ion A"))
    return Particle(ident, name, nucleus)


def _physics(item: Mapping[str, Any]) -> Physics:
    return Physics(
        nuclear_reactions=bool(item.get("enableNuclearReactions", True)),
        energy_loss=number(item.get("energyLoss", 0.03), "physics energyLoss"),
        straggling=str(item.get("energyModelStraggling", "Vavilov")),
        scattering=str(item.get("multipleScattering", "Moliere")),
    )


def _detector(item: Mapping[str, Any]) -> Detector:
    what = f"detector {item.get('name')!r}"
    data = item["geometryData"]
    kind, params = data["geometryType"], data.get("parameters") or {}
    base = (
        str(item["uuid"]),
        str(item.get("name", "")),
        vector(data.get("position", (0, 0, 0)), f"{what} position"),
        vector(data.get("rotation", (0, 0, 0)), f"{what} rotation"),
    )

    def size(key: str, default: float | None = None) -> float:
        value = number(params.get(key, default), f"{what} {key}")
        if value < 0 or (value == 0 and default is None):
            raise ConversionError(f"{what} {key} must be positive, not {value}")
        return value

    def bins(key: str) -> int:
        return count(params.get(key, 1), f"{what} {key}")

    if kind == "Cyl":
        radius, inner = size("radius"), size("innerRadius", 0.0)
        if inner >= radius:
            raise ConversionError(f"{what}: inner radius {inner} is not below radius {radius}")
        segments = bins("radialSegments"), bins("angularSegments"), bins("zSegments")
        return CylDetector(*base, radius, inner, size("depth"), *segments)
    if kind == "Mesh":
        extents = size("width"), size("height"), size("depth")
        return MeshDetector(
            *base, *extents, bins("xSegments"), bins("ySegments"), bins("zSegments")
        )
    if kind == "Zone":
        return ZoneDetector(*base, str(params.get("zoneUuid")))
    if kind == "All":
        return AllDetector(*base)
    raise UnsupportedFeature(f"{what}: detector kind {kind!r}")


def _filter(item: Mapping[str, Any], geant4: bool) -> Filter:
    uuid, name = str(item["uuid"]), str(item.get("name", ""))
    if "filterType" in item:
        return _geant4_filter(item, uuid, name, geant4)
    if isinstance(item.get("particle"), Mapping):
        return _particle_filter(uuid, name, [item["particle"]], geant4)
    rules, unsupported = [], ""
    for rule in item.get("rules") or []:
        operator = OPERATORS.get(rule.get("operator"))
        if operator is None:
            unsupported = unsupported or f"operator {rule.get('operator')!r}"
            continue
        value = number(rule.get("value"), f"filter {name!r} rule value")
        rules.append(FilterRule(str(rule.get("keyword")), operator, value))
    return Filter(uuid, name, tuple(rules), unsupported)


def _particle_filter(
    uuid: str, name: str, particles: Sequence[Mapping[str, Any]], geant4: bool
) -> Filter:
    if len(particles) != 1:
        return Filter(uuid, name, (), f"a choice of {len(particles)} particles")
    particle = _particle(particles[0], geant4)
    if particle.nucleus is None:
        return Filter(uuid, name, (), f"particle {particle.label}")
    z, a = particle.nucleus
    return Filter(uuid, name, (FilterRule("Z", "==", float(z)), FilterRule("A", "==", float(a))))


def _geant4_filter(item: Mapping[str, Any], uuid: str, name: str, geant4: bool) -> Filter:
    """The editor's Geant4-style filters: particle, kinetic energy, both, charged, neutral."""
    kind, data = item["filterType"], item.get("data") or {}
    if kind == "charged":
        return Filter(uuid, name, (FilterRule("Z", "!=", 0.0),))
    if kind == "neutral":
        return Filter(uuid, name, (FilterRule("Z", "==", 0.0),))
    if kind not in ("particle", "kineticEnergy", "particleWithKineticEnergy"):
        return Filter(uuid, name, (), f"filter type {kind!r}")
    chosen = Filter(uuid, name, ())
    if kind != "kineticEnergy":
        chosen = _particle_filter(uuid, name, data.get("particleTypes") or [], geant4)
    if kind == "particle":
        return chosen
    unit = ENERGY_UNITS.get(data.get("kineticEnergyUnit", "MeV"))
    if unit is None:
        return Filter(uuid, name, (), f"energy unit {data.get('kineticEnergyUnit')!r}")
    low = number(data.get("kineticEnergyLow"), f"filter {name!r} kineticEnergyLow") * unit
    high = number(data.get("kineticEnergyHigh"), f"filter {name!r} kineticEnergyHigh") * unit
    energy = (FilterRule("E", ">=", low), FilterRule("E", "<=", high))
    return Filter(uuid, name, chosen.rules + energy, chosen.unsupported)


def _output(
    item: Mapping[str, Any], detectors: Sequence[Detector], filters: Sequence[Filter]
) -> Output:
    name = str(item.get("name", ""))
    detector = next((d for d in detectors if d.uuid == item.get("detectorUuid")), None)
    if detector is None:
        raise ConversionError(f"output {name!r} has no detector in the project")
    by_uuid = {f.uuid: f for f in filters}
    quantities = []
    for quantity in item.get("quantities") or []:
        what = f"quantity {quantity.get('name')!r} of output {name!r}"
        chosen = None
        if quantity.get("filter"):
            chosen = by_uuid.get(quantity["filter"])
            if chosen is None:
                raise ConversionError(f"{what} uses a filter that is not in the project")
        modifiers = tuple(_modifier(m, what) for m in quantity.get("modifiers") or [])
        settings = tuple(
            key for key, neutral in SETTINGS.items() if quantity.get(key, neutral) != neutral
        )
        quantities.append(
            Quantity(
                str(quantity.get("uuid", "")),
                str(quantity.get("name", "")),
                str(quantity["keyword"]),
                chosen,
                modifiers,
                settings,
            )
        )
    return Output(
        str(item.get("uuid", "")), name, detector, tuple(quantities), bool(item.get("trace"))
    )


def _modifier(item: Mapping[str, Any], what: str) -> Modifier:
    return Modifier(
        kind=str(item["diffType"]),
        lower=number(item["lowerLimit"], f"{what} modifier lowerLimit"),
        upper=number(item["upperLimit"], f"{what} modifier upperLimit"),
        bins=count(item["binsNumber"], f"{what} modifier binsNumber"),
        log=bool(item.get("isLog")),
    )


def _beam_spec(beam: BeamSettings) -> BeamSpec:
    """The beam as engines take it (see beams.py)."""
    return beam_spec(beam)
