"""``set_total_primaries``: a native submission's ``input.primaries`` written into engine input
files, so that each task's share (read from the files when it starts) comes from that total."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclotron.domain.ports import SimulatorPlugin
from cyclotron.errors import PluginError
from cyclotron.simulators.fluka import FlukaSimulator
from cyclotron.simulators.geant4 import Geant4Simulator
from cyclotron.simulators.shieldhit import ShieldhitSimulator
from cyclotron.simulators.topas import TopasSimulator

BEAM_DAT = (
    "RNDSEED      89736501\nJPART0           2\nTMAX0         150.0   0.0\nNSTAT   10000  -1\n"
)
FLUKA_INP = (
    "TITLE\nproton beam\n"
    "BEAM        -0.15                                                  PROTON\n"
    "START         1000.\n"
    "STOP\n"
)
TOPAS_TXT = 's:So/Demo/Type = "Beam"\ni:So/Demo/NumberOfHistoriesInRun = 20\ni:Ts/Seed = 1\n'
GEANT4_MAC = "/run/initialize\n/gps/particle proton\n/run/beamOn 500\n"

CASES = [
    (ShieldhitSimulator, {"beam.dat": BEAM_DAT}, "beam.dat", "NSTAT   10000  -1", "NSTAT   7  -1"),
    (
        FlukaSimulator,
        {"beam.inp": FLUKA_INP},
        "beam.inp",
        "START         1000.",
        "START" + "7.".rjust(15),
    ),
    (TopasSimulator, {"beam.txt": TOPAS_TXT}, "beam.txt", "InRun = 20", "InRun = 7"),
    (Geant4Simulator, {"run.mac": GEANT4_MAC}, "run.mac", "/run/beamOn 500", "/run/beamOn 7"),
]


@pytest.mark.parametrize(("plugin_class", "files", "name", "before", "after"), CASES)
def test_the_files_state_the_new_total_and_nothing_else_changes(
    tmp_path: Path,
    plugin_class: type[SimulatorPlugin],
    files: dict[str, str],
    name: str,
    before: str,
    after: str,
) -> None:
    for file_name, text in files.items():
        (tmp_path / file_name).write_text(text)
    plugin = plugin_class({"executable": "engine"})
    plugin.set_total_primaries(tmp_path, 7)
    assert plugin.total_primaries(tmp_path) == 7
    written = (tmp_path / name).read_text()
    assert written == files[name].replace(before, after)


def test_fluka_tasks_share_the_new_total(tmp_path: Path) -> None:
    (tmp_path / "beam.inp").write_text(FLUKA_INP)
    plugin = FlukaSimulator({"executable": "rfluka"})
    plugin.set_total_primaries(tmp_path, 10)
    plugin.task_command(tmp_path, 0, 3, seed=1)  # task 0 of 3: 4 of the 10 primaries
    assert plugin.total_primaries(tmp_path) == 4


def test_input_without_a_number_of_primaries_is_refused(tmp_path: Path) -> None:
    (tmp_path / "beam.dat").write_text("JPART0 2\n")
    with pytest.raises(PluginError, match="no number of primaries"):
        ShieldhitSimulator({"executable": "shieldhit"}).set_total_primaries(tmp_path, 7)
    (tmp_path / "run.mac").write_text("/run/initialize\n")
    with pytest.raises(PluginError, match="beamOn"):
        Geant4Simulator({"executable": "g4app"}).set_total_primaries(tmp_path, 7)
