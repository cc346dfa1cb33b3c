"""The outline every reader of an editor project relies on: malformed projects are refused
naming the item (never with a Python exception's text) by every converter and by the editor
model alike, and physically meaningless ones are refused before anything runs."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cyclotron.errors import PluginError
from cyclotron.simulators.builtin import physics
from cyclotron.simulators.builtin.plugin import BuiltinSimulator
from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.fluka import fluka_files
from cyclotron.simulators.converters.geant4 import geant4_files
from cyclotron.simulators.converters.shieldhit import shieldhit_files
from cyclotron.simulators.converters.topas import topas_files
from cyclotron.simulators.editor.model import parse_project
from cyclotron.simulators.mcsquare import install
from cyclotron.simulators.mcsquare.inputs import STOPPING_POWER_MAX_ENERGY
from cyclotron.simulators.mcsquare.plugin import McsquareSimulator

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
READERS: dict[str, Callable[[Any], object]] = {
    "shieldhit": shieldhit_files,
    "fluka": fluka_files,
    "topas": topas_files,
    "geant4": geant4_files,
    "model": parse_project,
}
# What a Python exception's text looks like (``KeyError: 'x'``, ``string indices must be
# integers``, ``'NoneType' object is not subscriptable``, ...): no refusal may read so.
PYTHON_TEXT = re.compile(
    r"\w+Error\b|object has no|object is not|NoneType|subscriptable|string indices|"
    r"list indices|unhashable|not iterable|argument|not supported between|unpack|<object"
)
Change = Callable[[dict[str, Any]], None]


def example(name: str = "ex1") -> dict[str, Any]:
    path = FIXTURES / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} is not among the fixtures")
    project: dict[str, Any] = json.loads(path.read_text())["input"]["inputJson"]
    return project


def refusal(reader: str, change: Change, name: str = "ex1") -> str:
    project = example(name)
    change(project)
    with pytest.raises(ConversionError) as refused:
        READERS[reader](project)
    return str(refused.value)


def figure(project: dict[str, Any], index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = project["figureManager"]["figures"][index]
    return found


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: figure(p)["geometryData"].pop("geometryType"),
            "figure 1 ('Water_phantom_cylinder'): missing geometryType",
        ),
        (
            lambda p: p["figureManager"].update(figures="abc"),
            "figureManager: figures must be a list, not 'abc'",
        ),
        (
            lambda p: p["figureManager"]["figures"].append("abc"),
            "figureManager: figures: item 3 must be an object, not 'abc'",
        ),
        (
            lambda p: figure(p, 1).update(geometryData="box"),
            "figure 2 ('Vacuum_cylinder'): geometryData must be an object, not 'box'",
        ),
        (lambda p: p.pop("beam"), "the project: missing beam"),
        (lambda p: p["beam"].update(particle="proton"), "particle must be an object"),
        (lambda p: p["beam"]["particle"].update(id="2"), "beam particle: id must be an integer"),
        (
            lambda p: p["zoneManager"]["zones"][0]["unionOperations"][0][0].pop("objectUuid"),
            "zone 1 ('Water_phantom_zone') operation 1.1: missing objectUuid",
        ),
        (
            lambda p: p["scoringManager"]["outputs"][0]["quantities"][0].pop("keyword"),
            "output 1 ('z_profile') quantity 1 ('Dose'): missing keyword",
        ),
        (
            lambda p: p["detectorManager"]["detectors"][0]["geometryData"].update(parameters=7),
            "detector 1 ('CylZ_Mesh'): parameters must be an object, not 7",
        ),
    ],
    ids=[
        "no-geometryType",
        "figures-text",
        "figure-text",
        "geometryData-text",
        "no-beam",
        "particle-text",
        "particle-id-text",
        "no-objectUuid",
        "no-keyword",
        "parameters-number",
    ],
)
def test_malformed_projects_are_refused_naming_the_item_by_every_reader(
    reader: str, change: Change, message: str
) -> None:
    refused = refusal(reader, change)
    assert message in refused
    assert not PYTHON_TEXT.search(refused), refused


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["beam"].update(energy=-100), "beam: energy must be positive, not -100"),
        (lambda p: p["beam"].update(energy=0), "beam: energy must be positive, not 0"),
        (
            lambda p: p["beam"].update(energy=float("nan")),
            "beam: energy must be a finite number, not nan",
        ),
        (
            lambda p: p["beam"].update(numberOfParticles=1.5),
            "beam: numberOfParticles must be a whole number from 1 to 1000000000000000, not 1.5",
        ),
        (
            lambda p: p["beam"].update(numberOfParticles=10**16),
            "beam: numberOfParticles must be a whole number from 1 to 1000000000000000",
        ),
        (
            lambda p: p["beam"].update(direction=[0, 0, 0]),
            "beam: direction must not be the zero vector",
        ),
        (
            lambda p: figure(p)["geometryData"]["parameters"].update(radius=0),
            "figure 1 ('Water_phantom_cylinder'): radius must be positive, not 0",
        ),
        (
            lambda p: figure(p)["geometryData"]["parameters"].update(depth=-20),
            "figure 1 ('Water_phantom_cylinder'): depth must be positive, not -20",
        ),
        (
            lambda p: figure(p)["geometryData"]["parameters"].update(innerRadius=5),
            "figure 1 ('Water_phantom_cylinder'): innerRadius must be from 0 to below radius",
        ),
        (
            lambda p: figure(p)["geometryData"].update(position=[0, float("inf"), 0]),
            "figure 1 ('Water_phantom_cylinder'): position must be three finite numbers",
        ),
        (
            lambda p: p["zoneManager"]["worldZone"]["geometryData"]["parameters"].update(depth=0),
            "world zone: depth must be positive, not 0",
        ),
        (
            lambda p: p["detectorManager"]["detectors"][1]["geometryData"]["parameters"].update(
                width=0
            ),
            "detector 2 ('YZ_Mesh'): width must be positive, not 0",
        ),
        (
            lambda p: p["detectorManager"]["detectors"][0]["geometryData"]["parameters"].update(
                zSegments=0
            ),
            "detector 1 ('CylZ_Mesh'): zSegments must be a whole number of at least 1, not 0",
        ),
        (
            lambda p: p["materialManager"]["materials"][0].update(density=-1),
            "density must be at least 0, not -1",
        ),
    ],
    ids=[
        "energy-negative",
        "energy-zero",
        "energy-nan",
        "primaries-fraction",
        "primaries-huge",
        "direction-zero",
        "radius-zero",
        "depth-negative",
        "hollow-inside-out",
        "position-infinite",
        "world-flat",
        "mesh-flat",
        "no-bins",
        "density-negative",
    ],
)
def test_physically_meaningless_projects_are_refused_by_every_reader(
    reader: str, change: Change, message: str
) -> None:
    assert message in refusal(reader, change)


def _schema_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Each place of the project once, the first item of a list standing for all of them."""
    yield path
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _schema_paths(value, (*path, key))
    elif isinstance(node, list) and node:
        yield from _schema_paths(node[0], (*path, 0))


REMOVED = object()
MUTATIONS = (REMOVED, None, "x", {})


def _mutated(project: dict[str, Any], path: tuple[Any, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(project)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent[key]
    if value is REMOVED:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return changed


@pytest.mark.parametrize("name", ["ex1", "ex8"])
def test_no_mutation_of_an_example_makes_a_reader_answer_with_python_internals(name: str) -> None:
    """Every value of the example removed or replaced by one of another kind: every reader
    converts it or refuses it with a ConversionError in the user's words."""
    project = example(name)
    leaks = []
    for path in _schema_paths(project):
        if not path or path[0] in ("hash", "metadata"):
            continue
        for value in MUTATIONS:
            changed = _mutated(project, path, value)
            for reader, read in READERS.items():
                try:
                    read(changed)
                except ConversionError as exc:
                    if PYTHON_TEXT.search(str(exc)):
                        leaks.append((reader, path, value, str(exc)))
                except Exception as exc:  # noqa: BLE001 - the leak this test looks for
                    leaks.append((reader, path, value, f"{type(exc).__name__}: {exc}"))
    assert leaks == []


# -- what one engine cannot run ---------------------------------------------------------------


def builtin_refusal(project: dict[str, Any]) -> str:
    with pytest.raises(PluginError) as refused:
        BuiltinSimulator({}).read_project(project)
    return refused.value.message


def test_builtin_refuses_beam_energies_outside_its_tables() -> None:
    low, high = physics.TABLE_MIN_ENERGY, physics.TABLE_MAX_ENERGY
    project = example()
    BuiltinSimulator({}).read_project(project)  # 150 MeV protons run
    for energy in (high * 1.5, low / 2):
        project["beam"]["energy"] = energy
        assert f"the beam energy {energy:g} MeV (its tables cover {low:g} to {high:g} MeV)" in (
            builtin_refusal(project)
        )


def test_builtin_refuses_a_particle_it_does_not_transport() -> None:
    project = example()
    project["beam"]["particle"] = {"id": 24, "name": "Alpha", "a": 4, "z": 2}
    assert "the beam particle Alpha: not supported by the builtin engine" in (
        builtin_refusal(project)
    )


def test_mcsquare_refuses_beam_energies_above_its_stopping_power_tables() -> None:
    project = example()
    project["beam"]["energy"] = STOPPING_POWER_MAX_ENERGY + 50
    with pytest.raises(PluginError) as refused:
        McsquareSimulator({}).read_project(project)
    assert "the beam energy 450 MeV (its tables cover 0 to 400 MeV)" in refused.value.message


def test_mcsquare_bound_is_the_top_of_its_installed_tables() -> None:
    root = install.engine_root()
    if root is None:
        pytest.skip("opentps-core (MCsquare) is not installed")
    rows = (root / "Materials" / "Water" / "PSTAR_Stop_Pow.dat").read_text().splitlines()
    assert max(float(row.split()[0]) for row in rows if row.strip()) == STOPPING_POWER_MAX_ENERGY
