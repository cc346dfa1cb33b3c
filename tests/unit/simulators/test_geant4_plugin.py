"""The geant4 plug-in: per-task beamOn and seeds, event-line progress, dumped files, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cyclotron.errors import PluginError
from cyclotron.simulators.geant4 import Geant4Simulator, with_task_run
from cyclotron.simulators.geant4_outputs import read_geant4_outputs
from cyclotron.simulators.outputs import OutputError

EX8 = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide" / "ex8.json"
needs_ex8 = pytest.mark.skipif(not EX8.is_file(), reason=f"the ex8 fixture is absent ({EX8})")
MACRO = """/run/initialize
/score/create/boxMesh Slab
/score/mesh/translate/xyz 0 0 1 cm
/score/mesh/boxSize 10 10 5 mm
/score/mesh/nBin 1 1 2
/score/quantity/doseDeposit Dose
/score/close
/run/beamOn 100
/score/dumpQuantityToFile Slab Dose Slab_Dose.txt
"""


def _write_input(directory: Path, macro: str = MACRO) -> None:
    (directory / "geometry.gdml").write_text("<gdml/>")
    (directory / "run.mac").write_text(macro)


@needs_ex8
def test_beam_on_and_seeds_change_and_nothing_else(tmp_path: Path) -> None:
    files = json.loads(EX8.read_text())["input"]["inputFiles"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    command = Geant4Simulator({"executable": "g4app"}).task_command(tmp_path, 1, 3, seed=4711)
    assert command.argv[1:] == ("run.mac",)
    before = files["run.mac"].splitlines()
    after = (tmp_path / "run.mac").read_text().splitlines()
    at = before.index("/run/beamOn 20000")
    assert after[at : at + 3] == [
        "/random/setSeeds 4711 70247",
        "/run/printProgress 66",
        "/run/beamOn 6667",
    ]
    assert after[:at] + after[at + 3 :] == before[:at] + before[at + 1 :]


def test_an_existing_seeds_line_is_replaced_in_place() -> None:
    macro = "/random/setSeeds 7 8\n/run/printProgress 10\n/run/beamOn 50\n"
    assert with_task_run(macro, 17, 3) == (
        "/random/setSeeds 3 65539\n/run/printProgress 10\n/run/beamOn 17\n"
    )


def test_progress_takes_the_highest_event_started() -> None:
    parse = Geant4Simulator({}).progress_parser()
    lines = [
        "G4WT1 > --> Event 100 starts with initial seeds (1,2).",
        "G4WT0 > --> Event 0 starts with initial seeds (3,4).",
        "--> Event 200 starts.",
        "Run terminated.",
    ]
    assert [(r.done, r.total) for r in map(parse, lines) if r] == [(100, 0), (200, 0)]


def test_dumped_files_read_per_primary_on_the_mesh_axes(tmp_path: Path) -> None:
    _write_input(tmp_path)
    (tmp_path / "Slab_Dose.txt").write_text(
        "# mesh name: Slab\n# primitive scorer name: Dose\n"
        "# iX, iY, iZ, total(value) [Gy], total(val^2), entry\n"
        "0,0,0,2.5,1,10\n0,0,1,5,2,12\n"
    )
    (estimator,) = read_geant4_outputs(tmp_path / "run.mac")
    assert estimator["name"] == "Slab" and estimator["metadata"]["number_of_primaries"] == "100"
    (page,) = estimator["pages"]
    assert page["data"] == {"name": "Dose", "unit": "Gy/prim", "values": [0.025, 0.05]}
    assert page["axis_dim1"]["name"] == "Position (Z)"
    assert np.allclose(page["axis_dim1"]["values"], [0.75, 1.25])  # z 0.5 … 1.5 cm in 2 bins


def test_a_dumped_file_that_does_not_fit_its_mesh_is_an_output_error(tmp_path: Path) -> None:
    _write_input(tmp_path)
    (tmp_path / "Slab_Dose.txt").write_text(
        "# iX, iY, iZ, total(value) [Gy], total(val^2), entry\n0,0,0,1,1,1\n"
    )
    with pytest.raises(OutputError, match="1 rows for a mesh of 2 bins"):
        read_geant4_outputs(tmp_path / "run.mac")


@pytest.mark.parametrize(
    ("macro", "reason"),
    [
        (None, "lacks run.mac"),
        (MACRO.replace("/run/beamOn 100", ""), "exactly one /run/beamOn"),
        (MACRO + "/run/beamOn 5\n", "exactly one /run/beamOn"),
        (MACRO.replace("/score/dumpQuantityToFile Slab Dose Slab_Dose.txt", ""), "nothing to read"),
        (MACRO.replace("Slab Dose Slab_Dose", "Other Dose Slab_Dose"), "which no mesh defines"),
    ],
)
def test_unrunnable_input_is_refused(tmp_path: Path, macro: str | None, reason: str) -> None:
    (tmp_path / "geometry.gdml").write_text("<gdml/>")
    if macro is not None:
        (tmp_path / "run.mac").write_text(macro)
    with pytest.raises(PluginError, match=reason):
        Geant4Simulator({}).validate(tmp_path)


def test_without_an_executable_the_service_says_why() -> None:
    assert "Geant4 executable is not configured" in (Geant4Simulator({}).unavailable_reason() or "")
