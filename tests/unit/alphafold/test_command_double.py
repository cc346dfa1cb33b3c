"""The AlphaFold 3 command's test double, as the ``alphafold3`` plug-in and its users see it.

The double (``tests/support/alphafold3_command_double.py``) replays the real 7ADT run of the
shared fixtures; these tests check its files against that run's files and scores.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.alphafold3_command_double import REAL_SAMPLES

from cyclotron.alphafold.plugin import AlphaFold3Plugin, task_output
from cyclotron.alphafold.progress import AlphaFoldProgress
from cyclotron.alphafold.results import read_task_samples

DOUBLE = Path(__file__).resolve().parents[2] / "support" / "alphafold3_command_double.py"
JOB = "7adt_a_u_no_peptide_msa_can"
QUICK = {"AF3_DOUBLE_SECONDS": "0", "AF3_DOUBLE_PIPELINE_SECONDS": "0"}


@pytest.fixture
def job_dir(af3_fixtures: Path) -> Path:
    return af3_fixtures / "af3_local" / JOB


@pytest.fixture
def pipeline_output(job_dir: Path) -> dict[str, Any]:
    """The real ``_data.json`` (input plus MSAs) of the 7ADT run."""
    data: dict[str, Any] = json.loads((job_dir / f"{JOB}_data.json").read_bytes())
    return data


def fold_input(pipeline_output: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """The 7ADT job in the ``alphafold3`` dialect: chains A and U, sequences only."""
    return {
        "dialect": "alphafold3",
        "version": 2,
        "name": "7ADT A/U test",
        "modelSeeds": seeds,
        "sequences": [
            {"protein": {"id": e["protein"]["id"], "sequence": e["protein"]["sequence"]}}
            for e in pipeline_output["sequences"]
        ],
    }


def run_double(
    tmp_path: Path, job: dict[str, Any], *flags: str, **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "task_input.json").write_text(json.dumps(job))
    return subprocess.run(
        [sys.executable, str(DOUBLE), "--json_path=task_input.json", "--output_dir=output", *flags],
        cwd=tmp_path,
        env={**os.environ, **QUICK, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def real_scores(job_dir: Path) -> dict[tuple[int, int], float]:
    with (job_dir / "ranking_scores.csv").open(newline="") as handle:
        return {
            (int(r["seed"]), int(r["sample"])): float(r["ranking_score"])
            for r in csv.DictReader(handle)
        }


def test_replays_real_samples_by_the_documented_mapping(
    tmp_path: Path, job_dir: Path, pipeline_output: dict[str, Any]
) -> None:
    done = run_double(
        tmp_path, fold_input(pipeline_output, [3]), "--num_diffusion_samples=5", "--db_dir=/db"
    )
    assert done.returncode == 0, done.stderr
    folder = task_output(tmp_path)  # the one folder the plug-in looks for
    assert folder.name == "7adt_au_test"  # upstream's sanitised name
    scores = real_scores(job_dir)

    samples = read_task_samples(folder)
    assert [(s.seed, s.sample) for s in samples] == [(3, k) for k in range(5)]
    for s in samples:
        real = REAL_SAMPLES[(3 + s.sample) % len(REAL_SAMPLES)]
        assert s.ranking_score == scores[real.seed, real.sample]
        for name, source in real.files(job_dir).items():
            assert (folder / f"seed-3_sample-{s.sample}" / name).read_bytes() == source.read_bytes()
    assert {s.ranking_score for s in samples} == {
        scores[2, 0],
        scores[1, 0],
        scores[5, 4],
    }

    best = max(samples, key=lambda s: (s.ranking_score, -s.sample))
    assert best.sample == 0  # ties (k 0 and 3 replay the same sample) go to the lower k
    assert best.structure_path is not None
    assert (folder / "7adt_au_test_model.cif").read_bytes() == best.structure_path.read_bytes()
    assert (folder / "ranking_scores.csv").read_bytes().count(b"\r\n") == 6
    terms = job_dir / "TERMS_OF_USE.md"
    assert (folder / "TERMS_OF_USE.md").read_bytes() == terms.read_bytes()

    data = json.loads((folder / "7adt_au_test_data.json").read_bytes())
    assert data["name"] == "7ADT A/U test"
    assert data["modelSeeds"] == [3]
    assert data["sequences"] == pipeline_output["sequences"]  # the real MSAs


def test_data_json_takes_the_input_ids_and_order(
    tmp_path: Path, pipeline_output: dict[str, Any]
) -> None:
    job = fold_input(pipeline_output, [7])
    job["sequences"] = job["sequences"][::-1]
    for entry, chain in zip(job["sequences"], ("B", "C"), strict=True):
        entry["protein"]["id"] = chain

    done = run_double(tmp_path, job, "--num_diffusion_samples=1")

    assert done.returncode == 0, done.stderr
    assert "Running data pipeline for chain B..." in done.stdout.splitlines()
    folder = task_output(tmp_path)
    data = json.loads((folder / f"{folder.name}_data.json").read_bytes())
    real = {e["protein"]["sequence"]: e["protein"] for e in pipeline_output["sequences"]}
    for written, given in zip(data["sequences"], job["sequences"], strict=True):
        assert written["protein"] == {
            **real[given["protein"]["sequence"]],
            "id": given["protein"]["id"],
        }
    assert [(s.seed, s.sample) for s in read_task_samples(folder)] == [(7, 0)]


def test_progress_parser_follows_the_run_to_the_end(
    tmp_path: Path, pipeline_output: dict[str, Any]
) -> None:
    done = run_double(tmp_path, fold_input(pipeline_output, [1]))
    assert done.returncode == 0, done.stderr

    progress = AlphaFoldProgress()
    percents, stages = [], []
    for line in done.stdout.splitlines():
        if (report := progress(line)) is not None:
            percents.append(report.done)
            stages.append(report.stage)

    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert {"data_pipeline", "recycling", "diffusion", "confidence", "output_writing"} <= set(
        stages
    )
    assert progress.recycling_iteration == progress.recycling_total == 10
    assert progress.diffusion_step == progress.diffusion_total == 200


def test_lines_are_spread_over_the_run(tmp_path: Path, pipeline_output: dict[str, Any]) -> None:
    (tmp_path / "task_input.json").write_text(json.dumps(fold_input(pipeline_output, [1])))
    with subprocess.Popen(
        [sys.executable, str(DOUBLE), "--json_path=task_input.json", "--output_dir=output"],
        cwd=tmp_path,
        env={**os.environ, "AF3_DOUBLE_SECONDS": "0.6", "AF3_DOUBLE_PIPELINE_SECONDS": "0"},
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("Running AlphaFold 3. ")
        assert proc.poll() is None  # the first line came while the run was going on
        assert proc.stdout.read().endswith("Done running 1 fold jobs.\n")
    assert proc.returncode == 0


@pytest.mark.parametrize("flag", ["--run_data_pipeline=false", "--norun_data_pipeline"])
def test_skipped_pipeline_needs_the_msas(
    tmp_path: Path, pipeline_output: dict[str, Any], flag: str
) -> None:
    refused = run_double(tmp_path, fold_input(pipeline_output, [1]), flag)
    assert refused.returncode == 4
    assert "data pipeline skipped but chain A has no unpairedMsa" in refused.stderr
    assert not (tmp_path / "output").exists()

    real = {e["protein"]["sequence"]: e["protein"] for e in pipeline_output["sequences"]}
    job = fold_input(pipeline_output, [1])
    for entry in job["sequences"]:
        body = entry["protein"]
        body.update(
            {k: real[body["sequence"]][k] for k in ("unpairedMsa", "pairedMsa", "templates")}
        )
    done = run_double(tmp_path, job, flag)

    assert done.returncode == 0, done.stderr
    assert "Skipping data pipeline..." in done.stdout.splitlines()
    assert "Running data pipeline..." not in done.stdout
    folder = task_output(tmp_path)
    assert json.loads((folder / f"{folder.name}_data.json").read_bytes()) == job


def test_plugin_runs_the_double_and_reuses_the_cached_pipeline(
    tmp_path: Path, pipeline_output: dict[str, Any]
) -> None:
    plugin = AlphaFold3Plugin(
        {
            "command": [sys.executable, str(DOUBLE)],
            "cache_dir": str(tmp_path / "cache"),
            "db_dir": str(tmp_path),  # the double reads none: the pipeline runs by default
        }
    )
    prepared = plugin.prepare(fold_input(pipeline_output, [3, 4]), "af3")
    outputs = []
    for task in (0, 1):
        workdir = tmp_path / "tasks" / str(task)
        workdir.mkdir(parents=True)
        for name, content in prepared.files.items():
            (workdir / name).write_bytes(content)
        command = plugin.task_command(workdir, task, 2, seed=[3, 4][task])
        done = subprocess.run(
            command.argv,
            cwd=workdir,
            env={**os.environ, **command.env, **QUICK},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        plugin.collect_task(workdir)
        outputs.append(done.stdout.splitlines())

    assert "Running data pipeline..." in outputs[0]
    assert "Skipping data pipeline..." in outputs[1]  # ran on the cached MSAs
    best = plugin.ranking(tmp_path, [0, 1]).best.sample
    assert (best.seed, best.sample) == (3, 0)  # replays the real best, seed 2 sample 0


def test_two_seeds_are_refused(tmp_path: Path, pipeline_output: dict[str, Any]) -> None:
    done = run_double(tmp_path, fold_input(pipeline_output, [1, 2]))

    assert done.returncode == 2
    assert "test double of AlphaFold 3: needs exactly one model seed" in done.stderr
    assert not (tmp_path / "output").exists()


def test_another_job_is_refused(tmp_path: Path, pipeline_output: dict[str, Any]) -> None:
    job = fold_input(pipeline_output, [1])
    job["sequences"][1]["protein"]["sequence"] = "MKTAYIAKQR"

    done = run_double(tmp_path, job)

    assert done.returncode == 3
    assert "test double of AlphaFold 3: knows only the 7ADT A/U job, got " in done.stderr
    assert not (tmp_path / "output").exists()


def test_fails_on_request_after_the_startup_lines(
    tmp_path: Path, pipeline_output: dict[str, Any]
) -> None:
    done = run_double(tmp_path, fold_input(pipeline_output, [1]), AF3_DOUBLE_FAIL="1")

    assert done.returncode == 1
    assert done.stderr == "test double of AlphaFold 3: failing on request\n"
    assert done.stdout.splitlines()[-1] == "Checking that model parameters can be loaded..."
    assert not (tmp_path / "output").exists()
