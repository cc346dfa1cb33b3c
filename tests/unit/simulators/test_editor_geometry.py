"""Editor geometry: points classified into zones, voxelised worlds, detector bins."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cyclotron.simulators.editor.geometry import (
    DetectorBins,
    voxelise,
    world_bounds,
    zone_at,
)
from cyclotron.simulators.editor.model import EditorProject, parse_project

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
WATER, LEAD, AIR = "m-water", "m-lead", "m-air"


def box(
    uuid: str, size: tuple[float, float, float], at: Any = (0, 0, 0), turn: Any = (0, 0, 0)
) -> dict[str, Any]:
    width, height, depth = size
    return {
        "uuid": uuid,
        "name": uuid,
        "geometryData": {
            "geometryType": "BoxGeometry",
            "parameters": {"width": width, "height": height, "depth": depth},
            "position": list(at),
            "rotation": list(turn),
        },
    }


def cylinder(
    uuid: str,
    radius: float,
    depth: float,
    at: Any = (0, 0, 0),
    turn: Any = (0, 0, 0),
    inner: float = 0,
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "name": uuid,
        "geometryData": {
            "geometryType": "HollowCylinderGeometry",
            "parameters": {"radius": radius, "depth": depth, "innerRadius": inner},
            "position": list(at),
            "rotation": list(turn),
        },
    }


def sphere(uuid: str, radius: float, at: Any = (0, 0, 0)) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "name": uuid,
        "geometryData": {
            "geometryType": "SphereGeometry",
            "parameters": {"radius": radius},
            "position": list(at),
            "rotation": [0, 0, 0],
        },
    }


def zone(name: str, material: str, *terms: list[tuple[str, str]]) -> dict[str, Any]:
    operations = [[{"mode": mode, "objectUuid": uuid} for mode, uuid in term] for term in terms]
    return {
        "uuid": f"z-{name}",
        "name": name,
        "materialUuid": material,
        "unionOperations": operations,
    }


def project(
    figures: list[dict[str, Any]],
    zones: list[dict[str, Any]],
    world: dict[str, Any] | None = None,
    detectors: list[dict[str, Any]] | None = None,
) -> EditorProject:
    """A hand-made editor project: the given figures and zones in a 20 cm air box."""
    world_figure = world or box("world", (20, 20, 20))
    return parse_project(
        {
            "figureManager": {"figures": figures},
            "zoneManager": {
                "zones": zones,
                "worldZone": {**world_figure, "uuid": "w", "name": "World", "materialUuid": AIR},
            },
            "materialManager": {
                "materials": [
                    {"uuid": WATER, "name": "WATER", "icru": 276, "density": 1.0},
                    {"uuid": LEAD, "name": "LEAD", "icru": 82, "density": 11.35},
                    {"uuid": AIR, "name": "AIR", "icru": 104, "density": 0.0012},
                ]
            },
            "detectorManager": {"detectors": detectors or []},
            "scoringManager": {"outputs": [], "filters": []},
            "beam": {
                "particle": {"id": 2, "name": "Proton"},
                "energy": 100,
                "numberOfParticles": 1,
            },
        }
    )


# --- zones -----------------------------------------------------------------------------------


def test_rotated_box_and_cylinder_hold_the_points_their_turned_frames_hold() -> None:
    geometry = project(
        [
            box("bar", (4, 1, 1), turn=(0, 0, 90)),
            cylinder("rod", 0.5, 8, at=(0, 0, 5), turn=(0, 90, 0)),
        ],
        [zone("bar", LEAD, [("union", "bar")]), zone("rod", WATER, [("union", "rod")])],
    )
    points = [
        (0, 1.9, 0),  # the bar turned onto the y axis
        (1.9, 0, 0),  # no longer along x: air
        (3.9, 0, 5),  # the rod turned onto the x axis
        (0, 0, 8.9),  # no longer along z: air
        (0, 0.6, 5),  # outside the rod's radius
        (10.5, 0, 0),  # outside the world
    ]
    assert zone_at(geometry, points).tolist() == [0, 2, 1, 2, 2, -1]


def test_subtraction_intersection_and_union_of_terms() -> None:
    geometry = project(
        [box("cube", (6, 6, 6)), sphere("ball", 2), sphere("far", 1, at=(7, 0, 0))],
        [
            zone("shell", LEAD, [("union", "cube"), ("subtraction", "ball")], [("union", "far")]),
            zone("lens", WATER, [("union", "cube"), ("intersection", "ball")]),
        ],
    )
    points = [(0, 0, 0), (1.9, 0, 0), (2.1, 0, 0), (2.9, 2.9, 2.9), (7, 0, 0.9), (7, 0, 1.1)]
    assert zone_at(geometry, points).tolist() == [1, 1, 0, 0, 0, 2]


def test_terms_combine_left_to_right_from_nothing() -> None:
    # (cube − ball) ∪ ball is the whole cube; cube ∪ (ball − ball) would not hold the centre.
    geometry = project(
        [box("cube", (6, 6, 6)), sphere("ball", 2)],
        [zone("all", LEAD, [("union", "cube"), ("subtraction", "ball"), ("union", "ball")])],
    )
    assert zone_at(geometry, [(0, 0, 0), (2.5, 0, 0)]).tolist() == [0, 0]


def test_first_zone_wins_where_zones_overlap_and_surfaces_are_not_shared() -> None:
    geometry = project(
        [box("a", (4, 4, 4)), box("b", (4, 4, 4), at=(2, 0, 0))],
        [
            zone("a", WATER, [("union", "a")]),
            zone("b", LEAD, [("union", "b"), ("subtraction", "a")]),
        ],
    )
    assert zone_at(geometry, [(1, 0, 0), (2, 0, 0), (2.0001, 0, 0), (3.9, 0, 0)]).tolist() == [
        0,
        0,
        1,
        1,
    ]


def test_hollow_cylinder_excludes_its_bore() -> None:
    geometry = project([cylinder("tube", 3, 2, inner=1)], [zone("tube", LEAD, [("union", "tube")])])
    assert zone_at(geometry, [(0.5, 0, 0), (2, 0, 0), (0, 2.9, 0.9), (0, 3.1, 0)]).tolist() == [
        1,
        0,
        0,
        1,
    ]


def test_zone_at_works_in_chunks_for_many_points() -> None:
    geometry = project([sphere("ball", 5)], [zone("ball", WATER, [("union", "ball")])])
    points = np.random.default_rng(3).uniform(-10, 10, (2_500_000, 3))
    zones = zone_at(geometry, points)
    inside = np.linalg.norm(points, axis=1) <= 5
    assert np.array_equal(zones == 0, inside)
    assert np.array_equal(zones == 1, ~inside)


# --- voxels ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ex1() -> EditorProject:
    path = FIXTURES / "ex1.json"
    if not path.is_file():
        pytest.skip(f"YAPTIDE example {path} is absent (shared fixtures not checked out)")
    return parse_project(json.loads(path.read_text())["input"]["inputJson"])


def test_ex1_voxelised_at_1_mm_has_the_water_cylinder_in_vacuum_in_black_hole(
    ex1: EditorProject,
) -> None:
    grid = voxelise(ex1)  # 0.5 mm would need 27.6 M voxels, above the 20 M default bound
    assert grid.shape == (120, 120, 240)
    np.testing.assert_allclose(grid.spacing, [0.1, 0.1, 0.1])
    np.testing.assert_allclose(grid.origin, [-6, -6, -1.5])
    assert grid.zone_names == ("Water_phantom_zone", "Vacuum_zone", "World Zone")
    assert [grid.media[m].icru for m in grid.zone_media] == [276, 1000, 0]
    water = grid.zones == 0
    assert water.sum() * 1e-3 == pytest.approx(math.pi * 5**2 * 20, rel=5e-3)
    k = np.nonzero(water.any(axis=(0, 1)))[0]
    assert (k[0], k[-1]) == (15, 214)  # z from 0 to 20 cm
    assert grid.zones[60, 60, 120] == 0  # (0.05, 0.05, 10.55)
    assert grid.zones[60, 60, 12] == 1  # z = -0.25: vacuum in front of the water
    assert grid.zones[60, 60, 9] == 2  # z = -0.55: the black-hole shell
    assert grid.zones[0, 0, 120] == -1  # a corner of the box, outside the world cylinder


def test_default_spacing_doubles_until_the_grid_fits(ex1: EditorProject) -> None:
    grid = voxelise(ex1, max_voxels=400_000)  # 2 mm would need 432 000
    np.testing.assert_allclose(grid.spacing, [0.4, 0.4, 0.4])
    assert grid.shape == (30, 30, 60)
    with pytest.raises(ValueError, match="coarser spacing"):
        voxelise(ex1, spacing=0.05, max_voxels=1_000_000)


def test_world_bounds_of_a_turned_cylinder() -> None:
    geometry = project([], [], world=cylinder("world", 2, 10, at=(1, 0, 0), turn=(0, 90, 0)))
    low, high = world_bounds(geometry)
    np.testing.assert_allclose(low, [-4, -2, -2], atol=1e-12)
    np.testing.assert_allclose(high, [6, 2, 2], atol=1e-12)


# --- detector bins ---------------------------------------------------------------------------


def detector(
    kind: str, parameters: dict[str, Any], at: Any = (0, 0, 0), turn: Any = (0, 0, 0)
) -> dict[str, Any]:
    return {
        "uuid": f"d-{kind}",
        "name": kind,
        "geometryData": {
            "geometryType": kind,
            "parameters": parameters,
            "position": list(at),
            "rotation": list(turn),
        },
    }


def bins_of(geometry: EditorProject, points: list[tuple[float, float, float]]) -> list[int]:
    grid = voxelise(geometry, spacing=0.5)
    bins = DetectorBins(geometry, geometry.detectors[0], grid)
    xyz = np.array(points, dtype=np.float64)
    zones = zone_at(geometry, xyz)
    return bins.index(xyz[:, 0], xyz[:, 1], xyz[:, 2], zones).tolist()


def test_mesh_bins_are_numbered_with_x_fastest() -> None:
    mesh = detector(
        "Mesh",
        {"width": 4, "height": 2, "depth": 1, "xSegments": 4, "ySegments": 2, "zSegments": 1},
        at=(0, 0, 1),
    )
    geometry = project([], [], detectors=[mesh])
    points = [
        (-1.5, -0.5, 1),
        (0.5, -0.5, 1),
        (-1.5, 0.5, 1),
        (1.5, 0.5, 1.4),
        (2.1, 0, 1),
        (0, 0, 1.6),
    ]
    assert bins_of(geometry, points) == [0, 2, 4, 7, -1, -1]


def test_turned_mesh_bins_in_its_own_frame() -> None:
    mesh = detector(
        "Mesh",
        {"width": 4, "height": 1, "depth": 1, "xSegments": 2, "ySegments": 1, "zSegments": 1},
        turn=(0, 0, 90),
    )
    geometry = project([], [], detectors=[mesh])
    assert bins_of(geometry, [(0, -1, 0), (0, 1, 0), (1, 0, 0)]) == [0, 1, -1]


def test_cylinder_bins_in_radius_angle_and_depth_from_the_inner_radius() -> None:
    cyl = detector(
        "Cyl",
        {
            "radius": 3,
            "innerRadius": 1,
            "depth": 2,
            "radialSegments": 2,
            "angularSegments": 4,
            "zSegments": 2,
        },
        at=(0, 0, 5),
    )
    geometry = project([], [], detectors=[cyl])
    points = [
        (1.5, 0.1, 4.5),
        (2.5, 0.1, 4.5),
        (0, 1.5, 4.5),
        (-2.5, -0.1, 5.5),
        (0.5, 0, 5),
        (3.1, 0, 5),
    ]
    # r bin + 2·(φ quarter + 4·z bin)
    assert bins_of(geometry, points) == [0, 1, 2, 1 + 2 * (2 + 4), -1, -1]
    bins = DetectorBins(geometry, geometry.detectors[0], voxelise(geometry, spacing=1))
    assert bins.volumes[0] == pytest.approx(math.pi * (2**2 - 1) / 4 * 1)
    assert bins.volumes[1] == pytest.approx(math.pi * (9 - 4) / 4 * 1)
    assert [axis.name for axis in bins.axes] == ["Radius (R)", "Angle (PHI)", "Position (Z)"]
    np.testing.assert_allclose(bins.axes[2].values, [4.5, 5.5])


def test_zone_and_all_detectors_have_one_bin_with_the_zone_or_world_volume() -> None:
    geometry = project(
        [box("cube", (4, 4, 4))],
        [zone("cube", WATER, [("union", "cube")])],
        detectors=[detector("Zone", {"zoneUuid": "z-cube"}), detector("All", {})],
    )
    grid = voxelise(geometry, spacing=0.5)
    zone_bins, all_bins = (DetectorBins(geometry, d, grid) for d in geometry.detectors)
    assert zone_bins.volumes[0] == pytest.approx(64)
    assert all_bins.volumes[0] == pytest.approx(8000)
    x = np.zeros(3)
    assert zone_bins.index(x, x, x, np.array([0, 1, -1], dtype=np.int32)).tolist() == [0, -1, -1]
    assert all_bins.index(x, x, x, np.array([0, 1, -1], dtype=np.int32)).tolist() == [0, 0, -1]
