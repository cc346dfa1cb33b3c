"""The TOPAS converter: the parameter file it writes, parsed back and checked against the project.

There is no stored TOPAS output for the editor examples, so every test reads the written file
with a small parser of TOPAS parameter syntax (type prefix, name, typed value with its unit) and
compares what TOPAS would build with what the editor project says. Placements are recomputed the
way TOPAS does it (a component's RotX, RotY, RotZ applied as ``rotateX``, ``rotateY``, ``rotateZ``
to a CLHEP rotation that Geant4 uses as the inverse rotation of the placed solid).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.sampled_geometry import (
    OUTSIDE,
    disagreements,
    editor_materials,
    points_around_figures,
    sample_points,
    topas_materials,
)

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.topas import CONFIG_FILE, topas_files

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "ex1.json").is_file(),
    reason=f"the shared YAPTIDE editor examples are absent ({FIXTURES})",
)

# ---------------------------------------------------------------------------------------------
# A parser of TOPAS parameter files

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
LINE = re.compile(r"^(dv|uv|iv|bv|sv|d|u|i|b|s):(\S+)\s*=\s*(.*?)\s*$")
FORBIDDEN_IN_NAMES = set("=+-*\"'`\t")
CM_PER = {"mm": 0.1, "cm": 1.0, "m": 100.0, "um": 1e-4}
UNITS = {*CM_PER, "deg", "rad", "eV", "keV", "MeV", "GeV", "ns", "g/cm3"}


@dataclass(frozen=True)
class Dimensioned:
    value: float
    unit: str


Value = str | bool | int | float | Dimensioned | list[str]


def parse_value(kind: str, text: str) -> Value:
    if kind == "s":
        match = re.fullmatch(r'"([^"]*)"', text)
        assert match, f"a string must be quoted: {text}"
        return match.group(1)
    if kind == "b":
        match = re.fullmatch(r'"(true|t|1|false|f|0)"', text, re.IGNORECASE)
        assert match, f"a boolean must be a quoted True or False: {text}"
        return match.group(1).lower() in ("true", "t", "1")
    if kind == "i":
        assert re.fullmatch(r"[-+]?\d+", text), f"not an integer: {text}"
        assert abs(int(text)) < 2**31, f"TOPAS integers are 32-bit: {text}"
        return int(text)
    if kind == "u":
        assert re.fullmatch(NUMBER, text), f"not a number: {text}"
        return float(text)
    if kind == "d":
        match = re.fullmatch(rf"({NUMBER}) (\S+)", text)
        assert match, f"a dimensioned double needs a number and a unit: {text}"
        assert match.group(2) in UNITS, f"unknown unit {match.group(2)}"
        return Dimensioned(float(match.group(1)), match.group(2))
    if kind == "sv":
        match = re.fullmatch(r'(\d+)((?: "[^" ]*")+)', text)
        assert match, f"a string vector is a count then quoted strings without spaces: {text}"
        values = re.findall(r'"([^"]*)"', match.group(2))
        assert int(match.group(1)) == len(values), f"the count does not match: {text}"
        return values
    raise AssertionError(f"the converter never writes {kind} parameters")


def parse(text: str) -> dict[str, Value]:
    """Parameter name (lower case: TOPAS ignores case) -> typed value; asserts the syntax."""
    parameters: dict[str, Value] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"line {number} is not a TOPAS parameter: {line!r}"
        kind, name, value = match.groups()
        assert not FORBIDDEN_IN_NAMES & set(name), f"forbidden character in name: {name}"
        assert "#" not in value and "'" not in value and "`" not in value, line
        assert name.lower() not in parameters, f"{name} is defined twice"
        parameters[name.lower()] = parse_value(kind, value)
    return parameters


def convert(project: dict[str, Any]) -> dict[str, Value]:
    files = topas_files(project)
    assert list(files) == [CONFIG_FILE]
    return parse(files[CONFIG_FILE])


def cm(parameters: dict[str, Value], name: str) -> float:
    value = parameters[name.lower()]
    assert isinstance(value, Dimensioned) and value.unit in CM_PER, f"{name}: {value}"
    return value.value * CM_PER[value.unit]


def degrees(parameters: dict[str, Value], name: str) -> float:
    value = parameters.get(name.lower(), Dimensioned(0.0, "deg"))
    assert isinstance(value, Dimensioned) and value.unit in ("deg", "rad"), f"{name}: {value}"
    return value.value if value.unit == "deg" else math.degrees(value.value)


def rx(a: float) -> np.ndarray:
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(a: float) -> np.ndarray:
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(a: float) -> np.ndarray:
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def editor_rotation(angles: list[float]) -> np.ndarray:
    """three.js Euler angles, order XYZ: the object matrix is Rx·Ry·Rz."""
    return np.asarray(rx(angles[0]) @ ry(angles[1]) @ rz(angles[2]))


def placement(parameters: dict[str, Value], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Where TOPAS puts a component: its rotation (local axes as columns) and centre, in cm."""
    if name.lower() == "world":
        return np.eye(3), np.zeros(3)
    parent = parameters[f"ge/{name}/parent".lower()]
    assert isinstance(parent, str)
    parent_rotation, parent_centre = placement(parameters, parent)
    angle = [degrees(parameters, f"Ge/{name}/Rot{axis}") for axis in "XYZ"]
    clhep = rz(angle[2]) @ ry(angle[1]) @ rx(angle[0])  # rotateX, then rotateY, then rotateZ
    local = np.array([cm(parameters, f"Ge/{name}/Trans{axis}") for axis in "XYZ"])
    return parent_rotation @ clhep.T, parent_rotation @ local + parent_centre


def topas_name(editor_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", editor_name).strip("_")


# ---------------------------------------------------------------------------------------------
# What the editor project says, read independently of the converter

NIST = {276: "G4_WATER", 104: "G4_AIR", 82: "G4_Pb", 1000: "G4_Galactic", 0: "G4_Galactic"}
TOPAS_SHAPE = {"BoxFigure": "TsBox", "CylinderFigure": "TsCylinder", "SphereFigure": "TsSphere"}
QUANTITY = {"Dose": "DoseToMedium", "Fluence": "Fluence", "dLET": "ProtonLET", "tLET": "ProtonLET"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())["input"]["inputJson"]
    return data


def without_avg_energy(project: dict[str, Any]) -> dict[str, Any]:
    """ex1 minus its AvgEnergy quantities, which TOPAS has no scorer for."""
    stripped = copy.deepcopy(project)
    for output in stripped["scoringManager"]["outputs"]:
        output["quantities"] = [q for q in output["quantities"] if q["keyword"] != "AvgEnergy"]
    return stripped


def without_sad(project: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(project)
    changed["beam"]["sad"] = {"type": "none", "x": 0, "y": 0}
    return changed


def material_icru(project: dict[str, Any], uuid: str) -> int:
    materials = project["materialManager"]["materials"]
    return int(next(m["icru"] for m in materials if m["uuid"] == uuid))


def zone_figures(zone: dict[str, Any]) -> tuple[str, list[str]]:
    (operations,) = zone["unionOperations"]
    assert operations[0]["mode"] == "union"
    return operations[0]["objectUuid"], [op["objectUuid"] for op in operations[1:]]


def expected_filter(project: dict[str, Any], uuid: str | None) -> tuple[list[str], str | None]:
    if uuid is None:
        return [], None
    (chosen,) = [f for f in project["scoringManager"]["filters"] if f["uuid"] == uuid]
    if "particle" in chosen:
        return ({2: ["proton"]}[chosen["particle"]["id"]], None)
    rules = {r["keyword"]: (r["operator"], r["value"]) for r in chosen["rules"]}
    particle = ["proton"] if rules.get("Z") == ("==", 1) and rules.get("A") == ("==", 1) else []
    generation = {("==", 0): "Primary", (">=", 1): "Secondary", None: None}[rules.get("GEN")]
    return particle, generation


def check_zones(project: dict[str, Any], parameters: dict[str, Value]) -> None:
    """Every zone is its figure's component: shape, size, place, material, children."""
    figures = {f["uuid"]: f for f in project["figureManager"]["figures"]}
    subtracting: dict[str, str] = {}
    for zone in project["zoneManager"]["zones"]:
        primary, subtracted = zone_figures(zone)
        for uuid in subtracted:
            subtracting[uuid] = primary
    for zone in project["zoneManager"]["zones"]:
        primary, subtracted = zone_figures(zone)
        figure = figures[primary]
        name, geometry = topas_name(figure["name"]), figure["geometryData"]
        prefix, size = f"ge/{name}/".lower(), geometry["parameters"]
        assert parameters[prefix + "type"] == TOPAS_SHAPE[figure["type"]]
        if figure["type"] == "BoxFigure":
            for axis, key in zip("XYZ", ("width", "height", "depth"), strict=True):
                assert cm(parameters, f"Ge/{name}/HL{axis}") == pytest.approx(size[key] / 2)
        elif figure["type"] == "CylinderFigure":
            assert cm(parameters, f"Ge/{name}/RMin") == pytest.approx(size["innerRadius"])
            assert cm(parameters, f"Ge/{name}/RMax") == pytest.approx(size["radius"])
            assert cm(parameters, f"Ge/{name}/HL") == pytest.approx(size["depth"] / 2)
        else:
            assert cm(parameters, f"Ge/{name}/RMax") == pytest.approx(size["radius"])
        rotation, centre = placement(parameters, name)
        assert centre == pytest.approx(np.array(geometry["position"]), abs=1e-9)
        expected = editor_rotation(geometry.get("rotation", [0, 0, 0]))
        assert rotation == pytest.approx(expected, abs=1e-9)
        assert parameters[prefix + "material"] == NIST[material_icru(project, zone["materialUuid"])]
        parent = subtracting.get(primary)
        expected_parent = topas_name(figures[parent]["name"]) if parent else "WorldZone"
        assert parameters[prefix + "parent"] == expected_parent
        children = {
            key.split("/")[1]
            for key, value in parameters.items()
            if key.startswith("ge/") and key.endswith("/parent") and value == name
        }
        assert children == {topas_name(figures[uuid]["name"]).lower() for uuid in subtracted}


# ---------------------------------------------------------------------------------------------
# The editor examples


@pytest.fixture
def ex1() -> dict[str, Any]:
    return without_avg_energy(load("ex1.json"))


@needs_fixtures
def test_ex1_as_stored_is_refused_for_its_average_energy_quantities() -> None:
    with pytest.raises(ConversionError, match="KineticEnergyPrimaries.*entrance.*AvgEnergy"):
        topas_files(load("ex1.json"))


@needs_fixtures
@pytest.mark.parametrize("name", ["ex6.json", "ex7.json"])
def test_ex6_and_ex7_are_refused_for_their_source_to_axis_distance(name: str) -> None:
    with pytest.raises(ConversionError, match=r"beam\.sad"):
        topas_files(load(name))


@needs_fixtures
@pytest.mark.parametrize("name", ["ex1.json", "ex6.json", "ex7.json"])
def test_every_line_written_for_the_examples_is_topas_syntax(name: str) -> None:
    project = without_sad(without_avg_energy(load(name)))
    parameters = convert(project)
    assert parameters["ts/seed"] == 1
    assert parameters["ph/default/type"] == "Geant4_Modular"


@needs_fixtures
def test_ex1_zones_are_nested_figure_components(ex1: dict[str, Any]) -> None:
    parameters = convert(ex1)
    check_zones(ex1, parameters)
    assert parameters["ge/water_phantom_cylinder/parent"] == "Vacuum_cylinder"
    assert cm(parameters, "Ge/Water_phantom_cylinder/TransZ") == pytest.approx(-0.5)


@needs_fixtures
def test_ex1_black_hole_world_zone_is_vacuum_inside_a_larger_world(ex1: dict[str, Any]) -> None:
    parameters = convert(ex1)
    world = ex1["zoneManager"]["worldZone"]["geometryData"]
    assert parameters["ge/worldzone/type"] == "TsCylinder"
    assert cm(parameters, "Ge/WorldZone/RMax") == pytest.approx(world["parameters"]["radius"])
    assert cm(parameters, "Ge/WorldZone/HL") == pytest.approx(world["parameters"]["depth"] / 2)
    assert placement(parameters, "WorldZone")[1] == pytest.approx(np.array(world["position"]))
    assert parameters["ge/worldzone/material"] == "G4_Galactic"
    assert parameters["ge/world/type"] == "TsBox"
    assert parameters["ge/world/material"] == "G4_Galactic"
    top = world["position"][2] + world["parameters"]["depth"] / 2
    assert cm(parameters, "Ge/World/HLZ") > top
    assert cm(parameters, "Ge/World/HLX") > world["parameters"]["radius"]


@needs_fixtures
def test_ex1_beam_is_the_projects_beam(ex1: dict[str, Any]) -> None:
    parameters, beam = convert(ex1), ex1["beam"]
    assert parameters["so/beam/type"] == "Beam"
    assert parameters["so/beam/component"] == "BeamPosition"
    assert parameters["so/beam/beamparticle"] == "proton"
    assert parameters["so/beam/beamenergy"] == Dimensioned(beam["energy"], "MeV")
    spread = parameters["so/beam/beamenergyspread"]
    assert spread == pytest.approx(100 * beam["energySpread"] / beam["energy"])
    assert parameters["so/beam/beampositiondistribution"] == "None"  # sigma 0: a pencil beam
    assert parameters["so/beam/beamangulardistribution"] == "None"
    assert parameters["so/beam/numberofhistoriesinrun"] == beam["numberOfParticles"]
    rotation, centre = placement(parameters, "BeamPosition")
    assert centre == pytest.approx(np.array(beam["position"]))
    assert rotation @ [0, 0, 1] == pytest.approx(np.array(beam["direction"]))
    assert "g4h-phy_QGSP_BIC_HP" in parameters["ph/default/modules"]  # type: ignore[operator]


@needs_fixtures
def test_ex1_scorers_bin_like_the_detectors_and_score_the_quantities(ex1: dict[str, Any]) -> None:
    parameters = convert(ex1)
    detectors = {d["uuid"]: d for d in ex1["detectorManager"]["detectors"]}
    scorers = 0
    for output in ex1["scoringManager"]["outputs"]:
        detector = detectors[output["detectorUuid"]]
        name, geometry = detector["name"], detector["geometryData"]
        size = geometry["parameters"]
        assert parameters[f"ge/{name}/isparallel".lower()] is True
        assert placement(parameters, name)[1] == pytest.approx(np.array(geometry["position"]))
        if geometry["geometryType"] == "Cyl":
            assert parameters[f"ge/{name}/type".lower()] == "TsCylinder"
            assert cm(parameters, f"Ge/{name}/RMax") == pytest.approx(size["radius"])
            assert cm(parameters, f"Ge/{name}/HL") == pytest.approx(size["depth"] / 2)
            bins = {"RBins": size["radialSegments"], "PhiBins": 1, "ZBins": size["zSegments"]}
        else:
            assert parameters[f"ge/{name}/type".lower()] == "TsBox"
            for axis, key in zip("XYZ", ("width", "height", "depth"), strict=True):
                assert cm(parameters, f"Ge/{name}/HL{axis}") == pytest.approx(size[key] / 2)
            bins = {f"{a}Bins": size[f"{a.lower()}Segments"] for a in "XYZ"}
        for key, count in bins.items():
            assert parameters[f"ge/{name}/{key}".lower()] == count
        for j, quantity in enumerate(output["quantities"]):
            scorers += 1
            sc = f"sc/{output['name']}__{j}/".lower()
            assert parameters[sc + "quantity"] == QUANTITY[quantity["keyword"]]
            assert parameters[sc + "component"] == name
            assert parameters[sc + "outputtype"] == "csv"
            assert parameters[sc + "outputfile"] == f"{output['name']}__{j}"
            particle, generation = expected_filter(ex1, quantity.get("filter"))
            assert parameters.get(sc + "onlyincludeparticlesnamed", []) == particle
            assert parameters.get(sc + "onlyincludeparticlesofgeneration") == generation
            weight = {"dLET": "Dose", "tLET": "Track"}.get(quantity["keyword"])
            assert parameters.get(sc + "weightby") == weight
            for modifier in quantity["modifiers"]:
                assert parameters[sc + "ebins"] == modifier["binsNumber"]
                assert parameters[sc + "ebinmin"] == Dimensioned(modifier["lowerLimit"], "MeV")
                assert parameters[sc + "ebinmax"] == Dimensioned(modifier["upperLimit"], "MeV")
                assert parameters[sc + "ebinenergy"] == "PreStep"
    assert scorers == sum(len(o["quantities"]) for o in ex1["scoringManager"]["outputs"]) == 15
    assert len([k for k in parameters if k.endswith("/quantity")]) == scorers


@needs_fixtures
def test_ex6_without_sad_nests_the_collimator_in_the_air_box() -> None:
    project = without_sad(load("ex6.json"))
    parameters = convert(project)
    check_zones(project, parameters)
    assert parameters["ge/innercylinder/parent"] == "OuterCylinder"
    assert parameters["ge/outercylinder/material"] == "G4_Pb"
    assert parameters["ge/worldzone/material"] == "G4_AIR"
    assert parameters["so/beam/beampositiondistribution"] == "Flat"
    assert parameters["so/beam/beampositioncutoffshape"] == "Ellipse"
    assert cm(parameters, "So/Beam/BeamPositionCutoffX") == pytest.approx(3)
    assert cm(parameters, "So/Beam/BeamPositionCutoffY") == pytest.approx(3)
    assert parameters["sc/slabyz__0/onlyincludeparticlesnamed"] == ["proton"]


@needs_fixtures
def test_ex7_without_sad_is_an_electron_beam() -> None:
    parameters = convert(without_sad(load("ex7.json")))
    assert parameters["so/beam/beamparticle"] == "e-"
    assert parameters["so/beam/beamenergy"] == Dimensioned(10, "MeV")
    assert parameters["so/beam/numberofhistoriesinrun"] == 1_000_000


# ---------------------------------------------------------------------------------------------
# Small projects built here: rotations, nesting and what is refused

MATERIALS = {
    "water": (276, 1.0),
    "air": (104, 0.00120479),
    "lead": (82, 11.35),
    "vacuum": (1000, 0.0),
    "black hole": (0, 0.0),
}


def figure(
    kind: str,
    name: str,
    size: dict[str, float],
    position: list[float],
    rotation: list[float] | None = None,
) -> dict[str, Any]:
    geometry = {
        "Box": "BoxGeometry",
        "Cylinder": "HollowCylinderGeometry",
        "Sphere": "SphereGeometry",
    }
    return {
        "name": name,
        "uuid": f"fig-{name}",
        "type": f"{kind}Figure",
        "geometryData": {
            "geometryType": geometry[kind],
            "parameters": size,
            "position": position,
            "rotation": rotation or [0, 0, 0],
        },
    }


def zone(name: str, material: str, primary: str, *subtracted: str) -> dict[str, Any]:
    operations = [{"mode": "union", "objectUuid": f"fig-{primary}"}]
    operations += [{"mode": "subtraction", "objectUuid": f"fig-{s}"} for s in subtracted]
    return {
        "name": name,
        "uuid": f"zone-{name}",
        "materialUuid": f"mat-{material}",
        "unionOperations": [operations],
    }


def scene() -> dict[str, Any]:
    """A rotated water box in air holding a tilted lead cylinder and a water sphere."""
    box_rotation = [10.0, 20.0, 30.0]
    box_centre = np.array([1.0, 2.0, 3.0])
    inside = editor_rotation(box_rotation)
    figures = [
        figure(
            "Box",
            "Tank",
            {"width": 20, "height": 20, "depth": 20},
            box_centre.tolist(),
            box_rotation,
        ),
        figure(
            "Cylinder",
            "Rod",
            {"radius": 2, "innerRadius": 0, "depth": 4},
            (box_centre + inside @ [3, 0, 0]).tolist(),
            [40, -25, 15],
        ),
        figure("Sphere", "Ball", {"radius": 1.5}, (box_centre + inside @ [-5, 0, 0]).tolist()),
    ]
    return {
        "figureManager": {"figures": figures},
        "zoneManager": {
            "worldZone": {
                "name": "World Zone",
                "uuid": "world",
                "materialUuid": "mat-air",
                "geometryData": {
                    "geometryType": "BoxGeometry",
                    "parameters": {"width": 60, "height": 60, "depth": 60},
                    "position": [0, 0, 0],
                    "rotation": [0, 0, 0],
                },
            },
            "zones": [
                zone("TankZone", "water", "Tank", "Rod", "Ball"),
                zone("RodZone", "lead", "Rod"),
                zone("BallZone", "water", "Ball"),
            ],
        },
        "materialManager": {
            "materials": [
                {"uuid": f"mat-{name}", "name": name, "icru": icru, "density": density}
                for name, (icru, density) in MATERIALS.items()
            ]
        },
        "beam": {
            "name": "Beam",
            "particle": {"id": 2, "name": "Proton", "a": 1, "z": 1},
            "energy": 100.0,
            "energySpread": 1.0,
            "energyLowCutoff": 0,
            "energyHighCutoff": 1000,
            "position": [0, 0, -25],
            "direction": [0, 0, 1],
            "sigma": {"type": "Gaussian", "x": 0.3, "y": 0.5},
            "sad": {"type": "none", "x": 0, "y": 0},
            "divergence": {"x": 0, "y": 0, "distanceToFocal": 0},
            "numberOfParticles": 5000,
            "sourceType": "simple",
        },
        "physic": {
            "enableNuclearReactions": False,
            "energyModelStraggling": "Vavilov",
            "multipleScattering": "Moliere",
        },
        "detectorManager": {
            "detectors": [
                {
                    "name": "Grid",
                    "uuid": "det-grid",
                    "geometryData": {
                        "geometryType": "Mesh",
                        "parameters": {
                            "width": 4,
                            "height": 6,
                            "depth": 8,
                            "xSegments": 2,
                            "ySegments": 3,
                            "zSegments": 4,
                        },
                        "position": [0, 0, 10],
                        "rotation": [0, 0, 90],
                    },
                },
                {
                    "name": "InBall",
                    "uuid": "det-ball",
                    "geometryData": {
                        "geometryType": "Zone",
                        "parameters": {"zoneUuid": "zone-BallZone"},
                        "position": [0, 0, 0],
                        "rotation": [0, 0, 0],
                    },
                },
            ]
        },
        "scoringManager": {
            "filters": [{"name": "Protons", "uuid": "flt-p", "particle": {"id": 2}}],
            "outputs": [
                {
                    "name": "grid",
                    "detectorUuid": "det-grid",
                    "quantities": [
                        {"name": "Dose", "keyword": "Dose", "modifiers": []},
                        {"name": "LET", "keyword": "dLET", "filter": "flt-p", "modifiers": []},
                        {
                            "name": "Spectrum",
                            "keyword": "Fluence",
                            "modifiers": [
                                {
                                    "diffType": "E",
                                    "binsNumber": 10,
                                    "lowerLimit": 0.1,
                                    "upperLimit": 100,
                                    "isLog": True,
                                }
                            ],
                        },
                    ],
                },
                {
                    "name": "ball",
                    "detectorUuid": "det-ball",
                    "quantities": [{"name": "Energy", "keyword": "Energy", "modifiers": []}],
                },
            ],
        },
        "specialComponentsManager": {"name": "Special Components"},
    }


def test_rotated_nested_figures_sit_where_the_editor_shows_them() -> None:
    project = scene()
    parameters = convert(project)
    check_zones(project, parameters)
    assert parameters["ge/ball/type"] == "TsSphere"
    assert parameters["ge/rod/material"] == "G4_Pb"
    # Read back as TOPAS nests and turns its components, every sampled point holds the
    # material the editor shows there (test_converter_geometry.py).
    points = np.concatenate([sample_points(project, 20000), points_around_figures(project, 5000)])
    reference = editor_materials(project, points)
    read = topas_materials(topas_files(project)[CONFIG_FILE], points)
    assert disagreements(reference, read, reference != OUTSIDE) == []


def test_materials_take_geant4_s_density_unless_the_zone_overrides_it() -> None:
    """Issue 19, items 2 and 3: AIR and lead listed at stale densities are G4_AIR and G4_Pb;
    the editor's customMaterial (a new uuid, no sanitizedName) is read, at a density TOPAS
    has, and refused by its density when TOPAS cannot set it."""
    project = scene()
    for material in project["materialManager"]["materials"]:
        if material["name"] in ("air", "lead"):
            material["density"] = 1.0
    rod = project["zoneManager"]["zones"][1]
    custom = {"uuid": "regenerated", "name": "lead", "icru": 82, "density": 1.0}
    rod.update(materialUuid="regenerated", customMaterial=custom)
    rod["materialPropertiesOverrides"] = {"density": 11.35}
    parameters = convert(project)
    assert parameters["ge/rod/material"] == "G4_Pb"
    assert parameters["ge/worldzone/material"] == "G4_AIR"
    rod["materialPropertiesOverrides"] = {"density": 12.0}
    with pytest.raises(ConversionError, match="density 12.0 g/cm3 but G4_Pb"):
        convert(project)


def test_the_scoring_grid_keeps_its_rotation_and_bins() -> None:
    parameters = convert(scene())
    rotation, centre = placement(parameters, "Grid")
    assert centre == pytest.approx([0, 0, 10])
    assert rotation == pytest.approx(editor_rotation([0, 0, 90]), abs=1e-12)
    assert [parameters[f"ge/grid/{a}bins"] for a in "xyz"] == [2, 3, 4]


def test_a_tilted_beam_leaves_along_the_editor_direction() -> None:
    project = scene()
    project["beam"]["direction"] = [1, -2, 2]
    project["beam"]["sigma"] = {"type": "Gaussian", "x": 0.4, "y": 0.4}
    parameters = convert(project)
    rotation, centre = placement(parameters, "BeamPosition")
    assert centre == pytest.approx([0, 0, -25])
    assert rotation @ [0, 0, 1] == pytest.approx(np.array([1, -2, 2]) / 3)


def test_scene_beam_physics_and_scorers() -> None:
    parameters = convert(scene())
    assert parameters["so/beam/beampositiondistribution"] == "Gaussian"
    assert cm(parameters, "So/Beam/BeamPositionSpreadX") == pytest.approx(0.3)
    assert cm(parameters, "So/Beam/BeamPositionSpreadY") == pytest.approx(0.5)
    assert cm(parameters, "So/Beam/BeamPositionCutoffX") >= 5 * 0.3
    assert parameters["ph/default/modules"] == ["g4em-standard_opt4", "g4decay"]
    assert parameters["sc/grid__1/quantity"] == "ProtonLET"
    assert parameters["sc/grid__1/weightby"] == "Dose"
    assert parameters["sc/grid__1/report"] == ["Sum"]
    assert parameters["sc/grid__2/ebinlog"] is True
    assert parameters["sc/ball__0/quantity"] == "EnergyDeposit"
    assert parameters["sc/ball__0/component"] == "Ball"  # a leaf zone scores in its own component


def test_ion_beams_carry_their_charge_and_total_energy() -> None:
    project = scene()
    project["beam"].update(
        particle={"id": 25, "a": 12, "z": 6}, energyUnit="MeV/nucl", energy=200.0, energySpread=2.0
    )
    parameters = convert(project)
    assert parameters["so/beam/beamparticle"] == "GenericIon(6,12,6)"
    assert parameters["so/beam/beamenergy"] == Dimensioned(2400, "MeV")
    assert parameters["so/beam/beamenergyspread"] == pytest.approx(1.0)


def test_a_flat_square_beam_is_a_rectangle_of_half_widths() -> None:
    project = scene()
    project["beam"]["sigma"] = {"type": "Flat square", "x": 1.0, "y": 2.0}
    parameters = convert(project)
    assert parameters["so/beam/beampositioncutoffshape"] == "Rectangle"
    assert cm(parameters, "So/Beam/BeamPositionCutoffY") == pytest.approx(2.0)


Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    def change(project: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = project
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value

    return change


def _zones(*zones: dict[str, Any]) -> Change:
    return _set("zoneManager.zones", list(zones))


def _all(*changes: Change) -> Change:
    def change(project: dict[str, Any]) -> None:
        for each in changes:
            each(project)

    return change


REFUSED: list[tuple[str, Change, str]] = [
    (
        "intersection",
        _set("zoneManager.zones.0.unionOperations.0.1.mode", "intersection"),
        "TankZone.*intersection",
    ),
    (
        "union of two figures",
        _set(
            "zoneManager.zones.0.unionOperations",
            [
                [{"mode": "union", "objectUuid": "fig-Tank"}],
                [{"mode": "union", "objectUuid": "fig-Ball"}],
            ],
        ),
        "TankZone.*several figures",
    ),
    (
        "child sticking out",
        _set("figureManager.figures.2.geometryData.parameters.radius", 9.0),
        "Ball.*does not lie inside.*Tank",
    ),
    (
        "overlapping neighbours",
        _zones(
            zone("TankZone", "water", "Tank"),
            zone("RodZone", "lead", "Rod"),
            zone("BallZone", "water", "Ball"),
        ),
        "may overlap",
    ),
    (
        "subtracted without a zone",
        _zones(zone("TankZone", "water", "Tank", "Rod", "Ball"), zone("BallZone", "water", "Ball")),
        "Rod.*no zone is made of",
    ),
    ("unknown material", _set("materialManager.materials.0.icru", 9999), "ICRU 9999"),
    (
        "density override",
        _set("zoneManager.zones.0.materialPropertiesOverrides", {"density": 1.2}),
        "density 1.2",
    ),
    (
        "black hole zone",
        _set("zoneManager.zones.1.materialUuid", "mat-black hole"),
        "RodZone.*black hole",
    ),
    (
        "black hole around two figures",
        _all(
            _set("zoneManager.worldZone.materialUuid", "mat-black hole"),
            _zones(zone("RodZone", "lead", "Rod"), zone("BallZone", "water", "Ball")),
        ),
        "World Zone.*one convex",
    ),
    (
        "hollow parent",
        _set(
            "figureManager.figures.0",
            figure("Cylinder", "Tank", {"radius": 9, "innerRadius": 8, "depth": 20}, [0, 0, 0]),
        ),
        "hollow",
    ),
    (
        "average energy",
        _set("scoringManager.outputs.0.quantities.0.keyword", "AvgEnergy"),
        "'Dose' of output 'grid'.*AvgEnergy",
    ),
    (
        "LET of all particles",
        _set("scoringManager.outputs.0.quantities.1.filter", None),
        "LET of protons only",
    ),
    (
        "log bins from zero",
        _set("scoringManager.outputs.0.quantities.2.modifiers.0.lowerLimit", 0),
        "energy binning",
    ),
    (
        "angular spectrum",
        _set("scoringManager.outputs.0.quantities.2.modifiers.0.diffType", "ANGLE"),
        "ANGLE",
    ),
    ("rescaled quantity", _set("scoringManager.outputs.0.quantities.0.rescale", 2.0), "rescale"),
    ("trace", _set("scoringManager.outputs.0.trace", True), "tracing"),
    (
        "All detector",
        _set("detectorManager.detectors.0.geometryData.geometryType", "All"),
        "type 'All'",
    ),
    (
        "zone detector around figures",
        _set("detectorManager.detectors.1.geometryData.parameters.zoneUuid", "zone-TankZone"),
        "InBall.*figures inside it",
    ),
    (
        "detector outside the world zone",
        _set("detectorManager.detectors.0.geometryData.position", [0, 0, 29]),
        "Grid.*outside",
    ),
    (
        "detector named like a figure",
        _set("detectorManager.detectors.0.name", "tank"),
        "same TOPAS name",
    ),
    (
        "filter on Z only",
        _set(
            "scoringManager.filters",
            [
                {
                    "name": "Hydrogen",
                    "uuid": "flt-p",
                    "rules": [{"keyword": "Z", "operator": "==", "value": 1}],
                }
            ],
        ),
        "Hydrogen",
    ),
    (
        "divergence",
        _set("beam.divergence", {"x": 1, "y": 1, "distanceToFocal": 0}),
        r"beam\.divergence",
    ),
    ("source file", _set("beam.sourceType", "file"), "source file"),
    ("beam outside", _set("beam.position", [0, 0, -40]), r"beam\.position"),
    ("ion without energy unit", _set("beam.particle", {"id": 25, "a": 12, "z": 6}), "energyUnit"),
    ("too many primaries", _set("beam.numberOfParticles", 3_000_000_000), "numberOfParticles"),
    ("scattering off", _set("physic.multipleScattering", "no scattering"), "scattering"),
    ("special component", _set("specialComponentsManager.CTCube", {"name": "ct"}), "CTCube"),
]


@pytest.mark.parametrize(
    ("change", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_what_topas_cannot_express_is_refused_by_name(change: Change, message: str) -> None:
    project = scene()
    change(project)
    with pytest.raises(ConversionError, match=message):
        topas_files(project)
