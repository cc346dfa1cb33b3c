"""Scoring steps and voxel doses into estimators: values computed by hand, ex1's layout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cyclotron.estimators.model import validate_estimators
from cyclotron.simulators.editor.geometry import voxelise
from cyclotron.simulators.editor.model import EditorProject, UnsupportedFeature, parse_project
from cyclotron.simulators.editor.records import StepBatch, VoxelGrid
from cyclotron.simulators.editor.scoring import Scoring
from cyclotron.simulators.editor.voxel_scoring import estimators_from_voxels

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
PRIMARIES = 10
REL = 1e-12


def _box(uuid: str, size: tuple[float, float, float], z: float) -> dict[str, Any]:
    width, height, depth = size
    parameters = {"width": width, "height": height, "depth": depth}
    data = {"geometryType": "BoxGeometry", "parameters": parameters, "position": [0, 0, z]}
    return {"uuid": uuid, "name": uuid, "geometryData": data}


def _detector(uuid: str, kind: str, parameters: dict[str, Any], z: float = 0) -> dict[str, Any]:
    data = {"geometryType": kind, "parameters": parameters, "position": [0, 0, z]}
    return {"uuid": uuid, "name": uuid, "geometryData": data}


def _quantity(keyword: str, filter_uuid: str | None = None, **extra: Any) -> dict[str, Any]:
    name = keyword + (f"_{filter_uuid}" if filter_uuid else "")
    return {"name": name, "keyword": keyword, "filter": filter_uuid, "modifiers": [], **extra}


ENERGY_BINS = [{"diffType": "E", "lowerLimit": 0, "upperLimit": 100, "binsNumber": 2}]
STEP_OUTPUTS = {
    "mesh": ("mesh", [
        _quantity("Dose"),
        _quantity("Fluence", "primaries"),
        _quantity("AvgEnergy", "primaries"),
        _quantity("tLET"),
        _quantity("dLET"),
        _quantity("Energy"),
        _quantity("Fluence", modifiers=ENERGY_BINS),
    ]),
    "ring": ("ring", [_quantity("Dose")]),
    "zone": ("zone", [_quantity("Dose"), _quantity("Fluence")]),
    "all": ("all", [_quantity("Energy")]),
}  # fmt: skip


def slab_project(outputs: dict[str, tuple[str, list[dict[str, Any]]]]) -> EditorProject:
    """Water z∈[0, 2] and density-2 bone z∈[2, 4] (10 × 10 cm) in a 20 cm air box, with a
    2 × 1 × 2 mesh over x∈[-1, 1], z∈[0, 4], a ring r∈[1, 2], z∈[0, 2], the water zone and
    the whole world as detectors."""
    materials = [
        {"uuid": "water", "name": "WATER", "icru": 276, "density": 1.0},
        {"uuid": "bone", "name": "BONE", "icru": 119, "density": 2.0},
        {"uuid": "air", "name": "AIR", "icru": 104, "density": 0.0012},
    ]
    zones = [
        {"uuid": f"z-{m}", "name": m, "materialUuid": m,
         "unionOperations": [[{"mode": "union", "objectUuid": m}]]}
        for m in ("water", "bone")
    ]  # fmt: skip
    zones[1]["materialPropertiesOverrides"] = {"density": 2.0}  # the library's bone is 1.85
    world = {**_box("world", (20, 20, 20), 0), "uuid": "w", "name": "World", "materialUuid": "air"}
    mesh = {"width": 2, "height": 2, "depth": 4, "xSegments": 2, "ySegments": 1, "zSegments": 2}
    ring = {"radius": 2, "innerRadius": 1, "depth": 2, "radialSegments": 1, "zSegments": 1}
    detectors = [
        _detector("mesh", "Mesh", mesh, 2),
        _detector("ring", "Cyl", ring, 1),
        _detector("zone", "Zone", {"zoneUuid": "z-water"}),
        _detector("all", "All", {}),
        _detector("thin", "Mesh", {**mesh, "depth": 0.1, "zSegments": 1}, 2.5),
        _detector("axis", "Cyl", {**ring, "innerRadius": 0, "radius": 1}, 2),
        _detector("rings", "Cyl", {**ring, "innerRadius": 0, "zSegments": 8}, 1),
    ]
    rules = [("Z", "==", 1), ("A", "==", 1), ("GEN", "==", 0)]
    filters = [
        {"uuid": "primaries", "name": "Primaries",
         "rules": [{"keyword": k, "operator": o, "value": v} for k, o, v in rules]},
        {"uuid": "protons", "name": "Protons",
         "rules": [{"keyword": k, "operator": o, "value": v} for k, o, v in rules[:2]]},
    ]  # fmt: skip
    return parse_project(
        {
            "figureManager": {
                "figures": [_box("water", (10, 10, 2), 1), _box("bone", (10, 10, 2), 3)]
            },
            "zoneManager": {"zones": zones, "worldZone": world},
            "materialManager": {"materials": materials},
            "detectorManager": {"detectors": detectors},
            "scoringManager": {
                "filters": filters,
                "outputs": [
                    {"uuid": name, "name": name, "detectorUuid": detector, "quantities": quantities}
                    for name, (detector, quantities) in outputs.items()
                ],
            },
            "beam": {
                "particle": {"id": 2, "name": "Proton"},
                "energy": 100,
                "numberOfParticles": 10,
            },
        }
    )


def batch(rows: list[tuple[float, ...]]) -> StepBatch:
    """Steps as (x, y, z, edep, length, energy, let, zone, generation, charge, mass)."""
    columns = list(zip(*rows, strict=True))
    floats = [np.array(column, dtype=np.float64) for column in columns[:7]]
    ints = [np.array(column, dtype=np.int32) for column in columns[7:]]
    return StepBatch(*floats, *ints)


# x, y, z, edep, length, energy, let, zone, generation, charge, mass
STEPS = [
    (-0.5, 0.0, 1.0, 2.0, 0.50, 80.0, 1.0, 0, 0, 1, 1),  # mesh bin (0, 0), water, primary
    (0.5, 0.0, 1.0, 1.0, 0.25, 40.0, 2.0, 0, 1, 1, 1),  # mesh bin (1, 0), secondary
    (0.5, 0.0, 3.0, 4.0, 0.50, 20.0, 4.0, 1, 0, 1, 1),  # mesh bin (1, 1), bone
    (1.5, 0.0, 1.0, 3.0, 1.00, 60.0, 1.5, 0, 0, 1, 1),  # outside the mesh, in the ring
    (0.5, 0.5, 3.0, 1.0, 0.25, 30.0, 3.0, 1, 0, 2, 4),  # mesh bin (1, 1), an alpha
]


@pytest.fixture(scope="module")
def slabs() -> EditorProject:
    return slab_project(STEP_OUTPUTS)


@pytest.fixture(scope="module")
def grid(slabs: EditorProject) -> VoxelGrid:
    return voxelise(slabs, spacing=0.5)


@pytest.fixture(scope="module")
def scored(slabs: EditorProject, grid: VoxelGrid) -> dict[str, dict[str, Any]]:
    scoring = Scoring(slabs, grid)
    scoring.add(batch(STEPS[:2]))
    scoring.add(batch(STEPS[2:]))  # batches accumulate
    estimators = scoring.estimators(PRIMARIES)
    validate_estimators(estimators)
    return {estimator["name"]: estimator for estimator in estimators}


def values(estimator: dict[str, Any], page: int) -> list[float]:
    result: list[float] = estimator["pages"][page]["data"]["values"]
    return result


def test_dose_is_edep_over_density_and_bin_volume_per_primary(
    scored: dict[str, dict[str, Any]],
) -> None:
    volume = 1 * 2 * 2  # cm³ per mesh bin
    expected = [2 / 1 / volume, 1 / 1 / volume, 0, (4 / 2 + 1 / 2) / volume]
    assert values(scored["mesh"], 0) == pytest.approx([v / PRIMARIES for v in expected], rel=REL)
    page = scored["mesh"]["pages"][0]
    assert page["dimensions"] == 2  # x and z; y has one bin
    assert page["axis_dim1"] == {"name": "Position (X)", "unit": "cm", "values": [-0.5, 0.5]}
    assert page["axis_dim2"] == {"name": "Position (Z)", "unit": "cm", "values": [1.0, 3.0]}
    assert (page["data"]["name"], page["data"]["unit"]) == ("DOSE", "MeV/g/prim")
    assert values(scored["ring"], 0) == pytest.approx([3 / (math.pi * 3 * 2) / PRIMARIES])
    assert values(scored["zone"], 0) == pytest.approx([(2 + 1 + 3) / 200 / PRIMARIES])


def test_filtered_fluence_and_its_average_energy(scored: dict[str, dict[str, Any]]) -> None:
    # The primaries filter (Z = 1, A = 1, GEN = 0) keeps steps 1 and 3 in the mesh.
    assert values(scored["mesh"], 1) == pytest.approx([0.5 / 4 / 10, 0, 0, 0.5 / 4 / 10], rel=REL)
    assert values(scored["mesh"], 2) == pytest.approx([80, 0, 0, 20], rel=REL)
    for page in (1, 2):
        assert scored["mesh"]["pages"][page]["metadata"]["page_filter_name"] == "Primaries"
    assert values(scored["zone"], 1) == pytest.approx([(0.5 + 0.25 + 1) / 200 / PRIMARIES])


def test_track_and_dose_averaged_let_in_mev_per_cm(scored: dict[str, dict[str, Any]]) -> None:
    t_let = (0.5 * 4 + 0.25 * 3) / 0.75  # keV/µm, the last bin's two steps
    d_let = (4 * 4 + 1 * 3) / 5
    assert values(scored["mesh"], 3) == pytest.approx([10, 20, 0, 10 * t_let], rel=REL)
    assert values(scored["mesh"], 4) == pytest.approx([10, 20, 0, 10 * d_let], rel=REL)
    for page in (3, 4):
        assert scored["mesh"]["pages"][page]["data"]["unit"] == "MeV/cm"
        assert scored["mesh"]["pages"][page]["metadata"]["page_normalized"] == "3"


def test_deposited_energy_per_primary(scored: dict[str, dict[str, Any]]) -> None:
    assert values(scored["mesh"], 5) == pytest.approx([0.2, 0.1, 0, 0.5], rel=REL)
    assert values(scored["all"], 0) == pytest.approx([11 / PRIMARIES], rel=REL)
    assert scored["all"]["pages"][0]["dimensions"] == 0


def test_energy_differential_fluence_adds_an_axis(scored: dict[str, dict[str, Any]]) -> None:
    page = scored["mesh"]["pages"][6]
    assert page["dimensions"] == 3
    assert page["axis_dim3"] == {"name": "", "unit": "MeV", "values": [25.0, 75.0]}
    per_bin = 4 * PRIMARIES
    expected = [0, 0.25 / per_bin, 0, 0.75 / per_bin, 0.5 / per_bin, 0, 0, 0]
    assert page["data"]["values"] == pytest.approx(expected, rel=REL)
    assert page["data"]["unit"] == "/cm^2;MeV/prim"
    assert page["metadata"]["page_diff_size"] == "[2 1]"
    assert page["metadata"]["page_diff_type"] == "[27 27]"


def test_estimators_follow_the_outputs_and_their_quantities(
    scored: dict[str, dict[str, Any]],
) -> None:
    assert list(scored) == ["mesh", "ring", "zone", "all"]
    mesh = scored["mesh"]
    assert [p["metadata"]["page_number"] for p in mesh["pages"]] == [str(j) for j in range(7)]
    assert [p["data"]["name"] for p in mesh["pages"]] == [
        "DOSE", "FLUENCE", "AVG-ENERGY", "TLET", "DLET", "ENERGY", "FLUENCE",
    ]  # fmt: skip
    assert mesh["metadata"]["number_of_primaries"] == "10"
    assert mesh["metadata"]["file_counter"] == "1"
    assert mesh["metadata"]["page_count"] == "7"
    assert mesh["metadata"]["error_type"] == "0"
    assert mesh["metadata"]["geotyp"] == "MSH"


def test_scoring_refuses_a_quantity_it_does_not_score(grid: VoxelGrid) -> None:
    project = slab_project({"mesh": ("mesh", [_quantity("DoseGy")])})
    with pytest.raises(UnsupportedFeature, match="the quantity 'DoseGy' of output 'mesh'"):
        Scoring(project, grid)


def test_steps_outside_every_detector_change_nothing(slabs: EditorProject, grid: VoxelGrid) -> None:
    scoring = Scoring(slabs, grid)
    scoring.add(batch([(8.0, 8.0, 8.0, 5.0, 1.0, 50.0, 1.0, 2, 0, 1, 1)]))
    estimators = scoring.estimators(1)
    assert all(v == 0 for v in values(estimators[0], 0))
    assert values(estimators[3], 0) == [5.0]  # but the world holds it


# --- voxel doses -------------------------------------------------------------------------------


def voxel_fields(grid: VoxelGrid) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Dose 1 MeV/g/prim and LET 2 keV/µm in water, 3 and 5 in bone, nothing elsewhere."""
    dose = np.select([grid.zones == 0, grid.zones == 1], [1.0, 3.0], 0.0)
    let = np.select([grid.zones == 0, grid.zones == 1], [2.0, 5.0], 0.0)
    return dose, let


def test_voxel_dose_is_mass_weighted_and_let_dose_weighted() -> None:
    project = slab_project(
        {"axis": ("axis", [_quantity("Dose"), _quantity("dLET", "protons")]),
         "thin": ("thin", [_quantity("Dose")])}
    )  # fmt: skip
    grid = voxelise(project, spacing=0.5)
    dose, let = voxel_fields(grid)
    estimators = estimators_from_voxels(project, grid, dose, let, 1120)
    validate_estimators(estimators)
    axis, thin = estimators
    # Half the axis cylinder's voxels are water (ρ 1, D 1), half bone (ρ 2, D 3).
    assert values(axis, 0) == pytest.approx([(1 * 1 + 2 * 3) / (1 + 2)], rel=1e-9)
    assert values(axis, 1) == pytest.approx([10 * (1 * 1 * 2 + 2 * 3 * 5) / (1 * 1 + 2 * 3)])
    assert axis["pages"][1]["data"]["unit"] == "MeV/cm"
    assert axis["metadata"]["number_of_primaries"] == "1120"
    # The thin slab at z = 2.5 holds no voxel centre: the voxel under it is bone.
    assert values(thin, 0) == pytest.approx([3.0, 3.0])


def test_voxel_scoring_refuses_what_dose_and_let_cannot_give() -> None:
    project = slab_project(
        {"mesh": ("mesh", [_quantity("Dose", "primaries"), _quantity("Fluence")])}
    )
    grid = voxelise(project, spacing=1)
    dose, let = voxel_fields(grid)
    with pytest.raises(UnsupportedFeature) as caught:
        estimators_from_voxels(project, grid, dose, let, 1)
    assert "the quantity 'Fluence' of output 'mesh'" in str(caught.value)
    assert "the filter 'Primaries' of quantity 'Dose_primaries'" in str(caught.value)


def test_voxel_let_is_served_only_as_the_let_of_protons() -> None:
    """Issue 19, item 6: the engine's LET is that of protons; a dLET for all particles (which
    heavier fragments raise in SHIELD-HIT12A) is refused, saying what to ask for."""
    project = slab_project({"axis": ("axis", [_quantity("Dose"), _quantity("dLET")])})
    grid = voxelise(project, spacing=1)
    dose, let = voxel_fields(grid)
    with pytest.raises(UnsupportedFeature) as caught:
        estimators_from_voxels(project, grid, dose, let, 1)
    message = str(caught.value)
    assert (
        "quantity 'dLET' of output 'axis' without a filter for protons (Z == 1, A == 1)" in message
    )


# --- ex1 -------------------------------------------------------------------------------------


def _layout(estimator: dict[str, Any], axis: str, number: str) -> list[Any]:
    pages = sorted(estimator["pages"], key=lambda page: int(page["metadata"][number]))
    return [
        (
            page["data"]["name"],
            page["data"]["unit"],
            page["dimensions"],
            [
                (page[f"{axis}{k}"]["name"], len(page[f"{axis}{k}"]["values"]))
                for k in range(1, page["dimensions"] + 1)
            ],
        )
        for page in pages
    ]


def test_ex1_estimators_are_laid_out_as_shieldhit_wrote_them() -> None:
    path = FIXTURES / "ex1.json"
    if not path.is_file():
        pytest.skip(f"YAPTIDE example {path} is absent (shared fixtures not checked out)")
    document = json.loads(path.read_text())
    project = parse_project(document["input"]["inputJson"])
    scoring = Scoring(project, voxelise(project, spacing=0.4))
    rng = np.random.default_rng(5)
    n = 10_000
    steps = [
        rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), rng.uniform(0, 20, n),
        rng.uniform(0, 0.3, n), rng.uniform(0, 0.1, n), rng.uniform(1, 150, n),
        rng.uniform(0.5, 8, n),
    ]  # fmt: skip
    ints = [np.zeros(n), (rng.random(n) < 0.2), np.ones(n), np.ones(n)]
    scoring.add(StepBatch(*steps, *(column.astype(np.int32) for column in ints)))
    estimators = validate_estimators(scoring.estimators(666))
    stored = document["estimators"]  # the UI export: camelCase keys, pages unsorted
    assert [e["name"] for e in estimators] == [e["name"] for e in stored]
    for ours, theirs in zip(estimators, stored, strict=True):
        assert _layout(ours, "axis_dim", "page_number") == _layout(
            theirs, "axisDim", "pageNumber"
        ), ours["name"]
    dose = values(estimators[0], 0)
    assert all(v > 0 for v in dose)


def test_voxel_dose_reaches_every_bin_narrower_than_a_voxel() -> None:
    """Eight 2.5 mm depth bins over 5 mm voxels: each bin gets the mean over the whole ring of
    the voxel layer it lies in, not nothing and not the value of one voxel under it."""
    project = slab_project({"rings": ("rings", [_quantity("Dose")])})
    grid = voxelise(project, spacing=0.5)
    i, _, k = np.indices(grid.shape, dtype=np.float64)
    dose = (1.0 + k) * (1.0 + i)  # varies across the ring as well as with depth
    (rings,) = estimators_from_voxels(project, grid, dose, None, 1)
    depths = np.asarray(rings["pages"][0]["axis_dim1"]["values"])
    layer = 1.0 + np.floor((depths - grid.origin[2]) / grid.spacing[2])
    across = np.asarray(values(rings, 0)) / layer
    # One lateral mean for every bin, strictly inside the range the ring's voxels span.
    assert across == pytest.approx([across[0]] * 8, rel=1e-12)
    on_axis = 1.0 + np.floor(-grid.origin[0] / grid.spacing[0])
    assert across[0] != pytest.approx(on_axis) and across[0] == pytest.approx(on_axis, rel=0.05)
