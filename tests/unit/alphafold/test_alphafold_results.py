"""AlphaFold 3 results on real outputs: both layouts, ranking across seeds, per-sample confidence.

(Named ``test_alphafold_results.py``: ``test_results.py`` is taken by the YAPTIDE conformance
suite, and the test folders are not packages, so one basename may appear only once.)
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from cyclotron.alphafold.results import (
    Sample,
    merge_seeds,
    read_task_samples,
    sample_confidence,
)
from cyclotron.errors import NotFound, PluginError

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "alphafold3"
LOCAL = FIXTURES / "af3_local" / "7adt_a_u_no_peptide_msa_can"
SERVER = FIXTURES / "af_server" / "fold_2024_07_01_12_14_prot_dna_zn"

pytestmark = pytest.mark.skipif(
    not (LOCAL.is_dir() and SERVER.is_dir()),
    reason=f"the shared AlphaFold 3 fixtures are absent ({FIXTURES})",
)


def cif_atom_count(path: Path) -> int:
    """Rows of the mmCIF ``_atom_site`` loop (each starts with ATOM or HETATM)."""
    with path.open() as handle:
        return sum(1 for line in handle if line.startswith(("ATOM ", "HETATM ")))


def cif_residue_keys(path: Path) -> list[tuple[str, ...]]:
    """Per ``_atom_site`` row its residue (chain, residue number, component), read as text."""
    columns: list[str] = []
    keys = []
    with path.open() as handle:
        for line in handle:
            if line.startswith("_atom_site."):
                columns.append(line.strip().removeprefix("_atom_site."))
            elif line.startswith(("ATOM ", "HETATM ")):
                row = dict(zip(columns, line.split(), strict=False))
                keys.append((row["label_asym_id"], row["auth_seq_id"], row["label_comp_id"]))
    return keys


def by_key(samples: list[Sample]) -> dict[tuple[int, int], Sample]:
    return {(s.seed, s.sample): s for s in samples}


def test_local_layout_reads_each_sample_folder() -> None:
    samples = by_key(read_task_samples(LOCAL))
    assert sorted(samples) == [(1, 0), (5, 4)]  # the top-level best copy is not a sample
    first, last = samples[1, 0], samples[5, 4]
    assert (first.ptm, first.iptm, first.fraction_disordered) == (0.75, 0.53, 0.16)
    assert (last.ptm, last.iptm, last.fraction_disordered) == (0.75, 0.5, 0.15)
    assert first.has_clash is False
    # Full precision from ranking_scores.csv, not the summary's rounded 0.65 / 0.62.
    assert first.ranking_score == 0.6535193369008352
    assert last.ranking_score == 0.6203380532899665
    assert first.chain_pair_iptm == ((0.77, 0.53), (0.53, 0.35))
    assert last.chain_pair_pae_min == ((0.76, 3.85), (5.13, 0.76))
    assert first.num_chains == 2
    assert first.structure_path == LOCAL / "seed-1_sample-0" / "model.cif"
    assert first.confidences_path == LOCAL / "seed-1_sample-0" / "confidences.json"
    assert first.mean_plddt == pytest.approx(74.45324, abs=1e-4)


def test_local_without_csv_falls_back_to_summary_score(tmp_path: Path) -> None:
    shutil.copytree(LOCAL / "seed-5_sample-4", tmp_path / "seed-5_sample-4")
    (sample,) = read_task_samples(tmp_path)
    assert sample.ranking_score == 0.62


def test_two_seeds_rank_as_ranking_scores_csv_does(tmp_path: Path) -> None:
    # One task per seed, as Cyclotron runs them: each folder holds one seed's sample.
    tasks = []
    for name in ("seed-5_sample-4", "seed-1_sample-0"):
        task_dir = tmp_path / name
        shutil.copytree(LOCAL / name, task_dir / name)
        shutil.copy(LOCAL / "ranking_scores.csv", task_dir / "ranking_scores.csv")
        tasks.append(read_task_samples(task_dir))
    result = merge_seeds(tasks)

    with (LOCAL / "ranking_scores.csv").open(newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if (r["seed"], r["sample"]) in {("1", "0"), ("5", "4")}
        ]
    expected = [
        (int(r["seed"]), int(r["sample"]))
        for r in sorted(rows, key=lambda r: -float(r["ranking_score"]))
    ]
    got = [
        (result.by_rank(rank).sample.seed, result.by_rank(rank).sample.sample) for rank in (1, 2)
    ]
    assert got == expected == [(1, 0), (5, 4)]
    # sample_index follows the tasks' order (seed 5 was task 0), whatever the scores.
    assert [(r.sample_index, r.sample.seed) for r in result.samples] == [(0, 5), (1, 1)]

    wire = result.as_wire()
    assert wire["ranking_metric"] == "ranking_score"
    assert (wire["num_samples"], wire["best_sample_index"], wire["is_complex"]) == (2, 1, True)
    assert (wire["ptm"], wire["iptm"]) == (0.75, 0.53)
    assert wire["mean_plddt"] == pytest.approx(74.45324, abs=1e-4)
    assert [s["rank"] for s in wire["samples"]] == [2, 1]
    assert (
        result.structure_path(2) == tmp_path / "seed-5_sample-4" / "seed-5_sample-4" / "model.cif"
    )


def test_server_layout_ranks_its_five_summaries_by_ranking_score() -> None:
    samples = read_task_samples(SERVER)
    assert [(s.seed, s.sample) for s in samples] == [
        (1, k) for k in range(5)
    ]  # seed from job_request
    assert [s.ranking_score for s in samples] == [0.98, 0.93, 0.93, 0.93, 0.93]
    assert (samples[0].ptm, samples[0].iptm, samples[0].fraction_disordered) == (0.91, 0.93, 0.11)
    assert samples[1].iptm == 0.94
    assert samples[0].chain_ptm == (0.88, None, None, None, 0.04, 0.04)
    # Only model 0 comes with its full data and structure.
    assert [s.confidences_path is not None for s in samples] == [True, False, False, False, False]
    assert [s.structure_path is not None for s in samples] == [True, False, False, False, False]

    result = merge_seeds([samples])
    ranks = [r.rank for r in result.samples]
    scores = [r.sample.ranking_score for r in sorted(result.samples, key=lambda r: r.rank)]
    assert scores == sorted(scores, reverse=True)
    assert ranks == [1, 2, 3, 4, 5]  # the four ties at 0.93 keep sample order
    assert result.is_complex is True  # protein, two DNA strands, three Zn ions
    assert result.as_wire()["mean_plddt"] == pytest.approx(96.75167, abs=1e-4)
    with pytest.raises(NotFound):
        result.structure_path(2)


def test_explicit_seed_overrides_job_request() -> None:
    assert {s.seed for s in read_task_samples(SERVER, seed=42)} == {42}


@pytest.mark.parametrize(
    ("folder", "key", "atoms", "tokens", "residues", "mean"),
    [
        (LOCAL, (1, 0), 1350, 176, 148 + 28, 74.45324),
        (LOCAL, (5, 4), 1350, 176, 148 + 28, 76.42252),
        (SERVER, (1, 0), 1212, 115, 90 + 11 + 11 + 3, 96.75167),
    ],
)
def test_sample_confidence_matches_the_structure(
    folder: Path, key: tuple[int, int], atoms: int, tokens: int, residues: int, mean: float
) -> None:
    sample = by_key(read_task_samples(folder))[key]
    conf = sample_confidence(sample)
    assert sample.structure_path is not None
    assert conf.num_atoms == len(conf.atom_plddts) == cif_atom_count(sample.structure_path) == atoms
    assert conf.num_tokens == tokens
    assert len(conf.pae) == tokens and all(len(row) == tokens for row in conf.pae)
    assert conf.num_residues == residues
    assert conf.mean_plddt == pytest.approx(mean, abs=1e-4)
    assert all(0.0 <= p <= 100.0 for p in conf.atom_plddts)
    # One pLDDT per residue, each the mean of its atoms' as the structure groups them.
    atoms_of: dict[tuple[str, ...], list[float]] = {}
    for key_of_atom, value in zip(
        cif_residue_keys(sample.structure_path), conf.atom_plddts, strict=True
    ):
        atoms_of.setdefault(key_of_atom, []).append(value)
    assert len(conf.plddts) == residues == len(atoms_of)
    expected = [sum(v) / len(v) for v in atoms_of.values()]
    assert conf.plddts == pytest.approx(expected, rel=1e-12)


def test_sample_without_full_data_is_not_found() -> None:
    sample = read_task_samples(SERVER)[3]
    with pytest.raises(NotFound):
        sample_confidence(sample)


def test_by_rank_and_index_outside_the_samples_are_not_found() -> None:
    result = merge_seeds([read_task_samples(SERVER)])
    assert result.by_rank(1).sample_index == 0
    assert result.by_index(4).sample.sample == 4
    for rank in (0, 6):
        with pytest.raises(NotFound):
            result.by_rank(rank)
    with pytest.raises(NotFound):
        result.by_index(5)


def test_unusable_folders_are_plugin_errors(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="No AlphaFold 3 samples"):
        read_task_samples(tmp_path)
    with pytest.raises(PluginError):
        merge_seeds([])
    broken = tmp_path / "seed-1_sample-0"
    broken.mkdir()
    (broken / "summary_confidences.json").write_text("{not json")
    with pytest.raises(PluginError, match="Cannot read"):
        read_task_samples(tmp_path)
