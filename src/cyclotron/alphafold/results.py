"""AlphaFold 3 results: one task's samples, their ranking across seeds, per-sample confidence.

Each task runs one model seed. Two output layouts are read:

- local (``run_alphafold.py``): per-sample folders ``seed-<s>_sample-<k>/`` holding
  ``[<name>_seed-<s>_sample-<k>_]summary_confidences.json``, ``…confidences.json`` and
  ``…model.cif``, next to a top-level ``[<name>_]ranking_scores.csv``. The top-level
  ``<name>_model.cif`` is a copy of the run's best sample and is not a sample itself.
- server (AlphaFold Server download): ``<name>_summary_confidences_<k>.json``,
  ``<name>_full_data_<k>.json`` and ``<name>_model_<k>.cif`` (the last two often only for k=0).

Ranking (spec/native.md §7.1): ``ranking_score`` descending; ties go to the earlier seed of
the job, then the lower per-seed sample number. That is the sample ``run_alphafold.py`` itself
keeps as best, since it replaces its best only on a strictly greater score while walking seeds
and samples in order. ``sample_index`` is the job-wide number of a sample: its position when
all samples are ordered by (task, sample), so it is stable whatever the scores.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclotron.errors import NotFound, PluginError

RANKING_METRIC = "ranking_score"
_LOCAL_SAMPLE_DIR = re.compile(r"^seed-(-?\d+)_sample-(\d+)$")
_SERVER_SUMMARY = re.compile(r"^(?P<name>.+)_summary_confidences_(?P<k>\d+)\.json$")

Row = tuple[float | None, ...]


@dataclass(frozen=True)
class Sample:
    """One diffusion sample of one seed, as its summary file describes it."""

    seed: int
    sample: int  # the sample's number within its seed (``k``)
    ptm: float | None
    iptm: float | None
    ranking_score: float
    fraction_disordered: float | None
    has_clash: bool
    num_chains: int
    summary_path: Path
    confidences_path: Path | None
    structure_path: Path | None
    mean_plddt: float | None = None
    chain_ptm: Row | None = None
    chain_iptm: Row | None = None
    chain_pair_iptm: tuple[Row, ...] | None = None
    chain_pair_pae_min: tuple[Row, ...] | None = None


@dataclass(frozen=True)
class RankedSample:
    """A sample with its job-wide number and its rank (1 = best)."""

    sample_index: int
    rank: int
    sample: Sample

    def as_wire(self) -> dict[str, Any]:
        s = self.sample
        return {
            "sample_index": self.sample_index,
            "seed": s.seed,
            "rank": self.rank,
            "ptm": s.ptm,
            "iptm": s.iptm,
            "mean_plddt": s.mean_plddt,
            "ranking_score": s.ranking_score,
            "fraction_disordered": s.fraction_disordered,
            "has_clash": s.has_clash,
        }


@dataclass(frozen=True)
class ConfidenceResult:
    """The ``confidence`` result kind; top-level metrics are the best sample's."""

    samples: tuple[RankedSample, ...]  # in sample_index order
    is_complex: bool

    @property
    def best(self) -> RankedSample:
        return self.by_rank(1)

    def by_rank(self, rank: int) -> RankedSample:
        """The sample at ``rank`` (1 = best); NotFound outside 1..num_samples."""
        for ranked in self.samples:
            if ranked.rank == rank:
                return ranked
        raise NotFound(f"No sample at rank {rank}")

    def by_index(self, sample_index: int) -> RankedSample:
        """The sample numbered ``sample_index``; NotFound if there is none."""
        if 0 <= sample_index < len(self.samples):
            return self.samples[sample_index]
        raise NotFound(f"No sample {sample_index}")

    def structure_path(self, rank: int) -> Path:
        """The mmCIF of the sample at ``rank``; NotFound when that sample has none."""
        path = self.by_rank(rank).sample.structure_path
        if path is None:
            raise NotFound(f"No structure for rank {rank}")
        return path

    def as_wire(self) -> dict[str, Any]:
        best = self.best.sample
        return {
            "ptm": best.ptm,
            "iptm": best.iptm,
            "mean_plddt": best.mean_plddt,
            "ranking_metric": RANKING_METRIC,
            "num_samples": len(self.samples),
            "best_sample_index": self.best.sample_index,
            "is_complex": self.is_complex,
            "samples": [ranked.as_wire() for ranked in self.samples],
        }


@dataclass(frozen=True)
class SampleConfidence:
    """pLDDT per residue and per atom, and PAE per token pair, of one sample."""

    plddts: tuple[float, ...]  # one per residue: the mean of its atoms', as the app serves it
    atom_plddts: tuple[float, ...]
    pae: tuple[tuple[float, ...], ...]
    mean_plddt: float
    num_atoms: int
    num_residues: int
    num_tokens: int


def read_task_samples(folder: Path, seed: int | None = None) -> list[Sample]:
    """Every sample in one task's output folder, in either layout.

    ``seed`` names the seed of a server download (its folder names do not carry one); when
    omitted it is read from ``*_job_request.json`` if that lists exactly one, else 0.
    """
    local = sorted(p for p in folder.iterdir() if _LOCAL_SAMPLE_DIR.match(p.name) and p.is_dir())
    if local:
        scores = _csv_scores(folder)
        return [_local_sample(path, scores) for path in local]
    server = sorted(folder.glob("*_summary_confidences_*.json"))
    if server:
        return [
            _server_sample(path, _server_seed(folder) if seed is None else seed) for path in server
        ]
    raise PluginError(f"No AlphaFold 3 samples in {folder.name}")


def merge_seeds(task_samples: Iterable[Sequence[Sample]]) -> ConfidenceResult:
    """Rank the samples of every task (seed), given in task order, together.

    Samples are numbered in task order, then by sample number: with every task present that
    is spec/native.md §4.2's ``sample_index = i × numSamples + k``. Ties in score go to the
    lower number (the earlier seed of the job, then the lower sample).
    """
    samples = [s for task in task_samples for s in sorted(task, key=lambda s: s.sample)]
    if not samples:
        raise PluginError("No AlphaFold 3 samples to merge")
    order = sorted(range(len(samples)), key=lambda i: (-samples[i].ranking_score, i))
    rank_of = {index: rank for rank, index in enumerate(order, start=1)}
    ranked = tuple(RankedSample(i, rank_of[i], s) for i, s in enumerate(samples))
    return ConfidenceResult(samples=ranked, is_complex=samples[0].num_chains > 1)


def sample_confidence(sample: Sample) -> SampleConfidence:
    """pLDDT per residue and per atom, PAE per token pair and counts, from the sample's full
    confidence file and its structure (which says which atoms make each residue)."""
    if sample.confidences_path is None:
        raise NotFound(f"No confidence file for seed {sample.seed} sample {sample.sample}")
    if sample.structure_path is None:
        raise NotFound(f"No structure for seed {sample.seed} sample {sample.sample}")
    data = _load_json(sample.confidences_path)
    try:
        atom_plddts = tuple(float(v) for v in data["atom_plddts"])
        pae = tuple(tuple(float(v) for v in row) for row in data["pae"])
        num_tokens = len(data["token_res_ids"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PluginError(
            f"{sample.confidences_path.name} is not a confidence file: {exc}"
        ) from exc
    if not atom_plddts or any(len(row) != len(pae) for row in pae):
        raise PluginError(f"{sample.confidences_path.name}: empty pLDDT or non-square PAE")
    sizes = residue_sizes(sample.structure_path)
    if sum(sizes) != len(atom_plddts):
        raise PluginError(
            f"{sample.structure_path.name} has {sum(sizes)} atoms but"
            f" {sample.confidences_path.name} {len(atom_plddts)} pLDDT values"
        )
    ends = list(itertools.accumulate(sizes))
    plddts = tuple(
        statistics.fmean(atom_plddts[end - size : end])
        for end, size in zip(ends, sizes, strict=True)
    )
    return SampleConfidence(
        plddts=plddts,
        atom_plddts=atom_plddts,
        pae=pae,
        mean_plddt=statistics.fmean(atom_plddts),
        num_atoms=len(atom_plddts),
        num_residues=len(plddts),
        num_tokens=num_tokens,
    )


def residue_sizes(structure_path: Path) -> list[int]:
    """The number of atoms of each residue of a predicted structure, in the file's order
    (the order of ``atom_plddts``); a ligand is one residue of many atoms."""
    import gemmi  # here: the server reads structures only for an AlphaFold job's results

    try:
        model = gemmi.read_structure(str(structure_path))[0]
    except (RuntimeError, ValueError, IndexError) as exc:
        raise PluginError(f"{structure_path.name} is not a readable structure") from exc
    return [len(residue) for chain in model for residue in chain if len(residue)]


def _local_sample(sample_dir: Path, scores: dict[tuple[int, int], float]) -> Sample:
    match = _LOCAL_SAMPLE_DIR.match(sample_dir.name)
    assert match is not None  # the caller selected folders by this pattern
    seed, k = int(match[1]), int(match[2])
    summary = _one(sample_dir, "summary_confidences.json")
    if summary is None:
        raise PluginError(f"{sample_dir.name} has no summary_confidences.json")
    confidences = _one(sample_dir, "confidences.json", exclude="summary_confidences.json")
    return _sample(
        seed, k, summary, confidences, _one(sample_dir, "model.cif"), scores.get((seed, k))
    )


def _server_sample(summary: Path, seed: int) -> Sample:
    match = _SERVER_SUMMARY.match(summary.name)
    if match is None:
        raise PluginError(f"Unexpected summary file name {summary.name}")
    name, k = match["name"], int(match["k"])
    full = summary.with_name(f"{name}_full_data_{k}.json")
    model = summary.with_name(f"{name}_model_{k}.cif")
    return _sample(seed, k, summary, _existing(full), _existing(model), None)


def _sample(
    seed: int,
    k: int,
    summary_path: Path,
    confidences: Path | None,
    structure: Path | None,
    precise_score: float | None,
) -> Sample:
    summary = _load_json(summary_path)
    try:
        # The summary rounds the score to 2 decimals; ranking_scores.csv keeps full precision.
        score = float(summary["ranking_score"]) if precise_score is None else precise_score
        chain_ptm = _row(summary.get("chain_ptm"))
        mean_plddt = None
        if confidences is not None:
            mean_plddt = statistics.fmean(float(v) for v in _load_json(confidences)["atom_plddts"])
    except (KeyError, TypeError, ValueError, statistics.StatisticsError) as exc:
        raise PluginError(f"{summary_path.name}: unusable confidence values ({exc})") from exc
    return Sample(
        seed=seed,
        sample=k,
        ptm=_float(summary.get("ptm")),
        iptm=_float(summary.get("iptm")),
        ranking_score=score,
        fraction_disordered=_float(summary.get("fraction_disordered")),
        has_clash=bool(summary.get("has_clash") or 0.0),
        num_chains=len(chain_ptm) if chain_ptm is not None else 1,
        summary_path=summary_path,
        confidences_path=confidences,
        structure_path=structure,
        mean_plddt=mean_plddt,
        chain_ptm=chain_ptm,
        chain_iptm=_row(summary.get("chain_iptm")),
        chain_pair_iptm=_matrix(summary.get("chain_pair_iptm")),
        chain_pair_pae_min=_matrix(summary.get("chain_pair_pae_min")),
    )


def _csv_scores(folder: Path) -> dict[tuple[int, int], float]:
    """Full-precision scores from ``ranking_scores.csv`` or ``<name>_ranking_scores.csv``."""
    scores: dict[tuple[int, int], float] = {}
    for path in folder.glob("*ranking_scores.csv"):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    scores[int(row["seed"]), int(row["sample"])] = float(row["ranking_score"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise PluginError(f"{path.name}: unreadable row {row}") from exc
    return scores


def _server_seed(folder: Path) -> int:
    for path in folder.glob("*_job_request.json"):
        request = _load_json(path)
        jobs = request if isinstance(request, list) else [request]
        seeds = [s for job in jobs if isinstance(job, dict) for s in job.get("modelSeeds") or []]
        if len(seeds) == 1:
            return int(seeds[0])
    return 0


def _one(folder: Path, suffix: str, exclude: str | None = None) -> Path | None:
    """The one file in ``folder`` named ``suffix`` or ``<prefix>_<suffix>``."""
    found = [
        p
        for p in folder.iterdir()
        if (p.name == suffix or p.name.endswith("_" + suffix))
        and not (exclude and p.name.endswith(exclude))
    ]
    return sorted(found)[0] if found else None


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PluginError(f"Cannot read {path.name}: {exc}") from exc


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _row(values: Any) -> Row | None:
    return None if values is None else tuple(_float(v) for v in values)


def _matrix(rows: Any) -> tuple[Row, ...] | None:
    return None if rows is None else tuple(_row(r) or () for r in rows)
