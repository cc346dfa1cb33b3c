"""The SHIELD-HIT12A test double: example conversion, input checks, task runs and their merge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.shieldhit_double import DEFAULT_EXAMPLES_DIR, ShieldhitTestDouble

from cyclotron.domain.ports import ProgressReport
from cyclotron.domain.primaries import nstat_of
from cyclotron.errors import ConfigError, PluginError
from cyclotron.estimators.store import TASK_FILE, read_results

FIXTURES = DEFAULT_EXAMPLES_DIR.parent
TRANSCRIPT = FIXTURES / "shieldhit" / "mocks" / "shieldhit_minimal" / "shieldhit_stdout.txt"

pytestmark = pytest.mark.skipif(
    not (DEFAULT_EXAMPLES_DIR.is_dir() and TRANSCRIPT.is_file()),
    reason=f"the shared fixtures are not at {FIXTURES}",
)


def captured(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DEFAULT_EXAMPLES_DIR / name).read_text(encoding="utf-8"))
    return body


def ex1() -> dict[str, Any]:
    return captured("ex1.json")


def write_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="module")
def double() -> ShieldhitTestDouble:
    return ShieldhitTestDouble({})


def test_converts_the_example_project_for_the_whole_job(double: ShieldhitTestDouble) -> None:
    example = ex1()["input"]
    files = double.editor_files(example["inputJson"])
    assert sorted(files) == ["beam.dat", "detect.dat", "geo.dat", "info.json", "mat.dat"]
    assert nstat_of(files["beam.dat"]) == 10000
    assert nstat_of(example["inputFiles"]["beam.dat"]) == 666  # one task's share, unchanged
    assert files["geo.dat"] == example["inputFiles"]["geo.dat"]


def test_the_captured_ui_project_is_the_example(double: ShieldhitTestDouble) -> None:
    project = captured("captured_post_jobs_direct_from_ex1.json")["input_json"]
    assert project != ex1()["input"]["inputJson"]  # a re-saved project: cameras, hash, defaults
    project["beam"]["numberOfParticles"] = 2500
    assert nstat_of(double.editor_files(project)["beam.dat"]) == 2500


def test_refuses_a_project_that_is_no_example(double: ShieldhitTestDouble) -> None:
    project = ex1()["input"]["inputJson"]
    project["detectorManager"]["detectors"][0]["geometryData"]["parameters"]["zSegments"] = 200
    with pytest.raises(PluginError, match="converts only the example projects"):
        double.editor_files(project)
    fluka = captured("captured_post_jobs_direct_from_ex7.json")["input_json"]
    with pytest.raises(PluginError, match="converts only the example projects"):
        double.editor_files(fluka)


def test_accepts_the_captured_files_and_refuses_a_changed_geometry(
    double: ShieldhitTestDouble, tmp_path: Path
) -> None:
    files = captured("captured_post_jobs_direct_files_mode_from_ex1.json")["input_files"]
    input_dir = write_files(tmp_path / "input", files)
    double.validate(input_dir)

    geo = input_dir / "geo.dat"
    text = geo.read_text()
    radius = "\n                 5.5\n"  # the vacuum cylinder's radius (not a comment line)
    assert radius in text
    geo.write_text(text.replace(radius, "\n                 5.6\n"))
    with pytest.raises(PluginError, match=r"ex1\.json, differs in geo\.dat"):
        double.validate(input_dir)


def test_refuses_input_without_a_number_of_primaries(
    double: ShieldhitTestDouble, tmp_path: Path
) -> None:
    with pytest.raises(PluginError, match="beam.dat is required"):
        double.validate(tmp_path)
    (tmp_path / "beam.dat").write_text("NSTAT  many  0\n")
    with pytest.raises(PluginError, match="no NSTAT line"):
        double.validate(tmp_path)


def make_job(tmp_path: Path, double: ShieldhitTestDouble, ntasks: int) -> Path:
    """A job directory as the core lays it out: input/, and tasks/<i>/ holding a copy of it."""
    job_dir = tmp_path / "job"
    files = double.editor_files(ex1()["input"]["inputJson"])
    write_files(job_dir / "input", files)
    for index in range(ntasks):
        shutil.copytree(job_dir / "input", job_dir / "tasks" / str(index))
    return job_dir


def test_each_task_gets_its_share_and_its_command(tmp_path: Path) -> None:
    plugin = ShieldhitTestDouble({"fail_tasks": [2], "seconds": 0.5})
    job_dir = make_job(tmp_path, plugin, 3)
    commands = [
        plugin.task_command(job_dir / "tasks" / str(i), i, 3, seed=40 + i) for i in range(3)
    ]
    shares = [nstat_of((job_dir / "tasks" / str(i) / "beam.dat").read_text()) for i in range(3)]
    assert shares == [3334, 3333, 3333]
    assert nstat_of((job_dir / "input" / "beam.dat").read_text()) == 10000
    assert commands[0].argv[1:] == (
        "-m",
        "support.shieldhit_double",
        str(DEFAULT_EXAMPLES_DIR / "ex1.json"),
        "--primaries",
        "3334",
        "--seed",
        "40",
        "--seconds",
        "0.5",
    )
    assert [c.argv[-1] == "--fail" for c in commands] == [False, True, False]
    assert commands[0].env["PYTHONPATH"] == str(Path(__file__).resolve().parents[1])
    every = ShieldhitTestDouble({"fail_tasks": "all"})
    assert every.task_command(job_dir / "tasks" / "0", 0, 3, seed=1).argv[-1] == "--fail"


@pytest.mark.parametrize("options", [{"fail_tasks": "some"}, {"seconds": -1}])
def test_refuses_unusable_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ShieldhitTestDouble(options)


def test_reads_progress_from_real_shieldhit_output(double: ShieldhitTestDouble) -> None:
    lines = TRANSCRIPT.read_text().splitlines()
    reports = [r for r in map(double.parse_progress, lines) if r is not None]
    assert len(reports) == 21  # N = 1 without an estimate, then 1 … 20 with one
    assert reports[0] == ProgressReport(done=1, total=0)
    assert reports[-1] == ProgressReport(done=20, total=0, eta_seconds=0)
    line = "     Primary particle no.        4000      ETR:   1 hours  2 minutes  3 seconds"
    assert double.parse_progress(line) == ProgressReport(4000, 0, eta_seconds=3723)
    assert double.parse_progress("  Transport completed.") is None


def run_task(command: Any, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **command.env}
    return subprocess.run(
        command.argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )


def test_three_task_runs_merge_to_their_weighted_mean(tmp_path: Path) -> None:
    plugin = ShieldhitTestDouble({"seconds": 0.2})
    job_dir = make_job(tmp_path, plugin, 3)
    tasks = [job_dir / "tasks" / str(i) for i in range(3)]
    outputs = []
    for index, workdir in enumerate(tasks):
        ran = run_task(plugin.task_command(workdir, index, 3, seed=index + 1), workdir)
        assert ran.returncode == 0, ran.stderr
        assert "Transport completed." in ran.stdout
        reports = [r for r in map(plugin.parse_progress, ran.stdout.splitlines()) if r]
        assert 8 <= len(reports) <= 10
        assert reports[-1].done == nstat_of((workdir / "beam.dat").read_text())
        outputs.append(json.loads((workdir / TASK_FILE).read_text())["estimators"])

    plugin.merge(job_dir, [0, 1, 2])

    merged = read_results(job_dir / "results")
    assert merged is not None
    assert [e["name"] for e in merged] == ["z_profile", "yz_profile", "entrance", "peak"]
    first = merged[0]
    assert first["metadata"]["number_of_primaries"] == "10000"
    assert first["metadata"]["file_counter"] == "3"
    assert first["metadata"]["file_corename"] == "z_profile"
    weights = [int(o[0]["metadata"]["number_of_primaries"]) for o in outputs]
    assert weights == [3334, 3333, 3333]
    dose = first["pages"][0]
    assert dose["data"]["name"] == "DOSE"
    task_doses = [o[0]["pages"][0]["data"]["values"] for o in outputs]
    for k, value in enumerate(dose["data"]["values"]):
        expected = sum(w * d[k] for w, d in zip(weights, task_doses, strict=True)) / sum(weights)
        assert value == pytest.approx(expected, rel=1e-9)
    assert all(dose["data"]["values"] != d for d in task_doses)  # tasks scatter like real runs
    assert len(dose["error"]["values"]) == 400


def test_a_failing_task_leaves_no_results(tmp_path: Path) -> None:
    plugin = ShieldhitTestDouble({"fail_tasks": [1], "seconds": 0.1})
    job_dir = make_job(tmp_path, plugin, 2)
    workdir = job_dir / "tasks" / "0"
    ran = run_task(plugin.task_command(workdir, 0, 2, seed=1), workdir)
    assert ran.returncode == 1
    assert "ERROR" in ran.stderr
    assert not (workdir / TASK_FILE).exists()
    with pytest.raises(PluginError, match="estimators.json"):
        plugin.merge(job_dir, [0])
