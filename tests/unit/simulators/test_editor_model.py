"""The editor project model: YAPTIDE's examples parsed, and refusals that name the item."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.materials import CUSTOM_UUID, air_gap, custom_density

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.editor.model import (
    EditorProject,
    UnsupportedFeature,
    check_supported,
    parse_project,
)
from cyclotron.simulators.editor.project import (
    CylDetector,
    CylinderFigure,
    FilterRule,
    MeshDetector,
    Operation,
    euler_angles,
    rotation_matrix,
)
from cyclotron.simulators.editor.records import FLAT_CIRCLE

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
BUILTIN = {
    "engine": "builtin",
    "particles": {(1, 1)},
    "quantities": {"Dose", "Fluence", "AvgEnergy", "tLET", "dLET"},
    "detectors": {"Cyl", "Mesh", "Zone", "All"},
    "media": lambda icru: icru in (276, 104),
}


def example(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"YAPTIDE example {path} is absent (shared fixtures not checked out)")
    project: dict[str, Any] = json.loads(path.read_text())["input"]["inputJson"]
    return project


@pytest.fixture
def ex1() -> dict[str, Any]:
    return example("ex1.json")


def refusal(project: EditorProject, **changes: Any) -> str:
    with pytest.raises(UnsupportedFeature) as caught:
        check_supported(project, **{**BUILTIN, **changes})
    return str(caught.value)


# --- parsing the examples ------------------------------------------------------------------


def test_ex1_parses_into_zones_world_beam_and_outputs(ex1: dict[str, Any]) -> None:
    project = parse_project(ex1)
    assert [zone.name for zone in project.zones] == ["Water_phantom_zone", "Vacuum_zone"]
    water, vacuum = project.zones
    assert (water.material.icru, water.material.density) == (276, 1.0)
    assert vacuum.terms == (
        (
            Operation("union", "aeeffad9-ed86-44ae-bfe4-b5f78580741b"),
            Operation("subtraction", "7ab62ba9-6dba-4543-b50b-ce31e143d482"),
        ),
    )
    assert project.world.material.icru == 0  # black hole
    assert project.world.figure == CylinderFigure(
        "470b1fa8-42ac-497f-ac2e-d9a12273f24f", "World Zone", (0, 0, 10.5), (0, 0, 0), 6, 24, 0.0
    )
    assert project.primaries == 10000
    assert project.beam.energy == 150 and project.beam.energy_sigma == 1.5
    np.testing.assert_array_equal(project.beam.direction, [0, 0, 1])
    assert (project.beam.particle_z, project.beam.particle_a) == (1, 1)
    assert [o.name for o in project.outputs] == ["z_profile", "yz_profile", "entrance", "peak"]
    peak = project.outputs[3]
    assert [q.keyword for q in peak.quantities] == [
        "Dose", "AvgEnergy", "AvgEnergy", "AvgEnergy", "dLET", "tLET", "Fluence",
    ]  # fmt: skip
    spectrum = peak.quantities[6]
    assert (spectrum.modifiers[0].kind, spectrum.modifiers[0].bins) == ("E", 640)
    assert spectrum.filter is not None and spectrum.filter.rules == (
        FilterRule("Z", "==", 1),
        FilterRule("A", "==", 1),
    )
    assert peak.quantities[1].filter is not None
    assert FilterRule("GEN", "==", 0) in peak.quantities[1].filter.rules
    z_profile = project.outputs[0].detector
    assert isinstance(z_profile, CylDetector)
    assert (z_profile.radius, z_profile.depth, z_profile.z_segments) == (5, 20, 400)
    assert isinstance(project.outputs[1].detector, MeshDetector)


def test_ex1_is_supported_by_a_proton_engine_with_water(ex1: dict[str, Any]) -> None:
    check_supported(parse_project(ex1), **BUILTIN)


def test_ex6_flat_circular_beam_with_a_double_sad_is_taken() -> None:
    project = parse_project(example("ex6.json"))
    assert [zone.name for zone in project.zones] == [
        "MainAirZone", "PhantomZone", "CollimatorZone", "AirCollimatorZone",
    ]  # fmt: skip
    assert project.zones[2].material.density == 11.35
    settings = project.beam_settings
    assert (settings.shape, settings.sad, settings.sigma_y) == ("Flat circular", "double", 3)
    beam = project.beam
    assert (beam.shape, beam.sigma_x, beam.sigma_y) == (FLAT_CIRCLE, 3, 3)  # the radius
    assert (beam.sad_x, beam.sad_y) == (200, 256)
    check_supported(project, **{**BUILTIN, "media": lambda icru: True})


def test_ex7_electron_beam_is_no_nucleus() -> None:
    project = parse_project(example("ex7.json"))
    assert project.beam_settings.particle.nucleus is None
    assert (project.beam.particle_z, project.beam.particle_a) == (0, 0)
    assert "the beam particle Electron" in refusal(project)


def test_ex8_figure_tree_becomes_zones_minus_their_children() -> None:
    project = parse_project(example("ex8.json"))
    assert project.world.name == "World" and project.world.material.icru == 0
    vacuum, water = project.zones
    assert (vacuum.name, vacuum.material.icru) == ("Vacuum_cylinder", 1000)
    assert vacuum.terms == (
        (Operation("union", vacuum.uuid), Operation("subtraction", water.uuid)),
    )
    assert water.material.icru == 276
    assert project.figure(water.uuid).position == (0, 0, -0.5)
    assert project.beam.sigma_x == 0.2 and project.beam.sigma_y == 0.5
    assert project.beam.energy == 150  # energyUnit MeV
    proton, electron, neutron = project.filters
    assert proton.rules == (FilterRule("Z", "==", 1), FilterRule("A", "==", 1))
    assert electron.unsupported == "particle Electron"
    assert neutron.rules == (FilterRule("Z", "==", 0), FilterRule("A", "==", 1))
    message = refusal(project)
    assert "the quantity 'Energy' of output 'CylZ_Mesh'" in message
    assert "the quantity 'DoseGy' of output 'YZ_Mesh'" in message


def test_geant4_children_are_placed_in_their_parent_frame() -> None:
    project = copy.deepcopy(example("ex8.json"))
    world = project["figureManager"]["figures"][0]
    vacuum = world["children"][0]
    vacuum["geometryData"].update(position=[1, 0, 0], rotation=[0, 0, 90])
    vacuum["children"][0]["geometryData"].update(position=[1, 0, 0], rotation=[90, 0, 0])
    water = parse_project(project).zones[1]
    figure = parse_project(project).figure(water.uuid)
    assert figure.position == pytest.approx((1, 1, 0), abs=1e-12)
    expected = np.array(rotation_matrix((0, 0, 90))) @ np.array(rotation_matrix((90, 0, 0)))
    np.testing.assert_allclose(rotation_matrix(figure.rotation), expected, atol=1e-12)


def test_euler_angles_give_back_the_matrix() -> None:
    rng = np.random.default_rng(7)
    for angles in [*rng.uniform(-180, 180, (50, 3)), (30, 90, 10), (0, -90, 45)]:
        matrix = rotation_matrix(tuple(angles))
        np.testing.assert_allclose(rotation_matrix(euler_angles(matrix)), matrix, atol=1e-9)


def test_rotation_turns_the_figure_z_axis_as_the_converters_do() -> None:
    # SHIELD-HIT12A's converter turns (0, 0, 1) about z, then y, then x.
    matrix = np.array(rotation_matrix((30, 45, 60)))
    a, b = math.radians(30), math.radians(45)
    x, z = math.sin(b), math.cos(b)
    expected = (x, -z * math.sin(a), z * math.cos(a))
    np.testing.assert_allclose(matrix @ [0, 0, 1], expected, atol=1e-12)


def test_energy_per_nucleon_becomes_the_ions_total(ex1: dict[str, Any]) -> None:
    ex1["beam"]["particle"] = {"a": 12, "id": 25, "name": "Heavy ions", "z": 6}
    ex1["beam"].update(energy=100, energySpread=1)
    project = parse_project(ex1)
    assert (project.beam.energy, project.beam.energy_sigma) == (1200, 12)
    assert (project.beam.particle_z, project.beam.particle_a) == (6, 12)
    assert "the beam particle C-12" in refusal(project)
    ex1["beam"]["energyUnit"] = "MeV"
    assert parse_project(ex1).beam.energy == 100


# --- refusals --------------------------------------------------------------------------------


def test_quantities_the_engine_lacks_are_named_with_their_output(ex1: dict[str, Any]) -> None:
    message = refusal(parse_project(ex1), engine="mcsquare", quantities={"Dose", "dLET"})
    assert "the quantity 'Fluence' of output 'z_profile'" in message
    assert "the quantity 'AvgEnergy' of output 'peak'" in message
    assert "mcsquare engine" in message
    # Issue 19, item 7: z_profile scores Fluence three times, named once; and what it can do.
    assert message.count("the quantity 'Fluence' of output 'z_profile'") == 1
    assert message.endswith("(it scores dLET and Dose in All, Cyl, Mesh and Zone detectors)")


def test_detector_kinds_and_materials_the_engine_lacks(ex1: dict[str, Any]) -> None:
    ex1["detectorManager"]["detectors"][2]["geometryData"].update(
        geometryType="Zone", parameters={"zoneUuid": ex1["zoneManager"]["zones"][0]["uuid"]}
    )
    ex1["materialManager"]["materials"][1]["icru"] = 999
    message = refusal(parse_project(ex1), detectors={"Cyl", "Mesh"})
    assert "detector kind 'Zone' (output 'entrance')" in message
    assert "material ICRU 999" in message and "zone 'Water_phantom_zone'" in message


def test_beam_settings_without_implementation_are_named(ex1: dict[str, Any]) -> None:
    ex1["beam"].update(
        sourceType="phase space",
        sad={"type": "triple", "x": 100, "y": 0},
        sigma={"type": "Flat hexagon", "x": 1, "y": 1},
        divergence={"x": 1, "y": 1, "distanceToFocal": 50},
    )
    message = refusal(parse_project(ex1))
    for item in ("source type 'phase space'", "SAD type 'triple'", "'Flat hexagon'", "focal"):
        assert item in message


def test_modifiers_filters_settings_and_names_without_implementation(
    ex1: dict[str, Any],
) -> None:
    outputs = ex1["scoringManager"]["outputs"]
    outputs[3]["quantities"][6]["modifiers"][0]["diffType"] = "ANGLE"
    outputs[2]["quantities"][0]["rescale"] = 2
    outputs[1]["name"] = "z_profile"
    ex1["scoringManager"]["filters"][0]["rules"].append(
        {"keyword": "ID", "operator": "==", "value": 3}
    )
    message = refusal(parse_project(ex1))
    assert "the differential modifier 'ANGLE' of quantity 'ProtonsKineticEnergySpectrum'" in message
    assert "the setting 'rescale' of quantity 'Dose' of output 'entrance'" in message
    assert "the output name 'z_profile'" in message
    assert "the filter keyword 'ID' of filter 'Protons'" in message


def test_trace_outputs_and_special_components_are_refused(ex1: dict[str, Any]) -> None:
    ex1["scoringManager"]["outputs"][0]["trace"] = True
    ex1["specialComponentsManager"]["modulator"] = {"name": "modulator"}
    message = refusal(parse_project(ex1))
    assert "the trace of output 'z_profile'" in message
    assert "the special component 'modulator'" in message


def test_unsupported_feature_is_a_conversion_error() -> None:
    assert issubclass(UnsupportedFeature, ConversionError)


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        (lambda p: p.pop("beam"), ConversionError, "beam"),
        (
            lambda p: p["zoneManager"]["zones"][0]["unionOperations"][0][0].update(objectUuid="x"),
            ConversionError,
            "zone 'Water_phantom_zone'",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"].update(
                geometryType="TorusGeometry"
            ),
            UnsupportedFeature,
            "figure 'Water_phantom_cylinder'",
        ),
        (
            lambda p: p["scoringManager"]["outputs"][0].update(detectorUuid="nowhere"),
            ConversionError,
            "output 'z_profile'",
        ),
        (
            lambda p: p["beam"].update(direction=[0, 0, 0]),
            ConversionError,
            "beam: direction must not be the zero vector",
        ),
    ],
)
def test_malformed_projects_are_refused_naming_the_item(
    ex1: dict[str, Any], change: Any, error: type[Exception], named: str
) -> None:
    change(ex1)
    with pytest.raises(error, match=named):
        parse_project(ex1)


# --- materials: the library's density unless the project overrides it (issue 19) -----------


def test_a_library_material_listed_with_a_stale_density_gets_the_library_density() -> None:
    project = parse_project(air_gap(air_density=1.0))
    air = next(zone for zone in project.zones if zone.name == "Vacuum_zone").material
    assert (air.icru, air.density) == (104, 0.00120479)
    assert project.zones[0].material.density == 1.0  # water, as listed and in the library


def test_a_density_override_and_a_custom_material_are_the_project_s_own() -> None:
    """The editor's customMaterial (a copy of the material with a new uuid the zone names,
    without sanitizedName) is read, not refused as a material not in the project."""
    project = custom_density(air_gap(air_density=1.0), "Water_phantom_zone", 1.2)
    water = next(zone for zone in parse_project(project).zones if zone.name.startswith("Water"))
    assert (water.material.uuid, water.material.icru, water.material.density) == (
        CUSTOM_UUID, 276, 1.2,
    )  # fmt: skip
    overridden = air_gap(air_density=1.0)
    overridden["zoneManager"]["zones"][1]["materialPropertiesOverrides"] = {"density": 0.002}
    air = parse_project(overridden).zones[1].material
    assert (air.icru, air.density) == (104, 0.002)


def test_a_zone_naming_no_material_of_the_project_is_still_refused() -> None:
    project = air_gap(air_density=1.0)
    project["zoneManager"]["zones"][0]["materialUuid"] = "nowhere"
    with pytest.raises(ConversionError, match="material 'nowhere' is not in the project"):
        parse_project(project)
