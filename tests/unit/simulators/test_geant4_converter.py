"""The Geant4 converter: ex8 against the real converter's files, the general cases, refusals."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from support.sampled_geometry import (
    OUTSIDE,
    disagreements,
    editor_materials,
    gdml_materials,
    points_around_figures,
    sample_points,
)

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.geant4 import GDML_FILE, MACRO_FILE, geant4_files

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
EX8 = FIXTURES / "yaptide" / "ex8.json"
needs_ex8 = pytest.mark.skipif(
    not EX8.is_file(), reason=f"the shared YAPTIDE example fixtures are absent ({EX8})"
)

Project = dict[str, Any]


def _ex8() -> tuple[Project, dict[str, str]]:
    data = json.loads(EX8.read_text())["input"]
    return data["inputJson"], data["inputFiles"]


def _same_value(expected: str, actual: str) -> bool:
    try:
        return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-12)
    except ValueError:
        return expected == actual


def _xml_differences(expected: ET.Element, actual: ET.Element, path: str = "") -> list[str]:
    """Elements, attributes (numbers numerically) and text, in document order."""
    here = f"{path}/{expected.tag}[{expected.get('name', '')}]"
    if expected.tag != actual.tag:
        return [f"{here}: element {actual.tag} instead"]
    found = []
    if set(expected.attrib) != set(actual.attrib):
        found.append(f"{here}: attributes {sorted(actual.attrib)} not {sorted(expected.attrib)}")
    for key in set(expected.attrib) & set(actual.attrib):
        if not _same_value(expected.attrib[key], actual.attrib[key]):
            found.append(f"{here}@{key}: {actual.attrib[key]!r} not {expected.attrib[key]!r}")
    if (expected.text or "").strip() != (actual.text or "").strip():
        found.append(f"{here}: text {actual.text!r} not {expected.text!r}")
    if len(expected) != len(actual):
        found.append(f"{here}: {len(actual)} children not {len(expected)}")
    for want, got in zip(expected, actual, strict=False):
        found += _xml_differences(want, got, here)
    return found


def _commands(macro: str) -> list[list[str]]:
    """The macro without comments and blank lines, one token list per command."""
    lines = (line.split("#", 1)[0].split() for line in macro.splitlines())
    return [tokens for tokens in lines if tokens]


def _gdml(files: dict[str, str]) -> ET.Element:
    return ET.fromstring(files[GDML_FILE].encode())


def _figure(name: str, kind: str, params: dict[str, float], **extra: Any) -> Project:
    return {
        "name": name,
        "type": "Geant4Figure",
        "uuid": f"uuid-{name}",
        "geometryData": {
            "geometryType": kind,
            "position": list(extra.get("position", (0, 0, 0))),
            "rotation": list(extra.get("rotation", (0, 0, 0))),
            "parameters": params,
        },
        "children": extra.get("children", []),
        "simulationMaterial": extra.get("material", {"icru": 276, "name": "WATER, LIQUID"}),
    }


def _project() -> Project:
    """A small Geant4 project: a vacuum world box holding a water cylinder, one depth-dose mesh."""
    phantom = _figure(
        "Phantom", "HollowCylinderGeometry", {"radius": 5, "innerRadius": 0, "depth": 20}
    )
    world = _figure(
        "World",
        "BoxGeometry",
        {"width": 20, "height": 20, "depth": 40},
        material={"icru": 1000, "name": "VACUUM", "geant4_name": "G4_Galactic"},
        children=[phantom],
    )
    detector = {
        "uuid": "det-1",
        "name": "Depth",
        "geometryData": {
            "geometryType": "Cyl",
            "position": [0, 0, 0],
            "rotation": [0, 0, 0],
            "parameters": {
                "radius": 5,
                "innerRadius": 0,
                "depth": 20,
                "radialSegments": 1,
                "zSegments": 200,
            },
        },
    }
    return {
        "project": {"simulator": "geant4"},
        "figureManager": {"figures": [world]},
        "zoneManager": {"zones": []},
        "detectorManager": {"detectors": [detector]},
        "scoringManager": {
            "outputs": [
                {
                    "name": "Depth",
                    "detectorUuid": "det-1",
                    "quantities": [
                        {"name": "Dose", "keyword": "DoseGy"},
                        {"name": "FluenceProtons", "keyword": "Fluence", "filter": "f-1"},
                    ],
                }
            ],
            "filters": [
                {
                    "uuid": "f-1",
                    "name": "onlyProtons",
                    "filterType": "particle",
                    "data": {"particleTypes": [{"id": 2, "name": "Proton"}]},
                }
            ],
        },
        "beam": {
            "position": [0, 0, -15],
            "direction": [0, 0, 1],
            "energyUnit": "MeV",
            "energy": 100,
            "energySpread": 1,
            "energyLowCutoff": 0,
            "energyHighCutoff": 1000,
            "sigma": {"type": "Gaussian", "x": 0.3, "y": 0.3},
            "sad": {"type": "none", "x": 0, "y": 0},
            "divergence": {"x": 0, "y": 0, "distanceToFocal": 0},
            "particle": {"id": 2, "name": "Proton", "a": 1, "z": 1},
            "numberOfParticles": 5000,
            "sourceType": "simple",
        },
        "physic": {"enableNuclearReactions": True},
        "specialComponentsManager": {"uuid": "x", "name": "Special Components"},
    }


def _zone_project() -> Project:
    """A SHIELD-HIT12A-style project: a water box with a rotated lead rod cut out of it."""
    project = _project()
    project["project"] = {"simulator": "shieldhit"}
    box = _figure(
        "Box", "BoxGeometry", {"width": 10, "height": 10, "depth": 10}, position=(0, 0, 5)
    )
    rod = _figure(
        "Rod",
        "CylinderGeometry",
        {"radius": 1, "depth": 6},
        position=(1, 2, 5),
        rotation=(90, 0, 30),
    )
    project["figureManager"] = {"figures": [box, rod]}
    materials = [
        {"uuid": "m-water", "icru": 276, "name": "WATER, LIQUID"},
        {"uuid": "m-lead", "icru": 82, "name": "LEAD"},
        {"uuid": "m-hole", "icru": 0, "name": "BLACK HOLE"},
    ]
    project["materialManager"] = {"materials": materials}
    water = [
        [
            {"mode": "union", "objectUuid": box["uuid"]},
            {"mode": "subtraction", "objectUuid": rod["uuid"]},
        ]
    ]
    lead = [[{"mode": "union", "objectUuid": rod["uuid"]}]]
    project["zoneManager"] = {
        "zones": [
            {
                "uuid": "z-water",
                "name": "Water",
                "type": "BooleanZone",
                "materialUuid": "m-water",
                "unionOperations": water,
            },
            {
                "uuid": "z-lead",
                "name": "Lead",
                "type": "BooleanZone",
                "materialUuid": "m-lead",
                "unionOperations": lead,
            },
        ],
        "worldZone": {
            "uuid": "z-world",
            "name": "World Zone",
            "materialUuid": "m-hole",
            "geometryData": {
                "geometryType": "BoxGeometry",
                "position": [0, 0, 5],
                "rotation": [0, 0, 0],
                "parameters": {"width": 12, "height": 12, "depth": 12},
            },
        },
    }
    project["scoringManager"]["filters"] = [
        {
            "uuid": "f-1",
            "name": "onlyProtons",
            "rules": [
                {"keyword": "Z", "operator": "==", "value": 1},
                {"keyword": "A", "operator": "==", "value": 1},
            ],
        }
    ]
    return project


def _editor_matrix(degrees: list[float]) -> np.ndarray:
    """The editor's (three.js 'XYZ') rotation, Rx·Ry·Rz."""
    matrix: np.ndarray = _rx(degrees[0]) @ _ry(degrees[1]) @ _rz(degrees[2])
    return matrix


def _gdml_matrix(degrees: list[float]) -> np.ndarray:
    """What G4GDMLRead builds from a rotation element's angles: Rz·Ry·Rx."""
    matrix: np.ndarray = _rz(degrees[2]) @ _ry(degrees[1]) @ _rx(degrees[0])
    return matrix


def _rx(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _angles(element: ET.Element) -> list[float]:
    return [float(element.attrib[axis]) for axis in "xyz"]


# ----------------------------------------------------------------------------- ex8, the reference


@needs_ex8
def test_ex8_geometry_matches_the_reference_converter() -> None:
    project, reference = _ex8()
    produced = geant4_files(project)
    assert _xml_differences(_gdml(reference), _gdml(produced)) == []


@needs_ex8
def test_ex8_macro_matches_the_reference_command_by_command() -> None:
    project, reference = _ex8()
    expected, actual = (
        _commands(reference[MACRO_FILE]),
        _commands(geant4_files(project)[MACRO_FILE]),
    )
    assert [tokens[0] for tokens in actual] == [tokens[0] for tokens in expected]
    for want, got in zip(expected, actual, strict=True):
        assert len(got) == len(want) and all(map(_same_value, want, got)), (want, got)


@needs_ex8
def test_ex8_files_are_reproduced_verbatim() -> None:
    project, reference = _ex8()
    assert geant4_files(project) == reference


# ----------------------------------------------------------------------------- general behaviour


@pytest.mark.parametrize("primaries", [1, 777, 20000, 10**7])
def test_beam_on_is_the_whole_jobs_number_of_particles(primaries: int) -> None:
    project = _project()
    project["beam"]["numberOfParticles"] = primaries
    runs = [c for c in _commands(geant4_files(project)[MACRO_FILE]) if c[0] == "/run/beamOn"]
    assert runs == [["/run/beamOn", str(primaries)]]


def test_child_figures_are_placed_with_position_and_rotation() -> None:
    project = _project()
    world = project["figureManager"]["figures"][0]
    phantom = world["children"][0]
    phantom["geometryData"]["position"] = [1, -2, 3.5]
    phantom["geometryData"]["rotation"] = [30, 45, 60]
    ball = _figure("Ball", "SphereGeometry", {"radius": 0.5}, position=(0, 0, 2))
    phantom["children"] = [ball]
    root = _gdml(geant4_files(project))

    tube = root.find("solids/tube[@name='solidPhantom']")
    sphere = root.find("solids/sphere[@name='solidBall']")
    assert tube is not None and (tube.get("rmax"), tube.get("z")) == ("50", "200")
    assert sphere is not None and sphere.get("rmax") == "5"
    physvol = root.find("structure/volume[@name='logicWorld']/physvol[@name='physPhantom']")
    assert physvol is not None
    position, rotation = physvol.find("position"), physvol.find("rotation")
    assert position is not None and rotation is not None
    assert [float(position.attrib[a]) for a in "xyz"] == [10, -20, 35]
    # Geant4 places a physvol with the inverse of the angles' matrix
    placed = np.linalg.inv(_gdml_matrix(_angles(rotation)))
    np.testing.assert_allclose(placed, _editor_matrix([30, 45, 60]), atol=1e-9)
    nested = root.find("structure/volume[@name='logicPhantom']/physvol/volumeref")
    assert nested is not None and nested.get("ref") == "logicBall"
    _places_what_the_editor_shows(project)


def _places_what_the_editor_shows(project: Project) -> None:
    """Read back as Geant4 reads GDML, every sampled point holds the editor's material."""
    points = np.concatenate([sample_points(project, 20000), points_around_figures(project, 5000)])
    reference = editor_materials(project, points)
    read = gdml_materials(geant4_files(project)[GDML_FILE], points)
    assert disagreements(reference, read, reference != OUTSIDE) == []


def test_zones_become_boolean_solids_in_the_world_zone() -> None:
    root = _gdml(geant4_files(_zone_project()))

    cut = root.find("solids/subtraction")
    assert cut is not None
    refs = [cut.find("first"), cut.find("second")]
    assert [ref.get("ref") for ref in refs if ref is not None] == ["solidBox", "solidRod"]
    # the world zone sits at z = 5 cm, so the zone frame is shifted by -5 cm
    second_at = cut.find("position")
    assert second_at is not None and [float(second_at.attrib[a]) for a in "xyz"] == [10, 20, 0]
    assert cut.find("firstposition") is None
    rotation = cut.find("rotation")
    assert rotation is not None
    np.testing.assert_allclose(
        _gdml_matrix(_angles(rotation)), _editor_matrix([90, 0, 30]), atol=1e-9
    )

    materials = {
        volume.get("name"): ref.get("ref")
        for volume in root.iter("volume")
        for ref in volume.iter("materialref")
    }
    assert materials == {
        "logicWater": "G4_WATER",
        "logicLead": "G4_Pb",
        "logicWorldZone": "BlackHole",
        "logicWorld": "BlackHole",
    }
    shell = root.find("solids/box[@name='solidWorld']")
    assert shell is not None and [shell.get(a) for a in "xyz"] == ["120", "120", "220"]
    rod = root.find("structure/volume[@name='logicWorldZone']/physvol[@name='physLead']/rotation")
    assert rod is not None
    np.testing.assert_allclose(
        np.linalg.inv(_gdml_matrix(_angles(rod))), _editor_matrix([90, 0, 30]), atol=1e-9
    )
    assert root.find("materials/material[@name='BlackHole']") is not None
    macro = geant4_files(_zone_project())[MACRO_FILE]
    assert "/score/filter/particle onlyProtons proton" in macro.splitlines()
    _places_what_the_editor_shows(_zone_project())


@pytest.mark.parametrize(
    ("icru", "nist"),
    [
        (0, "BlackHole"),
        (1, "G4_H"),
        (82, "G4_Pb"),
        (98, "G4_Cf"),
        (99, "G4_A-150_TISSUE"),
        (104, "G4_AIR"),
        (171, "G4_GLASS_PLATE"),
        (173, "G4_GLUTAMINE"),
        (223, "G4_PLEXIGLASS"),
        (276, "G4_WATER"),
        (278, "G4_XYLENE"),
        (1000, "G4_Galactic"),
    ],
)
def test_icru_materials_become_geant4_nist_materials(icru: int, nist: str) -> None:
    project = _project()
    phantom = project["figureManager"]["figures"][0]["children"][0]
    phantom["simulationMaterial"] = {"icru": icru, "name": "from the ICRU list"}
    root = _gdml(geant4_files(project))
    ref = root.find("structure/volume[@name='logicPhantom']/materialref")
    assert ref is not None and ref.get("ref") == nist


def test_a_density_override_defines_a_material_on_the_nist_one() -> None:
    project = _zone_project()
    project["zoneManager"]["zones"][0]["materialPropertiesOverrides"] = {"density": 1.05}
    root = _gdml(geant4_files(project))
    custom = root.find("materials/material[@name='G4_WATER_density_1.05']")
    assert custom is not None
    density, fraction = custom.find("D"), custom.find("fraction")
    assert density is not None and density.get("value") == "1.05"
    assert fraction is not None and fraction.get("ref") == "G4_WATER"


def test_the_editor_s_custom_material_and_stale_listed_densities() -> None:
    """Issue 19, items 2 and 3: the editor's customMaterial (a new uuid, not in the material
    list, no sanitizedName) with its density override; a listed density is never used."""
    project = _zone_project()
    for material in project["materialManager"]["materials"]:
        material["density"] = 1.0  # lead listed at 1.0: still G4_Pb at Geant4's density
    water = project["zoneManager"]["zones"][0]
    custom = {"uuid": "regenerated", "icru": 276, "name": "WATER, LIQUID", "density": 1.0}
    water.update(materialUuid="regenerated", customMaterial=custom)
    water["materialPropertiesOverrides"] = {"density": 1.2}
    root = _gdml(geant4_files(project))
    refs = {
        volume.get("name"): volume.find("materialref").get("ref")  # type: ignore[union-attr]
        for volume in root.iter("volume")
    }
    assert refs["logicWater"] == "G4_WATER_density_1.2" and refs["logicLead"] == "G4_Pb"


def test_filter_types_beyond_particles() -> None:
    project = _project()
    kinds = {
        "charged": "/score/filter/charged picked",
        "neutral": "/score/filter/neutral picked",
        "kineticEnergy": "/score/filter/kineticEnergy picked 1 10 MeV",
        "particleWithKineticEnergy": (
            "/score/filter/particleWithKineticEnergy picked 1 10 MeV proton e-"
        ),
    }
    for kind, command in kinds.items():
        data = {
            "particleTypes": [{"id": 2, "name": "Proton"}, {"id": 4, "name": "Electron"}],
            "kineticEnergyLow": 1,
            "kineticEnergyHigh": 10,
            "kineticEnergyUnit": "MeV",
        }
        project["scoringManager"]["filters"] = [
            {"uuid": "f-1", "name": "picked", "filterType": kind, "data": data}
        ]
        assert command in geant4_files(project)[MACRO_FILE].splitlines()


def test_an_energy_spectrum_is_scored_by_a_probe_and_histogrammed() -> None:
    project = _project()
    project["scoringManager"]["outputs"][0]["quantities"].append(
        {
            "name": "Spectrum",
            "keyword": "KineticEnergySpectrum",
            "histogramNBins": 50,
            "histogramMin": 0,
            "histogramMax": 150,
            "histogramUnit": "MeV",
        }
    )
    commands = _commands(geant4_files(project)[MACRO_FILE])
    assert ["/score/create/probe", "Depth", "2.5", "cm"] in commands
    assert ["/score/quantity/cellFlux", "Spectrum"] in commands
    assert [
        "/analysis/h1/create",
        "Spectrum_0",
        "Spectrum_differential_0",
        "50",
        "0",
        "150",
        "MeV",
        "none",
        "linear",
    ] in commands
    assert ["/score/fill1D", "0", "Depth", "Spectrum"] in commands


def test_beam_particles_energy_units_and_spot_shapes() -> None:
    project = _project()
    project["beam"].update(
        particle={"id": 25, "name": "Heavy ions", "a": 12, "z": 6},
        energyUnit="MeV/nucl",
        energySpread=0.5,
        sigma={"type": "Flat square", "x": 1, "y": 2},
    )
    commands = _commands(geant4_files(project)[MACRO_FILE])
    assert ["/gps/ion", "6", "12", "6", "0"] in commands
    assert ["/gps/ene/mono", "1200", "MeV"] in commands
    assert ["/gps/ene/sigma", "6.0", "MeV"] in commands
    assert ["/gps/pos/halfx", "1", "cm"] in commands and ["/gps/pos/halfy", "2", "cm"] in commands
    project["beam"].update(particle={"id": 3, "name": "Photon"}, energyUnit="MeV")
    assert ["/gps/particle", "gamma"] in _commands(geant4_files(project)[MACRO_FILE])


# ----------------------------------------------------------------------------- refusals


def _set(path: str, value: Any) -> Callable[[Project], None]:
    def mutate(project: Project) -> None:
        *parents, last = path.split(".")
        target: Any = project
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def _second_top_level_figure(project: Project) -> None:
    project["figureManager"]["figures"].append(
        _figure("Stray", "BoxGeometry", {"width": 1, "height": 1, "depth": 1})
    )


PHANTOM = "figureManager.figures.0.children.0"
QUANTITY = "scoringManager.outputs.0.quantities.0"

REFUSALS = [
    (
        _set(f"{PHANTOM}.geometryData.geometryType", "TorusGeometry"),
        "figure 'Phantom': geometry type 'TorusGeometry'",
    ),
    (
        _set(f"{PHANTOM}.simulationMaterial", {"icru": 172, "name": "GLUCOSE"}),
        "'GLUCOSE' (ICRU 172)",
    ),
    (_set(f"{PHANTOM}.geometryData.parameters.radius", 0), "('Phantom'): radius must be positive"),
    (_second_top_level_figure, "figure 'Stray'"),
    (_set("figureManager.figures.0.geometryData.position", [0, 0, 1]), "world figure 'World'"),
    (_set("beam.particle", {"id": 99, "name": "Graviton"}), "'Graviton' (id 99)"),
    (_set("beam.sigma", {"type": "Lorentzian", "x": 1, "y": 1}), "sigma type 'Lorentzian'"),
    (_set("beam.sourceType", "file"), "source type 'file'"),
    (_set("beam.sad", {"type": "double", "x": 100, "y": 100}), "SAD type 'double'"),
    (_set("beam.divergence", {"x": 1, "y": 0, "distanceToFocal": 0}), "divergence"),
    (_set("beam.energySpread", -1), "energySpread"),
    (_set("beam.energyUnit", "GeV"), "energy unit 'GeV'"),
    (_set("beam.numberOfParticles", 0), "numberOfParticles"),
    (
        _set("detectorManager.detectors.0.geometryData.geometryType", "Zone"),
        "detector 'Depth': geometry type 'Zone'",
    ),
    (_set("detectorManager.detectors.0.name", "Depth dose"), "'Depth dose'"),
    (_set(f"{QUANTITY}.keyword", "dLET"), "keyword 'dLET'"),
    (
        _set(
            f"{QUANTITY}.modifiers",
            [{"diffType": "E", "binsNumber": 10, "lowerLimit": 0, "upperLimit": 100}],
        ),
        "quantity 'Dose': differential modifiers",
    ),
    (_set(f"{QUANTITY}.name", "FluenceProtons"), "two quantities"),
    (_set("scoringManager.outputs.0.trace", True), "output 'Depth': particle tracing"),
    (_set("scoringManager.outputs.0.detectorUuid", "nowhere"), "output 'Depth'"),
    (
        _set("scoringManager.filters.0.filterType", "charge"),
        "filter 'onlyProtons': filter type 'charge'",
    ),
    (
        _set("scoringManager.filters.0.data.particleTypes", [{"id": 11, "name": "12C"}]),
        "particle '12C'",
    ),
    (_set("physic.enableNuclearReactions", False), "nuclear reactions"),
    (_set("specialComponentsManager.CTCube", {"name": "ct"}), "special component 'CTCube'"),
]


@pytest.mark.parametrize(("mutate", "named"), REFUSALS)
def test_what_geant4_cannot_take_is_refused_by_name(
    mutate: Callable[[Project], None], named: str
) -> None:
    project = _project()
    geant4_files(copy.deepcopy(project))  # the unmodified project converts
    mutate(project)
    with pytest.raises(ConversionError) as refused:
        geant4_files(project)
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (
            _set("zoneManager.zones.0.unionOperations.0.1.mode", "xor"),
            "zone 'Water': boolean operation 'xor'",
        ),
        (
            _set("zoneManager.zones.0.unionOperations.0.0.mode", "subtraction"),
            "zone 'Water' begins with a subtraction",
        ),
        (
            _set("zoneManager.zones.1.unionOperations.0.0.objectUuid", "gone"),
            "zone 'Lead' uses a figure",
        ),
        (_set("zoneManager.zones.1.materialUuid", "gone"), "zone 'Lead': material 'gone'"),
        (_set("zoneManager.worldZone", None), "no world zone"),
        (_set("scoringManager.filters.0.rules.0.keyword", "GEN"), "filter 'onlyProtons': rule GEN"),
        (
            _set("zoneManager.zones.1.materialPropertiesOverrides", {"density": -2}),
            "zone 2 ('Lead'): density must be at least 0, not -2",
        ),
    ],
)
def test_zone_projects_refuse_by_name(mutate: Callable[[Project], None], named: str) -> None:
    project = _zone_project()
    mutate(project)
    with pytest.raises(ConversionError) as refused:
        geant4_files(project)
    assert named in str(refused.value)


def test_a_malformed_project_is_a_conversion_error() -> None:
    project = _project()
    del project["beam"]
    with pytest.raises(ConversionError, match="the project: missing beam"):
        geant4_files(project)
