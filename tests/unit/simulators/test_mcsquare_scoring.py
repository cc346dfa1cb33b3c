"""The grid MCsquare scores on: the CT's voxels split where the detectors' bins are finer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.yaptide import FIXTURES, FIXTURES_ABSENT

from cyclotron.simulators.editor.geometry import voxelise
from cyclotron.simulators.editor.model import parse_project
from cyclotron.simulators.editor.project import EditorProject
from cyclotron.simulators.mcsquare import inputs
from cyclotron.simulators.mcsquare.scoring import scoring_grid, scoring_settings


@pytest.fixture(scope="module")
def ex1() -> dict[str, Any]:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    document: dict[str, Any] = json.loads((FIXTURES / "ex1.json").read_text())
    project = copy.deepcopy(document["input"]["inputJson"])
    for output in project["scoringManager"]["outputs"]:
        kept = [q for q in output["quantities"] if q["keyword"] in {"Dose", "dLET"}]
        output["quantities"] = [{**q, "modifiers": []} for q in kept]
    return project


def _with_detectors(ex1: dict[str, Any], *names: str) -> EditorProject:
    """ex1 keeping only the outputs on the named detectors."""
    project = copy.deepcopy(ex1)
    uuids = {d["uuid"] for d in project["detectorManager"]["detectors"] if d["name"] in set(names)}
    outputs = project["scoringManager"]["outputs"]
    project["scoringManager"]["outputs"] = [o for o in outputs if o["detectorUuid"] in uuids]
    return parse_project(project)


def test_ex1s_half_millimetre_bins_are_scored_on_half_millimetre_voxels(
    ex1: dict[str, Any],
) -> None:
    project = parse_project(ex1)
    grid = voxelise(project, spacing=0.1)
    scoring = scoring_grid(project, grid)
    np.testing.assert_allclose(scoring.spacing, 0.05)
    # The box around the detectors (the 10 cm wide, 20 cm deep cylinder), on the CT's edges.
    np.testing.assert_allclose(scoring.origin, (-5.0, -5.0, 0.0), atol=1e-12)
    assert scoring.shape == (200, 200, 400)
    # Each scoring voxel takes the zone of the CT voxel it lies in.
    np.testing.assert_array_equal(scoring.zones[::2, ::2, ::2], grid.zones[10:110, 10:110, 15:215])
    assert (
        inputs.dead_voxels(scoring).sum()
        == 8 * inputs.dead_voxels(grid)[10:110, 10:110, 15:215].sum()
    )


def test_bins_no_finer_than_a_voxel_are_scored_on_the_ct(ex1: dict[str, Any]) -> None:
    project = _with_detectors(ex1, "EntrySlab", "PeakSlab")  # one bin each, 1 mm deep
    grid = voxelise(project, spacing=0.1)
    assert scoring_grid(project, grid) is grid
    assert scoring_settings(grid, grid) == {}


def test_the_split_shrinks_to_stay_under_the_voxel_limit(ex1: dict[str, Any]) -> None:
    project = _with_detectors(ex1, "YZ_Mesh")  # 0.5 x 4 x 20 cm in 0.5 mm bins
    grid = voxelise(project, spacing=0.2)  # the mesh lies in 4 x 20 x 101 of its voxels
    assert scoring_grid(project, grid).shape == (16, 80, 404)  # 4 parts: 0.5 mm voxels
    assert scoring_grid(project, grid, max_voxels=300_000).shape == (12, 60, 303)
    assert scoring_grid(project, grid, max_voxels=60_000) is grid


def _scoring_also(ex1: dict[str, Any], kind: str, parameters: dict[str, Any]) -> EditorProject:
    """ex1's YZ_Mesh output and one more on a detector of ``kind``."""
    project = copy.deepcopy(ex1)
    mesh = next(d for d in project["detectorManager"]["detectors"] if d["name"] == "YZ_Mesh")
    extra = {**mesh, "uuid": "extra", "name": kind}
    extra["geometryData"] = {**mesh["geometryData"], "geometryType": kind}
    extra["geometryData"]["parameters"] = parameters
    project["detectorManager"]["detectors"].append(extra)
    outputs = project["scoringManager"]["outputs"]
    output = next(o for o in outputs if o["detectorUuid"] == mesh["uuid"])
    project["scoringManager"]["outputs"] = [output, {**output, "detectorUuid": "extra"}]
    return parse_project(project)


def test_a_zone_detector_widens_the_grid_to_its_zone_and_an_all_detector_to_the_ct(
    ex1: dict[str, Any],
) -> None:
    water = next(z for z in ex1["zoneManager"]["zones"] if z["name"] == "Water_phantom_zone")
    project = _scoring_also(ex1, "Zone", {"zoneUuid": water["uuid"]})
    grid = voxelise(project, spacing=0.1)
    scoring = scoring_grid(project, grid)
    # The water cylinder's voxels (r 5 cm, z 0-20 cm) in 0.5 mm voxels, for the mesh's bins.
    assert scoring.shape == (200, 200, 400)
    np.testing.assert_allclose(scoring.origin, (-5.0, -5.0, 0.0), atol=1e-12)
    # The whole world in 0.5 mm voxels would be 27.6 million: it is scored on the CT.
    project = _scoring_also(ex1, "All", {})
    grid = voxelise(project, spacing=0.1)
    assert scoring_grid(project, grid) is grid
    assert scoring_grid(project, grid, max_voxels=30_000_000).shape == (240, 240, 480)


def test_the_config_asks_mcsquare_for_the_scoring_grid(ex1: dict[str, Any], tmp_path: Path) -> None:
    project = _with_detectors(ex1, "YZ_Mesh")
    grid = voxelise(project, spacing=0.1)
    scoring = scoring_grid(project, grid)
    config = inputs.prepare_run(tmp_path, grid, project.beam, 100, 1, scoring=scoring)
    lines = {line.split()[0]: line for line in config.read_text().splitlines()}
    assert lines["Independent_scoring_grid"] == "Independent_scoring_grid True"
    # In cm from the CT's first corner; MCsquare refuses a vector that ends its line.
    assert lines["Scoring_origin"] == "Scoring_origin 5.7 4 1.5 "
    assert lines["Scoring_grid_size"] == "Scoring_grid_size 12 80 400 "
    assert lines["Scoring_voxel_spacing"] == "Scoring_voxel_spacing 0.05 0.05 0.05 "
    plain = inputs.prepare_run(tmp_path / "plain", grid, project.beam, 100, 1)
    assert "Independent_scoring_grid" not in plain.read_text()
