"""The FLUKA converter: the YAPTIDE examples card by card, the cards it builds, what it refuses."""

from __future__ import annotations

import ast
import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.sampled_geometry import (
    OUTSIDE,
    disagreements,
    editor_materials,
    fluka_materials,
    points_around_figures,
    sample_points,
)

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.fluka import INPUT_FILE, fluka_files

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"the shared YAPTIDE fixtures are absent ({FIXTURES})"
)
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
BODY_TYPES = {"RPP", "BOX", "RCC", "SPH", "TRC"}

Card = tuple[Any, ...]


# --- reading FLUKA input as cards --------------------------------------------------------


def _value(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _fixed(line: str) -> Card:
    """A fixed-format card: keyword, six WHATs (numbers as floats), SDUM."""
    whats = [_value(line[10 + 10 * k : 20 + 10 * k].strip()) for k in range(6)]
    return (line[:10].strip(), *whats, line[70:80].strip())


def cards(text: str) -> list[Card]:
    """The input's cards without comments and blank lines; geometry as free-format tokens."""
    result: list[Card] = []
    state = "cards"
    for line in text.splitlines():
        if not line.strip() or line.startswith("*"):
            continue
        tokens = line.split()
        if state == "title":
            result.append(("title", line.strip()))
            state = "cards"
        elif state == "geometry title":
            result.append(("geometry title", *tokens))
            state = "bodies"
        elif state in ("bodies", "regions") and tokens == ["END"]:
            result.append(("END",))
            state = "regions" if state == "bodies" else "cards"
        elif state == "bodies":
            if tokens[0] in BODY_TYPES:
                result.append(("body", tokens[0], tokens[1], *map(float, tokens[2:])))
            else:
                result[-1] = (*result[-1], *map(float, tokens))
        elif state == "regions":
            if line[0].isspace():
                result[-1] = (*result[-1], *tokens)
            else:
                result.append(("region", tokens[0], float(tokens[1]), *tokens[2:]))
        else:
            result.append(_fixed(line))
            state = {"TITLE": "title", "GEOBEGIN": "geometry title"}.get(result[-1][0], "cards")
    return result


def _label(card: Card, seen: dict[str, int]) -> str:
    if card[0] in ("body", "region"):
        return f"{card[0]} {card[2] if card[0] == 'body' else card[1]}"
    if card[0] == "ASSIGNMA":
        return f"ASSIGNMA {card[2]}"
    seen[card[0]] = seen.get(card[0], 0) + 1
    return f"{card[0]}#{seen[card[0]]}"


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    return bool(ours == theirs)


def _without_geometry(found: list[Card]) -> list[Card]:
    return [card for card in found if card[0] not in ("body", "region")]


def differences(ours: list[Card], theirs: list[Card]) -> dict[tuple[str, int], tuple[Any, Any]]:
    """(card, field) -> (ours, theirs) wherever the two inputs differ, card by card, bodies and
    regions aside: geometry is compared by the material at sampled points
    (test_converter_geometry.py), never by its text."""
    ours, theirs = _without_geometry(ours), _without_geometry(theirs)
    assert len(ours) == len(theirs), "the inputs hold different numbers of cards"
    found: dict[tuple[str, int], tuple[Any, Any]] = {}
    seen: dict[str, int] = {}
    for mine, reference in zip(ours, theirs, strict=True):
        label = _label(reference, seen)
        assert mine[0] == reference[0] and len(mine) == len(reference), (mine, reference)
        for index, (a, b) in enumerate(zip(mine, reference, strict=True)):
            if not _same(a, b):
                found[(label, index)] = (a, b)
    return found


def _normalise_start(theirs: list[Card], primaries: int) -> list[Card]:
    """The stored START holds one task's share, int(N / tasks): put N back."""
    start = next(index for index, card in enumerate(theirs) if card[0] == "START")
    share = int(theirs[start][1])
    tasks = round(primaries / share)
    assert int(primaries / tasks) == share, "the stored START is no task's share of N"
    return [*theirs[:start], ("START", float(primaries), *theirs[start][2:]), *theirs[start + 1 :]]


# --- the YAPTIDE examples ----------------------------------------------------------------


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def _momentum_fwhm_gev(kinetic_mev: float, sigma_mev: float, mass_mev: float) -> float:
    momentum = math.sqrt(kinetic_mev**2 + 2 * kinetic_mev * mass_mev)
    return FWHM_PER_SIGMA * sigma_mev * (kinetic_mev + mass_mev) / momentum / 1000


@needs_fixtures
@pytest.mark.parametrize(("example", "mass_mev"), [("ex6.json", 938.272), ("ex7.json", 0.511)])
def test_examples_match_the_reference_card_by_card(example: str, mass_mev: float) -> None:
    stored = _example(example)
    project = stored["input"]["inputJson"]
    beam, world = project["beam"], project["zoneManager"]["worldZone"]["geometryData"]
    ours = cards(fluka_files(project)[INPUT_FILE])
    theirs = _normalise_start(
        cards(stored["input"]["inputFiles"]["flSim.inp"]), beam["numberOfParticles"]
    )

    spread = _momentum_fwhm_gev(beam["energy"], beam["energySpread"], mass_mev)
    # the only departures from the stored input, each a value the project states and the
    # reference dropped (docs/engines.md): the energy spread and the world zone's material
    # (air; the world's size, the other, is geometry and compared where geometry is)
    expected = {
        ("BEAM#1", 2): (pytest.approx(-spread, rel=1e-3), 0.0),
        ("ASSIGNMA world", 1): ("AIR", "WATER"),
    }
    assert differences(ours, theirs) == expected
    assert world["geometryType"] == "BoxGeometry"


@needs_fixtures
@pytest.mark.parametrize("example", ["ex6.json", "ex7.json"])
def test_info_json_is_the_reference_one(example: str) -> None:
    stored = _example(example)
    files = fluka_files(stored["input"]["inputJson"])
    assert sorted(files) == ["fl_sim.inp", "info.json"]
    # the export keeps the reference's info.json as the text of a Python dict
    reference = ast.literal_eval(stored["input"]["inputFiles"]["info.json"])
    assert (
        json.loads(files["info.json"])
        == reference
        == {
            "version": "unknown",
            "label": "",
            "simulator": "fluka",
        }
    )


# --- a small project built here ----------------------------------------------------------

WATER, AIR, LEAD = "m-water", "m-air", "m-lead"
GENERATION_0 = {"keyword": "GEN", "operator": "==", "value": 0}


def _geometry(kind: str, parameters: Mapping[str, float], position: Any = (0, 0, 0)) -> Any:
    return {"geometryType": kind, "parameters": parameters, "position": list(position)}


def project() -> dict[str, Any]:
    """A water box in air, a 150 MeV proton beam, a mesh dose and a cylinder fluence."""
    box = {"width": 10, "height": 10, "depth": 20}
    return {
        "project": {"simulator": "common"},
        "beam": {
            "particle": {"id": 2, "name": "Proton", "a": 1, "z": 1},
            "energy": 150,
            "energySpread": 0,
            "numberOfParticles": 10000,
            "position": [0, 0, -15],
            "direction": [0, 0, 1],
            "sigma": {"type": "Gaussian", "x": 0, "y": 0},
            "divergence": {"x": 0, "y": 0, "distanceToFocal": 0},
            "sourceType": "simple",
        },
        "figureManager": {
            "figures": [
                {"uuid": "f-box", "name": "Phantom", "geometryData": _geometry("BoxGeometry", box)}
            ]
        },
        "zoneManager": {
            "zones": [
                {
                    "uuid": "z-1",
                    "name": "Phantom zone",
                    "materialUuid": WATER,
                    "unionOperations": [[{"mode": "union", "objectUuid": "f-box"}]],
                }
            ],
            "worldZone": {
                "uuid": "w",
                "materialUuid": AIR,
                "geometryData": _geometry("BoxGeometry", {"width": 30, "height": 30, "depth": 40}),
            },
        },
        "materialManager": {
            "materials": [
                {"uuid": WATER, "name": "WATER, LIQUID", "icru": 276, "density": 1},
                {"uuid": AIR, "name": "AIR, DRY", "icru": 104, "density": 0.00120479},
                {"uuid": LEAD, "name": "LEAD", "icru": 82, "density": 11.35},
            ]
        },
        "detectorManager": {
            "detectors": [
                {
                    "uuid": "d-mesh",
                    "name": "Mesh",
                    "geometryData": _geometry(
                        "Mesh",
                        {"width": 2, "height": 4, "depth": 20, "xSegments": 1, "ySegments": 2}
                        | {"zSegments": 200},
                        (1, 0, 10),
                    ),
                },
                {
                    "uuid": "d-cyl",
                    "name": "Cylinder",
                    "geometryData": _geometry(
                        "Cyl",
                        {"radius": 3, "innerRadius": 1, "depth": 20, "radialSegments": 4}
                        | {"zSegments": 10},
                        (0.5, -0.5, 10),
                    ),
                },
            ]
        },
        "scoringManager": {
            # unused, so not refused: FLUKA cannot select primaries by generation
            "filters": [{"uuid": "f-primaries", "name": "Primaries", "rules": [GENERATION_0]}],
            "outputs": [
                {
                    "uuid": "o-1",
                    "name": "z profile",
                    "detectorUuid": "d-mesh",
                    "quantities": [{"name": "Dose", "keyword": "Dose", "modifiers": []}],
                },
                {
                    "uuid": "o-2",
                    "name": "radial",
                    "detectorUuid": "d-cyl",
                    "quantities": [{"name": "Fluence", "keyword": "Fluence", "modifiers": []}],
                },
            ],
        },
    }


def _cards_of(project_json: dict[str, Any], keyword: str) -> list[Card]:
    return [card for card in cards(fluka_files(project_json)[INPUT_FILE]) if card[0] == keyword]


@pytest.mark.parametrize("primaries", [1, 10000, 123456789, 2_000_000_000])
def test_start_holds_the_whole_jobs_primaries(primaries: int) -> None:
    changed = project()
    changed["beam"]["numberOfParticles"] = primaries
    assert _cards_of(changed, "START")[0][1] == primaries


def test_every_line_fits_fluka_formats() -> None:
    crowded = project()
    figures = crowded["figureManager"]["figures"]
    for index in range(40):  # a world carved by many figures needs continuation lines
        geometry = _geometry("SphereGeometry", {"radius": 0.1}, (index * 0.25 - 5, 0, 0))
        figures.append({"uuid": f"s{index}", "name": f"s{index}", "geometryData": geometry})
        operation = [{"mode": "union", "objectUuid": f"s{index}"}]
        crowded["zoneManager"]["zones"].append(
            {"uuid": f"z-s{index}", "name": "", "materialUuid": AIR, "unionOperations": [operation]}
        )
    text = fluka_files(crowded)[INPUT_FILE]
    in_geometry = False
    for line in text.splitlines():
        in_geometry = (in_geometry or line.startswith("GEOBEGIN")) and line != "GEOEND"
        limit = 132 if in_geometry and not line.startswith("GEOBEGIN") else 80
        assert len(line) <= limit or line.startswith("*"), line
    world = next(card for card in cards(text) if card[:2] == ("region", "world"))
    assert world[3:] == ("+figworld", "-fig0", *(f"-fig{i}" for i in range(1, 41)))


def test_geometry_bodies_and_boolean_zones() -> None:
    shaped = project()
    figures = shaped["figureManager"]["figures"]
    turned = _geometry("BoxGeometry", {"width": 4, "height": 2, "depth": 6}, (1, 2, 3))
    turned["rotation"] = [0, 0, 90]
    tilted = _geometry("HollowCylinderGeometry", {"radius": 2, "depth": 4, "innerRadius": 0})
    tilted["rotation"] = [90, 0, 0]
    figures += [
        {"uuid": "f-turned", "name": "turned", "geometryData": turned},
        {"uuid": "f-tilted", "name": "tilted", "geometryData": tilted},
        {
            "uuid": "f-ball",
            "name": "ball",
            "geometryData": _geometry("SphereGeometry", {"radius": 1.5}),
        },
        {
            "uuid": "f-ghost",
            "name": "unused",
            "geometryData": _geometry("SphereGeometry", {"radius": 9}),
        },
    ]
    shaped["zoneManager"]["zones"][0]["unionOperations"] = [
        [{"mode": "union", "objectUuid": "f-box"}, {"mode": "subtraction", "objectUuid": "f-ball"}],
        [
            {"mode": "union", "objectUuid": "f-turned"},
            {"mode": "intersection", "objectUuid": "f-tilted"},
        ],
    ]
    text = fluka_files(shaped)[INPUT_FILE]
    found = cards(text)
    bodies = {card[2]: card for card in found if card[0] == "body"}
    assert [bodies[f"fig{i}"][1] for i in range(4)] == ["RPP", "BOX", "RCC", "SPH"]
    # Every sampled point holds the material the editor shows there: the turned box and
    # cylinder where they are, the ball subtracted from the box and the parts of the box and
    # cylinder outside their intersection left to the world's air (a world that subtracted
    # every body left them in no region), the unused figure carving nothing.
    points = np.concatenate([sample_points(shaped, 20000), points_around_figures(shaped, 5000)])
    reference = editor_materials(shaped, points)
    inside = reference != OUTSIDE
    read = fluka_materials(text, points)
    assert disagreements(reference, read, inside) == []
    assert set(read[~inside]) <= {"BLCKHOLE", OUTSIDE}
    assert bodies["figbound"][3:] == (-25.0, 25.0, -25.0, 25.0, -30.0, 30.0)


def test_cylinder_and_sphere_worlds_grow_a_ten_centimetre_boundary() -> None:
    for kind, parameters, expected in [
        (
            "HollowCylinderGeometry",
            {"radius": 20, "innerRadius": 20, "depth": 50},
            ("RCC", 0.0, 0.0, -35.0, 0.0, 0.0, 70.0, 30.0),
        ),
        ("SphereGeometry", {"radius": 40}, ("SPH", 0.0, 0.0, 0.0, 50.0)),
    ]:
        changed = project()
        changed["zoneManager"]["worldZone"]["geometryData"] = _geometry(kind, parameters)
        found = cards(fluka_files(changed)[INPUT_FILE])
        bound = next(card for card in found if card[:1] == ("body",) and card[2] == "figbound")
        assert (bound[1], *bound[3:]) == expected


def test_materials_predefined_new_element_and_changed_compound() -> None:
    changed = project()
    zones = changed["zoneManager"]["zones"]
    figure = zones[0]["unionOperations"]
    zones += [
        {"uuid": "z-2", "name": "lead", "materialUuid": LEAD, "unionOperations": figure},
        {
            "uuid": "z-3",
            "name": "dense water",
            "materialUuid": "custom",
            "customMaterial": {
                "uuid": "custom",
                "name": "WATER, LIQUID",
                "icru": 276,
                "density": 1,
            },
            "materialPropertiesOverrides": {"density": 1.05, "averageIonisationPotential": 78},
            "unionOperations": figure,
        },
        {"uuid": "z-4", "name": "lead again", "materialUuid": LEAD, "unionOperations": figure},
    ]
    found = cards(fluka_files(changed)[INPUT_FILE])
    by_keyword = {
        keyword: [card for card in found if card[0] == keyword]
        for keyword in ("MATERIAL", "LOW-MAT", "COMPOUND", "MAT-PROP", "ASSIGNMA")
    }
    assert [card[1:4] + card[7:] for card in by_keyword["MATERIAL"]] == [
        (82.0, "", 11.35, "MAT00001"),
        (0.0, "", 1.05, "COM00001"),
    ]
    assert [(card[1], card[7]) for card in by_keyword["LOW-MAT"]] == [("MAT00001", "LEAD")]
    assert [card[1:3] + card[7:] for card in by_keyword["COMPOUND"]] == [
        (-1.0, "WATER", "COM00001")
    ]
    assert [card[3:5] for card in by_keyword["MAT-PROP"]] == [(78.0, "COM00001")]
    assert [card[1:3] for card in by_keyword["ASSIGNMA"]] == [
        ("WATER", "region0"),
        ("MAT00001", "region1"),
        ("COM00001", "region2"),
        ("MAT00001", "region3"),
        ("AIR", "world"),
        ("BLCKHOLE", "boundary"),
    ]
    # the FLUKA material cards precede the compounds that fill them
    keywords = [card[0] for card in found]
    assert keywords.index("MATERIAL") < keywords.index("LOW-MAT") < keywords.index("COMPOUND")


def test_materials_take_the_library_density_unless_the_zone_overrides_it() -> None:
    """Issue 19, items 2 and 3: AIR listed at a stale 1.0 g/cm³ is FLUKA's AIR (0.0012), not a
    compound at 1.0; the editor's customMaterial (a new uuid, no sanitizedName) is read."""
    changed = project()
    for material in changed["materialManager"]["materials"]:
        if material["uuid"] == AIR:
            material["density"] = 1.0
    water = changed["zoneManager"]["zones"][0]
    custom = {"uuid": "regenerated", "name": "WATER, LIQUID", "icru": 276, "density": 1.0}
    water.update(materialUuid="regenerated", customMaterial=custom)
    water["materialPropertiesOverrides"] = {"density": 1.2}
    found = cards(fluka_files(changed)[INPUT_FILE])
    assigned = [card[1:3] for card in found if card[0] == "ASSIGNMA"]
    assert ("AIR", "world") in assigned and ("COM00001", "region0") in assigned
    materials = [card[1:4] + card[7:] for card in found if card[0] == "MATERIAL"]
    assert materials == [(0.0, "", 1.2, "COM00001")]


def test_beam_cards_for_a_heavy_ion_gaussian_beam_going_backwards() -> None:
    changed = project()
    changed["beam"] |= {
        "particle": {"id": 25, "name": "Heavy ions", "a": 12, "z": 6},
        "energy": 2400,
        "energyUnit": "MeV",
        "energySpread": 12,
        "direction": [0, 3, -4],
        "sigma": {"type": "Gaussian", "x": 0.5, "y": 0.25},
        "divergence": {"x": 2, "y": 2, "distanceToFocal": 0},
    }
    found = cards(fluka_files(changed)[INPUT_FILE])
    beam = next(card for card in found if card[0] == "BEAM")
    per_nucleon = 2400 / 12
    spread = _momentum_fwhm_gev(per_nucleon, 12 / 12, 931.494)
    widths = [-2 * FWHM_PER_SIGMA, -0.5 * FWHM_PER_SIGMA, -0.25 * FWHM_PER_SIGMA, 1.0]
    assert beam[1:7] == pytest.approx([-per_nucleon / 1000, -spread, *widths], rel=1e-3)
    assert beam[7] == "HEAVYION"
    assert next(card for card in found if card[0] == "HI-PROPE")[1:3] == (6.0, 12.0)
    position = next(card for card in found if card[0] == "BEAMPOS")
    assert position[1:7] == (0.0, 0.0, -15.0, 0.0, 0.6, 0.0)
    assert position[7] == "NEGATIVE"


def test_flat_beams_and_energy_per_nucleon() -> None:
    changed = project()
    changed["beam"] |= {
        "particle": {"id": 24, "name": "Helium-4", "a": 4, "z": 2},
        "energyUnit": "MeV/nucl",
        "energy": 100,
        "sigma": {"type": "Flat square", "x": 1.5, "y": 0.5},
    }
    beam = _cards_of(changed, "BEAM")[0]
    assert beam == ("BEAM", -0.4, 0.0, 0.0, 3.0, 1.0, 1.0, "4-HELIUM")
    changed["beam"]["sigma"] = {"type": "Flat circular", "x": 7, "y": 2}
    assert _cards_of(changed, "BEAM")[0][4:7] == (2.0, 0.0, -1.0)


def test_scoring_units_binnings_and_filters() -> None:
    changed = project()
    scoring = changed["scoringManager"]
    scoring["filters"] += [
        {"uuid": "p", "name": "Neutrons", "particle": {"id": 1, "name": "Neutron"}},
        {
            "uuid": "c",
            "name": "Carbon-12",
            "rules": [
                {"keyword": "Z", "operator": "==", "value": 6},
                {"keyword": "A", "operator": "==", "value": 12},
            ],
        },
    ]
    scoring["outputs"][0]["quantities"] += [
        {"name": "DoseCarbonIons", "keyword": "Dose", "filter": "c", "modifiers": []},
        {"name": "Eδ", "keyword": "Energy", "modifiers": []},
    ]
    scoring["outputs"][1]["quantities"] += [
        {"name": "FluN", "keyword": "Fluence", "filter": "p", "modifiers": []},
        {"name": "FluC", "keyword": "Fluence", "filter": "c", "modifiers": []},
    ]
    found = [
        card
        for card in cards(fluka_files(changed)[INPUT_FILE])
        if card[0] in ("USRBIN", "AUXSCORE")
    ]
    mesh_first = (10.0, "DOSE", -21.0, 2.0, 2.0, 20.0, "Dose")
    mesh_second = (0.0, -2.0, 0.0, 1.0, 2.0, 200.0, "&")
    cyl_second = (1.0, 0.5, 0.0, 4.0, 1.0, 10.0, "&")
    assert [card[1:] for card in found] == [
        mesh_first,
        mesh_second,
        (10.0, "DOSE", -21.0, 2.0, 2.0, 20.0, "DoseCarbon"),
        mesh_second,
        ("USRBIN", -1200600.0, "", 2.0, 2.0, 1.0, ""),
        (10.0, "ENERGY", -21.0, 2.0, 2.0, 20.0, "E_"),
        mesh_second,
        (11.0, "ALL-PART", -22.0, 3.0, -0.5, 20.0, "Fluence"),
        cyl_second,
        (11.0, "NEUTRON", -22.0, 3.0, -0.5, 20.0, "FluN"),
        cyl_second,
        (11.0, "ALL-PART", -22.0, 3.0, -0.5, 20.0, "FluC"),
        cyl_second,
        ("USRBIN", -1200600.0, "", 6.0, 6.0, 1.0, ""),
    ]


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    """Set one value of the project, addressed by keys and list indices."""
    *parents, last = path.split(".")
    node: Any = target
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value


REFUSED = [
    ("figureManager.figures.0.geometryData.geometryType", "TorusGeometry", "TorusGeometry"),
    (
        "figureManager.figures.0.geometryData",
        _geometry("HollowCylinderGeometry", {"radius": 2, "innerRadius": 1, "depth": 1}),
        "Phantom",
    ),
    ("figureManager.figures.0.geometryData.parameters.width", 0, "Phantom"),
    ("zoneManager.zones.0.unionOperations", [[{"mode": "xor", "objectUuid": "f-box"}]], "xor"),
    ("zoneManager.zones.0.unionOperations.0.0.objectUuid", "nowhere", "nowhere"),
    ("zoneManager.zones.0.materialUuid", "nowhere", "nowhere"),
    ("materialManager.materials.0.icru", 185, "WATER, LIQUID"),
    ("beam.particle", {"id": 13, "name": "Mystery"}, "Mystery"),
    ("beam.sourceType", "file", "file"),
    ("beam.sigma.type", "Hexagonal", "Hexagonal"),
    ("beam.energySpread", -1.5, "spread"),
    ("beam.divergence", {"x": 1, "y": 2, "distanceToFocal": 0}, "divergence"),
    ("beam.divergence", {"x": 1, "y": 1, "distanceToFocal": 50}, "focal"),
    ("beam.energyUnit", "GeV", "GeV"),
    ("project.simulator", "geant4", "geant4"),
    ("specialComponentsManager", {"modulator": {"name": "SOBP"}}, "modulator"),
    ("specialComponentsManager", {"CTCube": {"name": "patient"}}, "CTCube"),
    ("scoringManager.outputs.0.quantities.0.keyword", "dLET", "dLET"),
    (
        "scoringManager.outputs.0.quantities.0.modifiers",
        [{"diffType": "E", "lowerLimit": 0, "upperLimit": 100, "binsNumber": 10}],
        "modifiers",
    ),
    ("scoringManager.outputs.0.quantities.0.rescale", 2, "rescale"),
    ("scoringManager.outputs.0.quantities.0.filter", "nowhere", "nowhere"),
    ("scoringManager.outputs.0.trace", True, "tracing"),
    ("scoringManager.outputs.0.detectorUuid", "nowhere", "z profile"),
    ("detectorManager.detectors.0.geometryData.geometryType", "Zone", "Zone"),
    ("detectorManager.detectors.0.geometryData.rotation", [0, 45, 0], "rotated"),
    ("scoringManager.outputs.0.quantities.0.filter", "f-primaries", "Primaries"),
]


@pytest.mark.parametrize(("path", "value", "named"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_fluka_cannot_express_is_refused_by_name(path: str, value: Any, named: str) -> None:
    changed = project()
    _set(changed, path, copy.deepcopy(value))
    with pytest.raises(ConversionError, match=named):
        fluka_files(changed)


def test_conversion_leaves_the_project_as_it_was() -> None:
    original = project()
    kept = copy.deepcopy(original)
    text = fluka_files(original)[INPUT_FILE]
    assert original == kept
    assert text.startswith("TITLE\n") and text.endswith("STOP\n")
    assert _cards_of(original, "RANDOMIZ")[0][1:3] == ("", 137.0)
