"""The fluka plug-in: per-task START and RANDOMIZ cards, progress from the .out file, outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cyclotron.domain.primaries import start_of
from cyclotron.errors import PluginError
from cyclotron.simulators.fluka import FlukaSimulator, with_task_cards

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "shieldhit"
MINIMAL = FIXTURES / "fluka" / "fluka_minimal"
needs_fixtures = pytest.mark.skipif(
    not MINIMAL.is_dir(), reason=f"the shared FLUKA fixtures are absent ({MINIMAL})"
)


def _cards(text: str, keyword: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(keyword)]


@needs_fixtures
def test_each_task_gets_its_share_and_seed_and_nothing_else_changes(tmp_path: Path) -> None:
    original = (MINIMAL / "minimal.inp").read_text()
    rewritten = with_task_cards(original, 7, 3)
    assert start_of(rewritten) == 7
    (randomiz,) = _cards(rewritten, "RANDOMIZ")
    assert float(randomiz[10:20]) == 1.0 and float(randomiz[20:30]) == 3.0
    others = [line for line in original.splitlines() if not line.startswith(("START", "RANDOMIZ"))]
    assert [
        line for line in rewritten.splitlines() if not line.startswith(("START", "RANDOMIZ"))
    ] == others


def test_a_missing_randomiz_card_is_added_before_start() -> None:
    text = with_task_cards("TITLE\nbeam\nSTART        66666.0\n", 100, 2)
    lines = text.splitlines()
    assert lines[2].startswith("RANDOMIZ") and float(lines[2][20:30]) == 2.0
    assert start_of(text) == 100


@needs_fixtures
def test_task_commands_split_start_over_the_tasks(tmp_path: Path) -> None:
    program = tmp_path / "rfluka"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    plugin = FlukaSimulator({"executable": str(program)})
    assert plugin.unavailable_reason() is None
    shares = []
    for index in range(3):
        workdir = tmp_path / f"task{index}"
        workdir.mkdir()
        shutil.copy(MINIMAL / "minimal.inp", workdir)
        plugin.validate(workdir)
        command = plugin.task_command(workdir, index, 3, seed=900 + index)
        assert command.argv == (str(program), "-M", "1", "minimal")
        assert command.progress_files
        cards = (workdir / "minimal.inp").read_text()
        shares.append(start_of(cards))
        randomiz = next(line for line in cards.splitlines() if line.startswith("RANDOMIZ"))
        assert float(randomiz[20:30]) == 900 + index, randomiz  # WHAT(2): the task's seed
    assert shares == [7, 7, 6]  # START 20, split exactly


def test_without_rfluka_the_service_is_unavailable(tmp_path: Path) -> None:
    assert "not configured" in (FlukaSimulator({}).unavailable_reason() or "")
    nowhere = FlukaSimulator({"executable": str(tmp_path / "rfluka")})
    assert "not an executable" in (nowhere.unavailable_reason() or "")


def test_validate_wants_one_input_with_a_start_card(tmp_path: Path) -> None:
    plugin = FlukaSimulator({})
    with pytest.raises(PluginError, match="exactly one .inp"):
        plugin.validate(tmp_path)
    (tmp_path / "a.inp").write_text("TITLE\nno start\n")
    with pytest.raises(PluginError, match="START"):
        plugin.validate(tmp_path)


def test_progress_is_the_row_after_each_header() -> None:
    parse = FlukaSimulator({}).progress_parser()
    lines = [
        " some text 12 34",
        "1NUMBER OF BEAM     NUMBER OF BEAM      AVERAGE TIME USED",
        "  PARTICLES HANDLED  PARTICLES LEFT",
        "           1000            99000      1.2E-03",
        "           3000            97000      1.2E-03",
        "1NUMBER OF BEAM     NUMBER OF BEAM",
        "           5000            95000      1.1E-03",
    ]
    reports = [r for r in map(parse, lines) if r is not None]
    assert [(r.done, r.total) for r in reports] == [(1000, 100000), (5000, 100000)]
    fresh = FlukaSimulator({}).progress_parser()
    assert fresh("           7000            93000") is None  # no header seen by this task


@needs_fixtures
def test_collect_reads_the_units_of_a_real_run(tmp_path: Path) -> None:
    for name in ("minimal001_fort.21", "minimal001_fort.22"):
        shutil.copy(MINIMAL / name, tmp_path)
    FlukaSimulator({}).collect_task(tmp_path)
    estimators = json.loads((tmp_path / "estimators.json").read_text())["estimators"]
    assert [e["name"] for e in estimators] == ["21", "22"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PluginError, match="no \\*_fort"):
        FlukaSimulator({}).collect_task(empty)


def test_editor_projects_convert_for_the_whole_job_or_are_refused_by_name() -> None:
    examples = FIXTURES.parent / "yaptide"
    if not (examples / "ex7.json").is_file():
        pytest.skip(f"the shared YAPTIDE fixtures are absent ({examples})")
    project = json.loads((examples / "ex7.json").read_text())["input"]["inputJson"]
    files = FlukaSimulator({}).editor_files(project)
    assert set(files) == {"fl_sim.inp", "info.json"}
    assert start_of(files["fl_sim.inp"]) == project["beam"]["numberOfParticles"]
    shieldhit_project = json.loads((examples / "ex1.json").read_text())["input"]["inputJson"]
    with pytest.raises(PluginError, match="Cannot convert the project for FLUKA"):
        FlukaSimulator({}).editor_files(shieldhit_project)
