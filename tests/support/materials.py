"""Editor projects for the material tests (issue 19): a library material with a stale density,
and the ``customMaterial`` the editor writes when a user changes a zone's density.

Both start from the UI's ex1 (a 20 cm water cylinder from z = 0 in a vacuum zone, a 150 MeV
proton beam along z).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "yaptide"
AIR_UUID = "6a1f0a52-8d13-4e2a-9d0c-0d1a1e5a0a10"
CUSTOM_UUID = "b3c1d2e4-5f60-4718-8a9b-0c1d2e3f4a5b"
AIR_GAP_CM = 10.0  # of air between the beam's start and the water


def ex1() -> dict[str, Any]:
    path = FIXTURES / "ex1.json"
    if not path.is_file():
        pytest.skip(f"YAPTIDE example {path} is absent (shared fixtures not checked out)")
    project: dict[str, Any] = json.loads(path.read_text())["input"]["inputJson"]
    return project


def _zone(project: dict[str, Any], name: str) -> dict[str, Any]:
    zone: dict[str, Any] = next(z for z in project["zoneManager"]["zones"] if z["name"] == name)
    return zone


def air_gap(air_density: float, primaries: int | None = None) -> dict[str, Any]:
    """ex1 with its vacuum zone made of AIR, listed at ``air_density`` (the library's is
    0.00120479 g/cm³), reaching 10 cm upstream of the water, where the beam now starts."""
    project = copy.deepcopy(ex1())
    project["materialManager"]["materials"].append(
        {
            "uuid": AIR_UUID,
            "name": "AIR, DRY (NEAR SEA LEVEL)",
            "sanitizedName": "air_dry_near_sea_level",
            "icru": 104,
            "density": air_density,
            "color": "#ffffff",
        }
    )
    _zone(project, "Vacuum_zone")["materialUuid"] = AIR_UUID
    figure = next(f for f in project["figureManager"]["figures"] if f["name"] == "Vacuum_cylinder")
    # from z = -10.5 to 21.5 (was -0.5 to 21.5); the world from -11.5 to 22.5
    figure["geometryData"]["parameters"]["depth"] = 32
    figure["geometryData"]["position"] = [0, 0, 5.5]
    world = project["zoneManager"]["worldZone"]["geometryData"]
    world["parameters"]["depth"] = 34
    world["position"] = [0, 0, 5.5]
    project["beam"]["position"] = [0, 0, -AIR_GAP_CM]
    if primaries is not None:
        project["beam"]["numberOfParticles"] = primaries
    return project


def custom_density(
    project: dict[str, Any], zone_name: str, density: float, *, sanitized: bool = False
) -> dict[str, Any]:
    """``project`` with ``zone_name``'s density changed as the editor writes it: the zone
    names a copy of its material (a new uuid, not in the material list; no sanitizedName
    unless ``sanitized``) and overrides the density."""
    changed = copy.deepcopy(project)
    zone = _zone(changed, zone_name)
    listed = {m["uuid"]: m for m in changed["materialManager"]["materials"]}
    custom = {
        k: v for k, v in listed[zone["materialUuid"]].items() if sanitized or k != "sanitizedName"
    }
    custom["uuid"] = CUSTOM_UUID
    zone["customMaterial"] = custom
    zone["materialUuid"] = CUSTOM_UUID
    zone["materialPropertiesOverrides"] = {"density": density}
    return changed
