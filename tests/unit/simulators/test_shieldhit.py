"""The shieldhit plug-in: availability, input checks, the per-task NSTAT and progress lines."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from cyclotron.domain.primaries import nstat_of
from cyclotron.errors import PluginError
from cyclotron.simulators.shieldhit import ShieldhitSimulator

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "shieldhit"
MOCK = FIXTURES / "mocks" / "shieldhit_minimal"
needs_fixtures = pytest.mark.skipif(
    not MOCK.is_dir(), reason=f"the shared SHIELD-HIT12A fixtures are absent ({MOCK})"
)


def _executable(tmp_path: Path) -> Path:
    program = tmp_path / "shieldhit"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


def test_the_executable_decides_availability(tmp_path: Path) -> None:
    assert "not configured" in (ShieldhitSimulator({}).unavailable_reason() or "")
    missing = ShieldhitSimulator({"executable": str(tmp_path / "nowhere")})
    assert "not an executable file" in (missing.unavailable_reason() or "")
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    assert ShieldhitSimulator({"executable": str(plain)}).unavailable_reason() is not None
    ready = ShieldhitSimulator({"executable": str(_executable(tmp_path))})
    assert ready.unavailable_reason() is None


@needs_fixtures
def test_validate_wants_the_four_inputs_and_a_readable_nstat(tmp_path: Path) -> None:
    plugin = ShieldhitSimulator({"executable": str(_executable(tmp_path))})
    inputs = tmp_path / "input"
    shutil.copytree(MOCK, inputs)
    plugin.validate(inputs)
    (inputs / "geo.dat").unlink()
    with pytest.raises(PluginError, match="geo.dat"):
        plugin.validate(inputs)
    shutil.copy(MOCK / "geo.dat", inputs / "geo.dat")
    (inputs / "beam.dat").write_text("JPART0 2\n")
    with pytest.raises(PluginError, match="NSTAT"):
        plugin.validate(inputs)


@needs_fixtures
def test_each_task_runs_its_share_with_its_own_seed(tmp_path: Path) -> None:
    program = _executable(tmp_path)
    plugin = ShieldhitSimulator({"executable": str(program)})
    shares = []
    for index in range(3):
        workdir = tmp_path / f"task{index}"
        shutil.copytree(MOCK, workdir)
        command = plugin.task_command(workdir, index, 3, seed=[11, 7, 2_147_483_647][index])
        assert command.argv[1:3] == ("-N", ["11", "7", "2147483647"][index])
        assert command.argv == (str(program), *command.argv[1:3], str(workdir))
        assert command.save_signal == signal.SIGUSR1
        shares.append(nstat_of((workdir / "beam.dat").read_text()))
    assert shares == [7, 7, 6]  # NSTAT 20 of the input, split exactly


@needs_fixtures
def test_progress_comes_from_the_real_transcript() -> None:
    plugin = ShieldhitSimulator({})
    lines = (MOCK / "shieldhit_stdout.txt").read_text().splitlines()
    reports = [r for r in map(plugin.parse_progress, lines) if r is not None]
    assert [r.done for r in reports][-1] == 20
    assert reports[0].eta_seconds is None  # the first line has no ETR yet
    assert all(r.eta_seconds == 0 for r in reports[1:])
    assert plugin.parse_progress(
        "  Primary particle no.  1200  ETR:  1 hours  2 minutes  5 seconds"
    )
    timed = plugin.parse_progress("Primary particle no.  1200  ETR:  1 hours  2 minutes  5 seconds")
    assert timed is not None and timed.done == 1200 and timed.eta_seconds == 3725


@needs_fixtures
def test_collect_reads_the_outputs_or_says_why_it_cannot(tmp_path: Path) -> None:
    plugin = ShieldhitSimulator({})
    workdir = tmp_path / "task"
    workdir.mkdir()
    with pytest.raises(PluginError, match="no .bdo"):
        plugin.collect_task(workdir)
    shutil.copy(MOCK / "mesh.bdo", workdir / "mesh_0001.bdo")
    plugin.collect_task(workdir)
    assert (workdir / "estimators.json").is_file()
    (workdir / "fluence_0001.bdo").write_bytes(b"")
    with pytest.raises(PluginError, match="fluence_0001.bdo"):
        plugin.collect_task(workdir)


def test_editor_projects_convert_for_the_whole_job_or_are_refused_by_name() -> None:
    example = FIXTURES.parent / "yaptide" / "ex1.json"
    if not example.is_file():
        pytest.skip(f"the shared YAPTIDE fixtures are absent ({example})")
    project = json.loads(example.read_text())["input"]["inputJson"]
    files = ShieldhitSimulator({}).editor_files(project)
    assert {"beam.dat", "mat.dat", "geo.dat", "detect.dat", "info.json"} <= set(files)
    assert nstat_of(files["beam.dat"]) == project["beam"]["numberOfParticles"]
    broken = json.loads(json.dumps(project))
    broken["beam"]["particle"] = {"id": 26, "name": "Electron", "a": 0, "z": -1}
    with pytest.raises(PluginError, match="Electron"):
        ShieldhitSimulator({}).editor_files(broken)
