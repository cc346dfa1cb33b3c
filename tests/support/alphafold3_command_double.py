#!/usr/bin/env python3
"""Test double of the AlphaFold 3 command (``run_alphafold.py`` of google-deepmind/alphafold3,
3.0.x): ``alphafold3_command_double.py --json_path=PATH --output_dir=DIR
[--num_diffusion_samples=5] [--run_data_pipeline=true|false | --norun_data_pipeline]``;
other flags (``--model_dir``, ``--db_dir``, ...) are accepted and ignored.

The weights are licensed, so this program stands in for the command. It knows one job only,
the real run of PDB 7ADT (protein chain A, 148 aa, and peptide chain U, 28 aa) under
``shared/fixtures/alphafold3/af3_local/7adt_a_u_no_peptide_msa_can/`` (README.md there), and
replays its files in run_alphafold.py 3.0.0's layout under ``<output_dir>/<sanitised name>/``:

- ``<name>_data.json``: with the data pipeline, the real pipeline output (its MSAs) carrying
  the input's name, seed and chain ids; without it, the input as given.
- ``seed-<S>_sample-<k>/`` (``model.cif``, ``confidences.json``, ``summary_confidences.json``)
  for k < ``--num_diffusion_samples``: the files of ``REAL_SAMPLES[(S + k) % 3]`` byte for
  byte, where ``REAL_SAMPLES`` is the real seed 2 sample 0 (the top-level files, score
  1.0004102777876933), seed 1 sample 0 (0.6535193369008352) and seed 5 sample 4
  (0.6203380532899665).
- ``ranking_scores.csv`` (CRLF): one row per sample, holding the real sample's full-precision
  score from the fixture's ``ranking_scores.csv``.
- ``<name>_model.cif``, ``<name>_confidences.json``, ``<name>_summary_confidences.json``: the
  run's best sample (ties to the lower k), and ``TERMS_OF_USE.md``.

It prints upstream's lines (plus instrumented ``recycle i/10`` and ``diffusion step j/N``
lines, N from ``CYCLOTRON_AF3_DIFFUSION_STEPS``, default 200) spread over
``AF3_DOUBLE_SECONDS`` (default 1.0), with ``AF3_DOUBLE_PIPELINE_SECONDS`` (0.5) more during
the data pipeline. Exit codes: 0 done; 1 unusable flags, files or ``AF3_DOUBLE_FAIL=1``
(after the startup lines); 2 not exactly one model seed; 3 not the 7ADT job; 4 data pipeline
skipped while a protein chain has no ``unpairedMsa``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "alphafold3"
JOB = FIXTURES / "af3_local" / "7adt_a_u_no_peptide_msa_can"
JOB_NAME = JOB.name
SAMPLE_FILES = ("model.cif", "confidences.json", "summary_confidences.json")
NOTICE = (
    "Running AlphaFold 3. Please note that standard AlphaFold 3 model parameters are only"
    " available under terms of use provided at"
    " https://github.com/google-deepmind/alphafold3/blob/main/WEIGHTS_TERMS_OF_USE.md."
)
PREFIX = "test double of AlphaFold 3: "


@dataclass(frozen=True)
class RealSample:
    """One real sample of the 7ADT run: its row in ``ranking_scores.csv`` and its folder."""

    seed: int
    sample: int
    folder: str  # "" for the top-level files, which are named after the job

    def files(self, job: Path = JOB) -> dict[str, Path]:
        """Each of ``SAMPLE_FILES`` -> where this sample's copy lies in the fixture."""
        if self.folder:
            return {name: job / self.folder / name for name in SAMPLE_FILES}
        return {name: job / f"{job.name}_{name}" for name in SAMPLE_FILES}


# Sample k of seed S replays REAL_SAMPLES[(S + k) % len(REAL_SAMPLES)].
REAL_SAMPLES = (
    RealSample(seed=2, sample=0, folder=""),
    RealSample(seed=1, sample=0, folder="seed-1_sample-0"),
    RealSample(seed=5, sample=4, folder="seed-5_sample-4"),
)


class DoubleExit(Exception):
    """Ends the run with ``code`` after writing ``message`` to stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def real_sample(seed: int, k: int) -> RealSample:
    """The real sample replayed as sample ``k`` of ``seed``."""
    return REAL_SAMPLES[(seed + k) % len(REAL_SAMPLES)]


def sanitised_name(name: str) -> str:
    """upstream ``folding_input.Input.sanitised_name``."""
    allowed = set(string.ascii_lowercase + string.digits + "_-.")
    return "".join(c for c in name.lower().replace(" ", "_") if c in allowed)


def parse_flags(argv: list[str]) -> dict[str, str]:
    """absl-style flags: ``--name=value``, ``--name value``, ``--name`` and ``--noname``."""
    flags: dict[str, str] = {}
    takes_value = {"json_path", "output_dir", "num_diffusion_samples", "model_dir", "db_dir"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            continue  # absl hands positional arguments to main, which ignores them
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep and name in takes_value:
            if i >= len(argv):
                raise DoubleExit(1, f"flag --{name} needs a value")
            value = argv[i]
            i += 1
        elif not sep:
            name, value = (name[2:], "false") if name.startswith("no") else (name, "true")
        flags[name] = value
    return flags


def _boolean(flags: dict[str, str], name: str, default: bool) -> bool:
    value = flags.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "t", "1"):
        return True
    if value.lower() in ("false", "f", "0"):
        return False
    raise DoubleExit(1, f"--{name}={value}: not a boolean")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DoubleExit(1, f"cannot read {path}: {exc}") from exc


def _seconds(variable: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(variable, default)))
    except ValueError as exc:
        raise DoubleExit(1, f"{variable} is not a number of seconds") from exc


def _protein_copies(fold_input: dict[str, Any]) -> Counter[str]:
    """Protein sequence -> number of chains (a list-valued ``id`` is one chain per id)."""
    copies: Counter[str] = Counter()
    for entry in fold_input.get("sequences") or []:
        body = entry.get("protein") if isinstance(entry, dict) else None
        if isinstance(body, dict):
            ids = body.get("id")
            copies[str(body.get("sequence"))] += len(ids) if isinstance(ids, list) else 1
    return copies


def check_input(fold_input: Any, pipeline_output: dict[str, Any]) -> int:
    """The input's one seed; ``DoubleExit`` when the input is not the 7ADT job with one seed."""
    if not isinstance(fold_input, dict) or not isinstance(fold_input.get("sequences"), list):
        raise DoubleExit(1, "the input JSON is not an alphafold3-dialect fold input")
    seeds = fold_input.get("modelSeeds")
    if not isinstance(seeds, list) or len(seeds) != 1 or not isinstance(seeds[0], int):
        raise DoubleExit(2, f"needs exactly one model seed (one per task), got {seeds!r}")
    others = [
        kind
        for entry in fold_input["sequences"]
        for kind in (entry if isinstance(entry, dict) else {"?": None})
        if kind not in ("protein", "ligand")
    ]
    got = _protein_copies(fold_input)
    if got != _protein_copies(pipeline_output) or others:
        found = [f"{n} x protein of {len(s)} aa" for s, n in got.items()] + others
        raise DoubleExit(3, f"knows only the 7ADT A/U job, got {', '.join(found) or 'nothing'}")
    return seeds[0]


def protein_chains(fold_input: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(chain id, protein body) of every protein chain, in input order."""
    chains = []
    for entry in fold_input["sequences"]:
        body = entry.get("protein")
        if isinstance(body, dict):
            ids = body.get("id")
            chains.extend((str(i), body) for i in (ids if isinstance(ids, list) else [ids]))
    return chains


def pipeline_result(fold_input: dict[str, Any], pipeline_output: dict[str, Any]) -> dict[str, Any]:
    """The real pipeline output as this input's: its name, seed, chain order and ids."""
    real = {
        str(e["protein"]["sequence"]): e["protein"]
        for e in pipeline_output["sequences"]
        if "protein" in e
    }
    sequences = []
    for entry in fold_input["sequences"]:
        body = entry.get("protein")
        if isinstance(body, dict):
            entry = {"protein": {**real[str(body["sequence"])], "id": body.get("id")}}
        sequences.append(entry)
    return {
        **pipeline_output,
        "name": fold_input.get("name"),
        "sequences": sequences,
        "modelSeeds": fold_input["modelSeeds"],
    }


def write_samples(
    folder: Path, seed: int, num_samples: int, scores: dict[tuple[int, int], float]
) -> None:
    """The sample folders, ``ranking_scores.csv`` and the best sample's top-level files."""
    chosen = [real_sample(seed, k) for k in range(num_samples)]
    for k, real in enumerate(chosen):
        target = folder / f"seed-{seed}_sample-{k}"
        target.mkdir(parents=True, exist_ok=True)
        for name, source in real.files().items():
            shutil.copyfile(source, target / name)
    # csv's default line end is CRLF, as in run_alphafold.py's file.
    with (folder / "ranking_scores.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("seed", "sample", "ranking_score"))
        writer.writerows((seed, k, repr(scores[r.seed, r.sample])) for k, r in enumerate(chosen))
    best = max(range(num_samples), key=lambda k: (scores[chosen[k].seed, chosen[k].sample], -k))
    for name, source in chosen[best].files().items():
        shutil.copyfile(source, folder / f"{folder.name}_{name}")
    shutil.copyfile(JOB / "TERMS_OF_USE.md", folder / "TERMS_OF_USE.md")


def real_scores() -> dict[tuple[int, int], float]:
    """(seed, sample) -> full-precision score, from the fixture's ``ranking_scores.csv``."""
    try:
        with (JOB / "ranking_scores.csv").open(newline="") as handle:
            return {
                (int(r["seed"]), int(r["sample"])): float(r["ranking_score"])
                for r in csv.DictReader(handle)
            }
    except (OSError, KeyError, ValueError) as exc:
        raise DoubleExit(1, f"cannot read the fixture's ranking_scores.csv: {exc}") from exc


def run(argv: list[str]) -> None:
    flags = parse_flags(argv)
    if "json_path" not in flags or "output_dir" not in flags:
        raise DoubleExit(1, "--json_path and --output_dir are required")
    try:
        num_samples = int(flags.get("num_diffusion_samples", "5"))
    except ValueError as exc:
        raise DoubleExit(1, "--num_diffusion_samples is not an integer") from exc
    if num_samples < 1:
        raise DoubleExit(1, "--num_diffusion_samples must be at least 1")
    run_pipeline = _boolean(flags, "run_data_pipeline", True)
    try:
        steps = int(os.environ.get("CYCLOTRON_AF3_DIFFUSION_STEPS") or 200)
    except ValueError:
        steps = 200
    if not JOB.is_dir():
        raise DoubleExit(1, f"the AlphaFold 3 fixtures are absent ({JOB})")
    pipeline_output = _load_json(JOB / f"{JOB_NAME}_data.json")
    scores = real_scores()
    fold_input = _load_json(Path(flags["json_path"]))
    seed = check_input(fold_input, pipeline_output)
    name = str(fold_input.get("name"))
    folder = Path(flags["output_dir"]) / sanitised_name(name)
    data_json = folder / f"{folder.name}_data.json"
    chains = protein_chains(fold_input)

    def fail_on_request() -> None:
        if os.environ.get("AF3_DOUBLE_FAIL") == "1":
            raise DoubleExit(1, "failing on request")

    def write_input() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = pipeline_result(fold_input, pipeline_output) if run_pipeline else fold_input
        data_json.write_text(json.dumps(data, indent=2))

    def require_msas() -> None:
        for chain, body in chains:
            if not isinstance(body.get("unpairedMsa"), str):  # "" is a valid empty MSA
                raise DoubleExit(4, f"data pipeline skipped but chain {chain} has no unpairedMsa")

    pause = _seconds("AF3_DOUBLE_PIPELINE_SECONDS", 0.5) / max(1, len(chains))
    script: list[str | Callable[[], None]] = [
        NOTICE,
        "Found local devices: [CudaDevice(id=0)], using device 0: cuda:0",
        "Building model from scratch...",
        "Checking that model parameters can be loaded...",
        fail_on_request,
        f"Running fold job {name}...",
        f"Output will be written in {folder}",
    ]
    if run_pipeline:
        script.append("Running data pipeline...")
        for chain, _ in chains:
            script += [
                f"Running data pipeline for chain {chain}...",
                lambda: time.sleep(pause),
                f"Running data pipeline for chain {chain} took 1.23 seconds",
            ]
    else:
        script += ["Skipping data pipeline...", require_msas]
    script += [
        write_input,
        f"Writing model input JSON to {data_json}",
        f"Predicting 3D structure for {name} with 1 seed(s)...",
        "Featurising data with 1 seed(s)...",
        f"Featurising data with seed {seed}.",
        f"Featurising data with seed {seed} took 0.12 seconds.",
        "Featurising data with 1 seed(s) took 0.15 seconds.",
        "Running model inference and extracting output structure samples with 1 seed(s)...",
        f"Running model inference with seed {seed}...",
        *(f"recycle {i}/10" for i in range(1, 11)),
        *(f"diffusion step {steps * j // 10}/{steps}" for j in range(1, 11)),
        f"Running model inference with seed {seed} took 3.45 seconds.",
        f"Extracting inference results with seed {seed}...",
        f"Extracting {num_samples} inference samples with seed {seed} took 0.05 seconds.",
        "Running model inference and extracting output structures with 1 seed(s) took"
        " 3.50 seconds.",
        "Writing outputs with 1 seed(s)...",
        lambda: write_samples(folder, seed, num_samples, scores),
        f"Fold job {name} done, output written to {folder}",
        "Done running 1 fold jobs.",
    ]
    delay = _seconds("AF3_DOUBLE_SECONDS", 1.0) / sum(isinstance(s, str) for s in script)
    for step in script:
        if isinstance(step, str):
            print(step, flush=True)
            time.sleep(delay)
        else:
            step()


def main() -> int:
    try:
        run(sys.argv[1:])
    except DoubleExit as exc:
        print(PREFIX + str(exc), file=sys.stderr, flush=True)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
