"""SHIELD-HIT12A converter: YAPTIDE's examples reproduced, features laid out, refusals named."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.sampled_geometry import (
    OUTSIDE,
    editor_materials,
    editor_zones,
    points_around_figures,
    sample_points,
    shieldhit_materials,
)

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.shieldhit import shieldhit_files

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
# YAPTIDE's SHIELD-HIT12A examples (exampleMap.json); only some are in the fixtures.
SHIELDHIT_EXAMPLES = ["ex1.json", "ex2.json", "ex3.json", "ex4.json", "ex5.json"]
INPUT_FILES = ["beam.dat", "mat.dat", "geo.dat", "detect.dat"]
COMMENT = {"beam.dat": r"!.*", "mat.dat": r"!.*", "detect.dat": r"#.*"}


def words(name: str, text: str) -> list[str]:
    """An input file's words, without comments, whitespace or the per-task NSTAT count."""
    if name == "geo.dat":  # comment lines start with '*'
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("*"))
    elif name in COMMENT:
        text = re.sub(COMMENT[name], "", text)
    result = text.split()
    if name == "beam.dat" and "NSTAT" in result:
        result[result.index("NSTAT") + 1] = "<NSTAT>"
    return result


def info_data(text: str) -> Any:
    """info.json as data; YAPTIDE stores it as a Python dict literal, not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def load_example(name: str) -> dict[str, Any]:
    if not FIXTURES.is_dir():
        pytest.skip(f"YAPTIDE example fixtures not found at {FIXTURES}")
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{name} is not among the fixtures in {FIXTURES} (held back)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- YAPTIDE's examples ---------------------------------------------------------------------


def test_example_list_matches_yaptide_example_map() -> None:
    example_map = FIXTURES / "exampleMap.json"
    if not example_map.is_file():
        pytest.skip(f"YAPTIDE example fixtures not found at {FIXTURES}")
    listed = json.loads(example_map.read_text())["shieldhit"].values()
    assert sorted(listed) == SHIELDHIT_EXAMPLES


def same_geometry(project: dict[str, Any], ours: dict[str, str], theirs: dict[str, str]) -> None:
    """geo.dat and mat.dat of both give the same ICRU number at every sampled point of the
    project's world (test_converter_geometry.py; body order, anchors, number formats aside)."""
    points = np.concatenate([sample_points(project, 20000), points_around_figures(project, 3000)])
    inside = editor_zones(project, points) >= 0
    mine, reference = shieldhit_materials(ours, points), shieldhit_materials(theirs, points)
    wrong = np.flatnonzero(inside & (mine != reference))
    assert wrong.size == 0, [(points[i].tolist(), mine[i], reference[i]) for i in wrong[:5]]


def same_as_the_editor(project: dict[str, Any], files: dict[str, str]) -> None:
    """Every sampled point of the world holds the ICRU number the editor shows there."""
    points = np.concatenate([sample_points(project, 20000), points_around_figures(project, 3000)])
    reference = editor_materials(project, points)
    read = shieldhit_materials(files, points)
    inside = reference != OUTSIDE
    wrong = np.flatnonzero(inside & (read != reference))
    assert wrong.size == 0, [(points[i].tolist(), read[i], reference[i]) for i in wrong[:5]]


@pytest.mark.parametrize("example", SHIELDHIT_EXAMPLES)
def test_example_gives_yaptide_input_files(example: str) -> None:
    stored = load_example(example)["input"]
    files = shieldhit_files(stored["inputJson"])
    assert sorted(files) == sorted(stored["inputFiles"])
    same_geometry(stored["inputJson"], files, stored["inputFiles"])
    for name in INPUT_FILES:
        if name != "geo.dat":  # compared above, by what it places where
            assert words(name, files[name]) == words(name, stored["inputFiles"][name]), name
    assert info_data(files["info.json"]) == info_data(stored["inputFiles"]["info.json"])
    json.loads(files["info.json"])  # ours is real JSON
    for name in set(files) - {*INPUT_FILES, "info.json"}:  # beam source, modulator files
        assert files[name] == stored["inputFiles"][name], name


@pytest.mark.parametrize("example", SHIELDHIT_EXAMPLES)
def test_example_nstat_is_the_whole_job(example: str) -> None:
    project = load_example(example)["input"]["inputJson"]
    beam = shieldhit_files(project)["beam.dat"].split()
    assert beam[beam.index("NSTAT") + 1] == str(project["beam"]["numberOfParticles"])


def test_common_example_converts_with_box_geometry_and_flat_beam() -> None:
    project = load_example("ex6.json")["input"]["inputJson"]
    files = shieldhit_files(project)
    beam = words("beam.dat", files["beam.dat"])
    assert beam[beam.index("BEAMSIGMA") :][:3] == ["BEAMSIGMA", "1.0", "-3"]
    assert beam[beam.index("BEAMSAD") :][:3] == ["BEAMSAD", "200", "256"]
    same_as_the_editor(project, files)
    # The world (11 × 11 × 13.2 cm) is air, so a black-hole shell 1 cm thick wraps it.
    beyond = np.array([[0.0, 0.0, 7.0], [6.0, 0.0, 0.0], [0.0, 0.0, 8.0]])
    assert shieldhit_materials(files, beyond).tolist() == ["0", "0", OUTSIDE]


# --- a small project, changed feature by feature ---------------------------------------------


def figure(uuid: str, kind: str, params: dict[str, Any], position: list[float] | None = None,
           rotation: list[float] | None = None) -> dict[str, Any]:  # fmt: skip
    geometry = {"geometryType": kind, "parameters": params, "position": position or [0, 0, 0],
                "rotation": rotation or [0, 0, 0]}  # fmt: skip
    return {"uuid": uuid, "name": uuid, "type": "Figure", "geometryData": geometry}


def zone(uuid: str, material: str, *groups: list[tuple[str, str]]) -> dict[str, Any]:
    operations = [[{"mode": mode, "objectUuid": body} for mode, body in group] for group in groups]
    return {"uuid": uuid, "name": uuid, "type": "BooleanZone", "materialUuid": material,
            "materialPropertiesOverrides": {}, "unionOperations": operations}  # fmt: skip


def material(uuid: str, icru: int) -> dict[str, Any]:
    return {"uuid": uuid, "icru": icru, "name": uuid.upper(), "sanitizedName": uuid, "density": 1}


def base_project() -> dict[str, Any]:
    beam = {
        "particle": {"id": 2, "name": "Proton", "a": 1, "z": 1}, "energy": 150,
        "energySpread": 1.5, "energyLowCutoff": 0, "energyHighCutoff": 1000,
        "numberOfParticles": 12345, "position": [0, 0, -1], "direction": [0, 0, 1],
        "sigma": {"type": "Gaussian", "x": 0.5, "y": 0.5}, "sad": {"type": "none", "x": 0, "y": 0},
        "divergence": {"x": 0, "y": 0, "distanceToFocal": 0}, "sourceType": "simple",
        "sourceFile": {"name": "", "value": ""},
    }  # fmt: skip
    world = figure("world", "SphereGeometry", {"radius": 20})
    world.update(materialUuid="air", name="World Zone")
    mesh = {"uuid": "mesh", "name": "Mesh", "geometryData": {
        "geometryType": "Mesh", "position": [0, 0, 10], "rotation": [0, 0, 0],
        "parameters": {"width": 1, "height": 2, "depth": 20, "xSegments": 1, "ySegments": 2,
                       "zSegments": 200}}}  # fmt: skip
    dose = {"name": "Dose", "keyword": "Dose", "modifiers": [], "uuid": "q1"}
    return {
        "project": {"title": "Small test"},
        "beam": beam,
        "physic": {
            "energyLoss": 0.03,
            "enableNuclearReactions": True,
            "energyModelStraggling": "Vavilov",
            "multipleScattering": "Moliere",
            "stoppingPowerTable": "ICRU91",
            "availableStoppingPowerFiles": {},
        },  # fmt: skip
        "materialManager": {
            "materials": [material("water", 276), material("air", 104), material("hole", 0)]
        },  # fmt: skip
        "figureManager": {
            "figures": [
                figure("box", "BoxGeometry", {"width": 2, "height": 4, "depth": 6}, [1, 2, 3])
            ]
        },  # fmt: skip
        "zoneManager": {
            "zones": [zone("phantom", "water", [("union", "box")])],
            "worldZone": world,
        },
        "detectorManager": {"detectors": [mesh]},
        "scoringManager": {
            "filters": [],
            "outputs": [
                {"name": "dose", "detectorUuid": "mesh", "quantities": [dose], "trace": False}
            ],
        },  # fmt: skip
        "specialComponentsManager": {},
    }


def converted(change: Callable[[dict[str, Any]], object] = lambda _: None) -> dict[str, str]:
    project = base_project()
    change(project)
    return shieldhit_files(project)


def section(text: str, name: str, keyword: str, length: int) -> list[str]:
    found = words(name, text)
    return found[found.index(keyword) :][:length]


def test_small_project_geometry_media_and_beam() -> None:
    files = converted()
    assert words("geo.dat", files["geo.dat"])[:4] == ["0", "0", "Small", "test"]
    same_as_the_editor(base_project(), files)
    # a black-hole shell 1 cm thick around the air world (a sphere of radius 20)
    beyond = np.array([[0.0, 0.0, 20.5], [0.0, 0.0, 21.5]])
    assert shieldhit_materials(files, beyond).tolist() == ["0", OUTSIDE]
    media = ["MEDIUM", "1", "ICRU", "276", "END", "MEDIUM", "2", "ICRU", "104", "END"]
    assert words("mat.dat", files["mat.dat"]) == media
    assert words("beam.dat", files["beam.dat"]) == [
        "RNDSEED", "89736501", "JPART0", "2", "TMAX0", "150.0", "1.5", "TCUT0", "0", "1000",
        "NSTAT", "<NSTAT>", "0", "STRAGG", "2", "MSCAT", "2", "NUCRE", "1",
        "BEAMPOS", "0", "0", "-1", "BEAMDIR", "0.0", "0.0", "BEAMSIGMA", "0.5", "0.5",
        "DELTAE", "0.03",
    ]  # fmt: skip
    raw = files["beam.dat"].split()
    assert raw[raw.index("NSTAT") + 1] == "12345"  # numberOfParticles, the whole job
    assert words("detect.dat", files["detect.dat"]) == [
        "Geometry", "Mesh", "Name", "Mesh", "X", "-0.5", "0.5", "1", "Y", "-1", "1", "2",
        "Z", "0", "20", "200", "Output", "Filename", "dose.bdo", "Geo", "Mesh", "Quantity", "Dose",
    ]  # fmt: skip
    assert json.loads(files["info.json"]) == {"version": "", "label": "", "simulator": "shieldhit"}


def test_rotated_cylinder_follows_the_editor_euler_order() -> None:
    def cylinders(project: dict[str, Any]) -> None:
        project["figureManager"]["figures"] = [
            figure("box", "HollowCylinderGeometry", {"radius": 1, "depth": 10, "innerRadius": 0},
                   rotation=[90, 0, 0]),
            figure("tilted", "HollowCylinderGeometry", {"radius": 1, "depth": 10}, [0, 0, 10],
                   rotation=[90, 90, 0]),
        ]  # fmt: skip

    project = base_project()
    cylinders(project)
    project["zoneManager"]["zones"].append(zone("rod", "water", [("union", "tilted")]))
    files = shieldhit_files(project)
    # three.js order XYZ turns about z, then y, then x: the second's axis ends up along +x;
    # both are centred on their positions (test_converter_geometry.py).
    same_as_the_editor(project, files)
    points = np.array([[0.0, 4.9, 0.0], [0.0, 5.1, 0.0], [4.9, 0.0, 10.0], [5.1, 0.0, 10.0]])
    assert shieldhit_materials(files, points).tolist() == ["276", "104", "276", "104"]


def test_union_intersection_and_overlapping_world_parts() -> None:
    def lens(project: dict[str, Any]) -> None:
        project["figureManager"]["figures"] = [
            figure("a", "SphereGeometry", {"radius": 2}, [0, 0, 1]),
            figure("b", "SphereGeometry", {"radius": 2}, [0, 0, 3]),
            figure("c", "BoxGeometry", {"width": 1, "height": 1, "depth": 1}, [5, 0, 0]),
        ]
        groups = ([("union", "a"), ("intersection", "b")], [("union", "c")])
        project["zoneManager"]["zones"] = [zone("lens", "water", *groups)]
        project["zoneManager"]["worldZone"]["materialUuid"] = "hole"

    project = base_project()
    lens(project)
    files = shieldhit_files(project)
    # World minus (a and b) minus c is (W - a - c) or (W - b - c): the parts overlap, so they
    # stay one zone joined by OR (the reader refuses overlapping zones).
    same_as_the_editor(project, files)
    geo = words("geo.dat", files["geo.dat"])
    assert geo[-4:] == ["1", "2", "1", "0"]


def test_heavy_ion_energy_per_nucleon() -> None:
    def carbon(project: dict[str, Any]) -> None:
        beam = project["beam"]
        beam.update(particle={"id": 25, "name": "C-12", "a": 12, "z": 6}, energy=1200)
        beam.update(energySpread=12, energyUnit="MeV")

    beam = converted(carbon)["beam.dat"]
    assert section(beam, "beam.dat", "JPART0", 8) == [
        "JPART0", "25", "HIPROJ", "12", "6", "TMAX0", "100.0", "1.0"
    ]  # fmt: skip


def test_beam_shape_sad_divergence_and_physics() -> None:
    def shaped(project: dict[str, Any]) -> None:
        project["beam"].update(sigma={"type": "Flat square", "x": 2, "y": 3}, direction=[0, -1, 0])
        project["beam"]["sad"] = {"type": "single", "x": 200, "y": 0}
        project["beam"]["divergence"] = {"x": 1.5, "y": 2, "distanceToFocal": 100}
        project["physic"].update(energyModelStraggling="Gaussian", enableNuclearReactions=False)
        project["physic"].update(multipleScattering="no scattering", energyLoss=0.01)

    beam = converted(shaped)["beam.dat"]
    assert section(beam, "beam.dat", "STRAGG", 6) == ["STRAGG", "1", "MSCAT", "0", "NUCRE", "0"]
    assert section(beam, "beam.dat", "BEAMDIR", 14) == [
        "BEAMDIR", "90.0", "270.0", "BEAMSIGMA", "-2", "-3", "BEAMSAD", "200",
        "BEAMDIV", "1.5", "2", "100", "DELTAE", "0.01",
    ]  # fmt: skip


def test_beam_source_file_and_modulator_travel_with_the_inputs() -> None:
    def sobp(project: dict[str, Any]) -> None:
        project["beam"].update(sourceType="file", sourceFile={"name": "plan.dat", "value": "1 2\n"})
        project["specialComponentsManager"]["modulator"] = {
            "geometryData": {"parameters": {"zoneUuid": "phantom"}},
            "sourceFile": {"name": "mod.cfg", "value": "0.1 0.2\n"},
            "simulationMethod": "sampling", "interpretationMode": "material",
        }  # fmt: skip

    files = converted(sobp)
    assert files["sobp.dat"] == "1 2\n" and files["mod.cfg"] == "0.1 0.2\n"
    assert section(files["beam.dat"], "beam.dat", "USEBMOD", 7) == [
        "USEBMOD", "1", "mod.cfg", "BMODMC", "1", "BMODTRANS", "0"
    ]  # fmt: skip
    assert words("beam.dat", files["beam.dat"])[-2:] == ["USECBEAM", "sobp.dat"]


def test_density_override_becomes_its_own_medium() -> None:
    def dense(project: dict[str, Any]) -> None:
        phantom = project["zoneManager"]["zones"][0]
        custom = {**material("dense", 276), "originalMaterialUuid": "water"}
        phantom.update(materialUuid="dense", customMaterial=custom)
        phantom["materialPropertiesOverrides"] = {"density": 1.2}

    files = converted(dense)
    assert words("mat.dat", files["mat.dat"]) == [
        "MEDIUM", "1", "ICRU", "276", "END", "MEDIUM", "2", "ICRU", "104", "END",
        "MEDIUM", "3", "ICRU", "276", "RHO", "1.2", "END",
    ]  # fmt: skip
    assert words("geo.dat", files["geo.dat"])[-3:] == ["3", "2", "0"]


def test_the_editor_s_custom_material_without_sanitized_name() -> None:
    """Issue 19, item 3: the editor's customMaterial may lack sanitizedName (it failed with
    KeyError 'sanitizedName'); a listed material's stale density is never written (SHIELD-HIT12A
    takes its own), only the zone's override is."""

    def dense(project: dict[str, Any]) -> None:
        project["materialManager"]["materials"][1]["density"] = 1.0  # AIR, stale
        phantom = project["zoneManager"]["zones"][0]
        custom = {"uuid": "regenerated", "name": "WATER, LIQUID", "icru": 276, "density": 1.0}
        phantom.update(materialUuid="regenerated", customMaterial=custom)
        phantom["materialPropertiesOverrides"] = {"density": 1.2}

    files = converted(dense)
    assert words("mat.dat", files["mat.dat"]) == [
        "MEDIUM", "1", "ICRU", "276", "END", "MEDIUM", "2", "ICRU", "104", "END",
        "MEDIUM", "3", "ICRU", "276", "RHO", "1.2", "END",
    ]  # fmt: skip
    assert words("geo.dat", files["geo.dat"])[-3:] == ["3", "2", "0"]


def test_scoring_filters_settings_and_differentials() -> None:
    def scored(project: dict[str, Any]) -> None:
        project["detectorManager"]["detectors"] += [
            {"uuid": "z", "name": "InPhantom",
             "geometryData": {"geometryType": "Zone", "parameters": {"zoneUuid": "phantom"}}},
            {"uuid": "all", "name": "Everywhere", "geometryData": {"geometryType": "All"}},
        ]  # fmt: skip
        project["scoringManager"]["filters"] = [
            {"uuid": "f1", "name": "Heavy", "rules": [
                {"keyword": "Z", "operator": "greater_than", "value": 2}]},
            {"uuid": "f2", "name": "PiMinus", "particle": {"id": 3, "name": "Pion π-"}},
            {"uuid": "f3", "name": "Alphas", "particle": {"id": 24, "name": "Helium-4"}},
        ]  # fmt: skip
        spectrum = {"name": "Quantity_1", "keyword": "Fluence", "filter": "f1", "primaries": 100,
                    "rescale": 2, "uuid": "q2", "modifiers": [
            {"diffType": "E", "lowerLimit": 0, "upperLimit": 100, "binsNumber": 10},
            {"diffType": "ANGLE", "lowerLimit": 0.1, "upperLimit": 10, "binsNumber": 5,
             "isLog": True},
        ]}  # fmt: skip
        project["scoringManager"]["outputs"] += [
            {"name": "zone", "detectorUuid": "z", "quantities": [spectrum]},
            {"name": "all", "detectorUuid": "all", "quantities": [
                {"name": "Pions", "keyword": "Fluence", "filter": "f2", "modifiers": []}]},
        ]  # fmt: skip

    detect = words("detect.dat", converted(scored)["detect.dat"])
    start = detect.index("InPhantom") - 3
    assert detect[start:] == [
        "Geometry", "Zone", "Name", "InPhantom", "Zone", "1", "Volume", "1.000000",
        "Geometry", "All", "Name", "Everywhere",
        "Filter", "Name", "Heavy", "Z", ">", "2",
        "Filter", "Name", "PiMinus", "ID", "==", "3",
        "Filter", "Name", "Alphas", "Z", "==", "2", "A", "==", "4",
        "Settings", "Name", "Absolute_Fluence_Quantity_1", "Rescale", "2", "Primaries", "100",
        "Output", "Filename", "dose.bdo", "Geo", "Mesh", "Quantity", "Dose",
        "Output", "Filename", "zone.bdo", "Geo", "InPhantom",
        "Quantity", "Fluence", "Heavy", "Absolute_Fluence_Quantity_1",
        "Diff1", "0", "100", "10", "Diff1Type", "E",
        "Diff2", "0.1", "10", "5", "log", "Diff2Type", "ANGLE",
        "Output", "Filename", "all.bdo", "Geo", "Everywhere", "Quantity", "Fluence", "PiMinus",
    ]  # fmt: skip


# --- refusals ---------------------------------------------------------------------------------


def figure_type(project: dict[str, Any]) -> None:
    project["figureManager"]["figures"][0]["geometryData"]["geometryType"] = "TorusGeometry"


def hollow(project: dict[str, Any]) -> None:
    params = {"radius": 2, "innerRadius": 1, "depth": 3}
    project["figureManager"]["figures"][0] = figure("box", "HollowCylinderGeometry", params)


def electron(project: dict[str, Any]) -> None:
    project["beam"]["particle"] = {"id": 26, "name": "Electron"}


def quantity(project: dict[str, Any]) -> None:
    project["scoringManager"]["outputs"][0]["quantities"][0]["keyword"] = "Kerma"


def detector_type(project: dict[str, Any]) -> None:
    project["detectorManager"]["detectors"][0]["geometryData"]["geometryType"] = "Plane"


def rotated_detector(project: dict[str, Any]) -> None:
    project["detectorManager"]["detectors"][0]["geometryData"]["rotation"] = [0, 45, 0]


def three_modifiers(project: dict[str, Any]) -> None:
    modifier = {"diffType": "E", "lowerLimit": 0, "upperLimit": 1, "binsNumber": 1, "isLog": False}
    project["scoringManager"]["outputs"][0]["quantities"][0]["modifiers"] = [modifier] * 3


def modifier_type(project: dict[str, Any]) -> None:
    modifier = {"diffType": "RAPIDITY", "lowerLimit": 0, "upperLimit": 1, "binsNumber": 1}
    project["scoringManager"]["outputs"][0]["quantities"][0]["modifiers"] = [modifier]


def boolean_mode(project: dict[str, Any]) -> None:
    project["zoneManager"]["zones"][0]["unionOperations"][0].append(
        {"mode": "xor", "objectUuid": "box"}
    )


def filter_keyword(project: dict[str, Any]) -> None:
    rule = {"keyword": "CHARGE", "operator": "==", "value": 1}
    project["scoringManager"]["filters"] = [{"uuid": "f", "name": "F", "rules": [rule]}]


def filter_particle(project: dict[str, Any]) -> None:
    particle = {"id": 26, "name": "Electron"}
    project["scoringManager"]["filters"] = [{"uuid": "f", "name": "F", "particle": particle}]


def sigma_type(project: dict[str, Any]) -> None:
    project["beam"]["sigma"]["type"] = "Ring"


def straggling(project: dict[str, Any]) -> None:
    project["physic"]["energyModelStraggling"] = "Landau"


def trace(project: dict[str, Any]) -> None:
    project["scoringManager"]["outputs"][0]["trace"] = True


def spaced_name(project: dict[str, Any]) -> None:
    project["scoringManager"]["outputs"][0]["name"] = "dose map"


def no_world(project: dict[str, Any]) -> None:
    del project["zoneManager"]["worldZone"]


def no_primaries(project: dict[str, Any]) -> None:
    project["beam"]["numberOfParticles"] = 0


def energy_unit(project: dict[str, Any]) -> None:
    project["beam"]["energyUnit"] = "GeV"


def malformed(project: dict[str, Any]) -> None:
    del project["beam"]["energy"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (figure_type, "'TorusGeometry'"),
        (hollow, "hollow cylinder"),
        (electron, "'Electron'"),
        (quantity, "quantity 'Kerma'"),
        (detector_type, "detector type 'Plane'"),
        (rotated_detector, "rotated Mesh"),
        (three_modifiers, "more than 2 differential modifiers"),
        (modifier_type, "'RAPIDITY'"),
        (boolean_mode, "boolean operation 'xor'"),
        (filter_keyword, "rule keyword 'CHARGE'"),
        (filter_particle, "particle 'Electron'"),
        (sigma_type, "sigma type 'Ring'"),
        (straggling, "straggling model 'Landau'"),
        (trace, "trace outputs"),
        (spaced_name, "'dose map' must be one word"),
        (no_world, "no world zone"),
        (no_primaries, "numberOfParticles"),
        (energy_unit, "energy unit 'GeV'"),
        (malformed, "beam: missing energy"),
    ],
)
def test_unsupported_items_are_refused_by_name(
    change: Callable[[dict[str, Any]], None], named: str
) -> None:
    with pytest.raises(ConversionError) as refused:
        converted(change)
    assert named in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_conversion_leaves_the_project_untouched() -> None:
    project = base_project()
    before = copy.deepcopy(project)
    shieldhit_files(project)
    assert project == before
