"""Reading, checking, converting and sizing AlphaFold 3 bodies in both dialects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.alphafold import SPEC_EXAMPLE

from cyclotron.alphafold.convert import chain_id_sequence, to_alphafold3_json
from cyclotron.alphafold.estimate import estimate
from cyclotron.alphafold.inputs import Entity, parse_input, read_input, validate
from cyclotron.errors import InputError

FIXTURE_FILES = [
    "alphafold3_dialect/alphafold_input.json",
    "alphafold3_dialect/erk2_phosphorylated.json",
    "alphafold3_dialect/kras_g12c_sotorasib.json",
    "alphafold3_dialect/modified_rna.json",
    "alphafold3_dialect/streptavidin_biotin_smiles.json",
    "alphafold3_dialect/tetr_dimer_dna.json",
    "alphafold3_dialect/ubiquitin_monomer.json",
    "alphafoldserver_dialect/example.json",
    "alphafoldserver_dialect/example_2025-01-27.json",
]


def jobs(af3_fixtures: Path, name: str) -> list[dict[str, Any]]:
    data = json.loads((af3_fixtures / "inputs" / name).read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


def af3(*sequences: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "dialect": "alphafold3",
        "version": 3,
        "name": "t",
        "modelSeeds": [1],
        "sequences": list(sequences),
        **extra,
    }


def molecule(entity: Entity) -> tuple[object, ...]:
    return (
        entity.kind,
        entity.count,
        entity.sequence,
        entity.ccd_codes,
        entity.smiles,
        entity.modifications,
    )


def messages(body: object) -> list[str]:
    return [str(p) for p in validate(body) if not p.warning]


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_fixture_parses_and_converts(af3_fixtures: Path, name: str) -> None:
    for job in jobs(af3_fixtures, name):
        model = parse_input(job)
        out = to_alphafold3_json(model)
        assert out["dialect"] == "alphafold3" and out["version"] == 2
        assert len(out["sequences"]) == len(job["sequences"])
        again = parse_input(out)  # the converted body reads back to the same molecules
        assert [molecule(e) for e in again.entities] == [molecule(e) for e in model.entities]
        assert again.seeds == model.seeds and again.bonded_atom_pairs == model.bonded_atom_pairs


def test_server_counts_become_chain_ids_and_ions_ligands(af3_fixtures: Path) -> None:
    job = jobs(af3_fixtures, "alphafoldserver_dialect/example_2025-01-27.json")[0]
    out = to_alphafold3_json(parse_input(job))
    ids = [next(iter(s.values()))["id"] for s in out["sequences"]]
    assert ids == ["A", "B", "C", "D", "E", "F", ["G", "H"], ["I", "J"], ["K", "L", "M"]]
    assert out["sequences"][5] == {"ligand": {"id": "F", "ccdCodes": ["ATP"]}}
    assert out["sequences"][7] == {"ligand": {"id": ["I", "J"], "ccdCodes": ["MG"]}}
    assert out["sequences"][0]["protein"]["modifications"] == [
        {"ptmType": "HY3", "ptmPosition": 1},
        {"ptmType": "P1L", "ptmPosition": 5},
    ]
    assert out["sequences"][2]["dna"]["modifications"][0] == {
        "modificationType": "6OG",
        "basePosition": 1,
    }
    assert out["modelSeeds"] == [42]  # the server's [] means "pick one": the default
    assert [str(p) for p in validate(job)] == [
        "sequences[0].proteinChain.glycans: not supported by run_alphafold.py; dropped"
    ]


def test_alphafold3_fixture_keeps_ids_bonds_smiles_and_msas(af3_fixtures: Path) -> None:
    job = jobs(af3_fixtures, "alphafold3_dialect/alphafold_input.json")[0]
    out = to_alphafold3_json(parse_input(job), version=3)
    assert out["modelSeeds"] == [10, 42]
    assert out["bondedAtomPairs"] == job["bondedAtomPairs"]
    assert (
        out["sequences"][0]["protein"]["pairedMsa"] == job["sequences"][0]["protein"]["pairedMsa"]
    )
    assert out["sequences"][-1] == job["sequences"][-1]  # SMILES ligand Z
    assert out["sequences"][8]["ligand"]["ccdCodes"] == ["NAG", "FUC"]


def test_description_only_from_version_4(af3_fixtures: Path) -> None:
    model = parse_input(jobs(af3_fixtures, "alphafold3_dialect/ubiquitin_monomer.json")[0])
    assert "description" not in to_alphafold3_json(model)["sequences"][0]["protein"]
    assert "description" in to_alphafold3_json(model, version=4)["sequences"][0]["protein"]


def test_spec_example_reads_with_overrides() -> None:
    model = parse_input(SPEC_EXAMPLE)
    assert model.seeds == (42, 7) and model.num_samples == 5 and model.precision == "bfloat16"
    assert estimate(model) == {"num_residues": 44, "num_chains": 3, "estimated_memory_gb": 4.2}


def test_chain_ids_run_past_z() -> None:
    ids = [c for c, _ in zip(chain_id_sequence(), range(28), strict=False)]
    assert ids[:3] == ["A", "B", "C"] and ids[25:] == ["Z", "AA", "AB"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "body: must be a JSON object"),
        ({"sequences": []}, "sequences: must be a non-empty list"),
        ({"dialect": "x", "sequences": [{}]}, "dialect: must be 'alphafoldserver' or 'alphafold3'"),
        (
            {"sequences": [{"proteinChain": {"sequence": "MKZ", "count": 1}}]},
            "sequences[0].proteinChain.sequence: letters 'Z' are not in the protein alphabet",
        ),
        (
            {"sequences": [{"rnaSequence": {"sequence": "ACGT", "count": 1}}]},
            "sequences[0].rnaSequence.sequence: letters 'T' are not in the rna alphabet",
        ),
        (
            {"sequences": [{"dnaSequence": {"sequence": "ACGU", "count": 1}}]},
            "sequences[0].dnaSequence.sequence: letters 'U' are not in the dna alphabet",
        ),
        (
            {"sequences": [{"proteinChain": {"sequence": "MK", "count": 0}}]},
            "sequences[0].proteinChain.count: must be an integer of at least 1",
        ),
        (
            {"sequences": [{"ligand": {"ligand": "ATP", "count": 1}}]},
            "sequences[0].ligand.ligand: must be a CCD code written 'CCD_<code>'",
        ),
        (
            {"sequences": [{"proteinChain": {"sequence": "MK"}, "dnaSequence": {"sequence": "A"}}]},
            "sequences[0]: must hold exactly one of",
        ),
        (
            {"modelSeeds": [1, 1], "sequences": [{"proteinChain": {"sequence": "MK"}}]},
            "modelSeeds[1]: duplicate seed 1",
        ),
        (
            {"modelSeeds": [1.5], "sequences": [{"proteinChain": {"sequence": "MK"}}]},
            "modelSeeds[0]: must be an integer from 0 to 2147483647",
        ),
        (
            {"numSamples": 0, "sequences": [{"proteinChain": {"sequence": "MK"}}]},
            "numSamples: must be an integer of at least 1",
        ),
        (
            {"precision": "int8", "sequences": [{"proteinChain": {"sequence": "MK"}}]},
            "precision: must be one of float32, float16, bfloat16",
        ),
        (
            af3(
                {"protein": {"id": "A", "sequence": "MK"}},
                {"dna": {"id": ["B", "A"], "sequence": "AC"}},
            ),
            "sequences: duplicate chain id 'A'",
        ),
        (
            af3({"protein": {"id": "a1", "sequence": "MK"}}),
            "sequences[0].protein.id: chain id 'a1' must be upper-case letters A-Z",
        ),
        (
            af3({"ligand": {"id": "A", "ccdCodes": ["atp!"]}}),
            "sequences: CCD code 'atp!' must be 1-5 upper-case letters or digits",
        ),
        (
            af3({"ligand": {"id": "A"}}),
            "sequences[0].ligand: must have exactly one of ccdCodes and smiles",
        ),
        (
            af3({"ligand": {"id": "A", "smiles": " "}}),
            "sequences[0].ligand.smiles: must be a non-empty SMILES",
        ),
        (
            af3(
                {
                    "protein": {
                        "id": "A",
                        "sequence": "MK",
                        "modifications": [{"ptmType": "SEP", "ptmPosition": 3}],
                    }
                }
            ),
            "sequences[0].protein.modifications[0].ptmPosition: must be a residue index from 1 to 2",  # noqa: E501
        ),
        (
            af3(
                {"protein": {"id": "A", "sequence": "MK"}},
                bondedAtomPairs=[[["B", 1, "CA"], ["A", 1, "CA"]]],
            ),
            "bondedAtomPairs[0][0]: unknown chain id 'B'",
        ),
        (
            af3(
                {"protein": {"id": "A", "sequence": "MK"}},
                bondedAtomPairs=[[["A", 3, "CA"], ["A", 1, "CA"]]],
            ),
            "bondedAtomPairs[0][0]: residue index 3 is outside chain A (1 to 2)",
        ),
        (
            af3({"protein": {"id": "A", "sequence": "MK"}}, bondedAtomPairs=[[["A", 1, "CA"]]]),
            "bondedAtomPairs[0]: must be two atoms",
        ),
        (
            af3({"protein": {"id": "A", "sequence": "MK"}}, restraints=[1]),
            "restraints: must be an object or null",
        ),
    ],
)
def test_validation_names_each_error(body: object, expected: str) -> None:
    found = messages(body)
    assert any(m.startswith(expected) for m in found), found
    with pytest.raises(InputError, match=r"\w"):
        parse_input(body)


def test_user_ccd_allows_custom_codes_and_valid_body_has_no_problems() -> None:
    body = af3({"ligand": {"id": "A", "ccdCodes": ["my-lig"]}}, userCCD="data_my-lig\n")
    assert validate(body) == []
    assert read_input(body)[0] is not None


def test_estimate_counts_ligand_atoms_and_grows_with_tokens(af3_fixtures: Path) -> None:
    tetr = parse_input(jobs(af3_fixtures, "alphafold3_dialect/tetr_dimer_dna.json")[0])
    assert estimate(tetr) == {"num_residues": 476, "num_chains": 4, "estimated_memory_gb": 4.8}
    biotin = parse_input(
        jobs(af3_fixtures, "alphafold3_dialect/streptavidin_biotin_smiles.json")[0]
    )
    assert estimate(biotin)["num_residues"] == 126 and estimate(biotin)["num_chains"] == 2
    big = parse_input({"sequences": [{"proteinChain": {"sequence": "A" * 1000, "count": 5}}]})
    assert estimate(big)["estimated_memory_gb"] == 80.0  # 5000 tokens pad to the 5120 bucket
