"""The topas plug-in: per-task histories and seed, progress on the real transcript, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cyclotron.errors import PluginError
from cyclotron.simulators.topas import (
    TopasSimulator,
    histories_of,
    read_topas_estimator,
    with_task_histories,
)

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "shieldhit"
RUN = FIXTURES / "topas" / "topas_minimal"
needs_fixtures = pytest.mark.skipif(
    not RUN.is_dir(), reason=f"the shared TOPAS fixtures are absent ({RUN})"
)


def _changed(before: str, after: str) -> list[tuple[str, str]]:
    pairs = zip(before.splitlines(keepends=True), after.splitlines(keepends=True), strict=True)
    return [(old, new) for old, new in pairs if old != new]


@needs_fixtures
def test_histories_and_seed_change_and_nothing_else(tmp_path: Path) -> None:
    shutil.copy(RUN / "minimal.txt", tmp_path / "minimal.txt")
    original = (tmp_path / "minimal.txt").read_bytes().decode()
    command = TopasSimulator({"executable": "topas"}).task_command(tmp_path, 2, 3, seed=97)
    rewritten = (tmp_path / "minimal.txt").read_bytes().decode()
    assert command.argv[1:] == ("minimal.txt",)
    # CRLF line endings kept; only the two values differ.
    assert _changed(original, rewritten) == [
        ("i:Ts/Seed = 1\r\n", "i:Ts/Seed = 97\r\n"),
        ("i:So/Demo/NumberOfHistoriesInRun = 20\r\n", "i:So/Demo/NumberOfHistoriesInRun = 6\r\n"),
    ]


def test_a_missing_seed_is_added_and_comments_are_kept() -> None:
    text = 'i:So/Beam/NumberOfHistoriesInRun = 1000 # all of them\ns:Ts/X = "y"'
    assert with_task_histories(text, 334, 2) == (
        'i:So/Beam/NumberOfHistoriesInRun = 334 # all of them\ns:Ts/X = "y"\ni:Ts/Seed = 2\n'
    )
    assert histories_of(text) == 1000


@needs_fixtures
def test_progress_from_the_real_transcript_rises_to_the_total() -> None:
    parse = TopasSimulator({}).progress_parser()
    lines = (RUN / "topas_stdout.txt").read_text().splitlines()
    reports = [r for r in map(parse, lines) if r is not None]
    # Threads print out of order (6, 0, 2, 8, …): only a higher history counts.
    assert [r.done for r in reports] == [6, 8, 10, 12, 18, 20]
    assert reports[-1].total == 20 and all(r.total == 0 for r in reports[:-1])


@needs_fixtures
def test_a_real_csv_reads_with_the_histories_of_its_parameter_file(tmp_path: Path) -> None:
    for name in ("minimal.txt", "fluence_bp_protons_xy.csv"):
        shutil.copy(RUN / name, tmp_path / name)
    estimator = read_topas_estimator(tmp_path / "fluence_bp_protons_xy.csv")
    assert estimator["name"] == "fluence_bp_protons_xy"
    assert estimator["metadata"]["number_of_primaries"] == "20"
    (page,) = estimator["pages"]
    assert page["metadata"]["page_normalized"] == "2"
    assert page["data"]["values"][0] == pytest.approx(0.001777777777777778, rel=1e-12)


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({}, "exactly one parameter file"),
        ({"a.txt": "i:So/B/NumberOfHistoriesInRun = 5\n", "b.txt": ""}, "found 2"),
        ({"a.txt": "i:Ts/Seed = 1\n"}, "NumberOfHistoriesInRun"),
        ({"a.txt": "i:So/B/NumberOfHistoriesInRun = 0\n"}, "NumberOfHistoriesInRun"),
        (
            {"a.txt": "i:So/B/NumberOfHistoriesInRun = 5\ni:So/C/NumberOfHistoriesInRun = 5\n"},
            "exactly one source, found 2",
        ),
    ],
)
def test_unrunnable_input_is_refused(tmp_path: Path, files: dict[str, str], reason: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(PluginError, match=reason):
        TopasSimulator({}).validate(tmp_path)


def test_without_an_executable_the_service_says_why() -> None:
    assert "TOPAS executable is not configured" in (TopasSimulator({}).unavailable_reason() or "")
    missing = TopasSimulator({"executable": "/nonexistent/topas"}).unavailable_reason()
    assert missing is not None and "is not an executable file" in missing
