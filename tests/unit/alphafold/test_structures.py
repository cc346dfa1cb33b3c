"""PDB/mmCIF parsing of the real 1A8O and 1A7G files."""

from __future__ import annotations

from pathlib import Path

import gemmi
import pytest

from cyclotron.alphafold.structures import (
    StructureParseError,
    UnsupportedStructureFormat,
    parse_structure,
)

E2_1A7G = "ATTPIIHLKGDANILKCLRYRLSKYKQLYEQVSSTWHWTCTDGKHKNAIVTLTYISTSQRDDFLNTVVIPNTVSVSTGYMTI"


def test_1a8o_pdb_one_chain_of_70_with_selenomethionine_as_met(af3_fixtures: Path) -> None:
    data = (af3_fixtures / "structures" / "1A8O.pdb").read_bytes()
    result = parse_structure(data, "1A8O.pdb")
    assert result["name"] == "1A8O" and result["source"] == "upload" and result["pdb_id"] is None
    assert result["dialect"] == "alphafoldserver" and result["version"] == 1
    assert (result["num_chains"], result["num_residues"]) == (1, 70)
    sequence = result["sequences"][0]["proteinChain"]["sequence"]
    assert len(sequence) == 70 and result["sequences"][0]["proteinChain"]["count"] == 1
    # MSE at author numbers 151, 185, 214, 215 (the chain starts at 151).
    assert [sequence[n - 151] for n in (151, 185, 214, 215)] == ["M"] * 4
    assert result["warnings"] == [
        "chain A: 4 modified residues replaced by their parents"
    ]  # 88 HOH dropped


def test_1a7g_cif_protein_kept_sulfates_reported_water_dropped(af3_fixtures: Path) -> None:
    data = (af3_fixtures / "structures" / "1A7G.cif").read_bytes()
    result = parse_structure(data, "1a7g.MMCIF", source="rcsb", pdb_id="1A7G")
    assert result["sequences"] == [{"proteinChain": {"sequence": E2_1A7G, "count": 1}}]
    assert (result["num_chains"], result["num_residues"]) == (1, 82)
    assert result["warnings"] == ["2 x ligand SO4 not included"]
    assert (result["source"], result["pdb_id"], result["name"]) == ("rcsb", "1A7G", "1A7G")


def test_identical_chains_are_grouped_with_a_count(af3_fixtures: Path, tmp_path: Path) -> None:
    structure = gemmi.read_structure(str(af3_fixtures / "structures" / "1A8O.pdb"))
    copy = structure[0]["A"].clone()
    copy.name = "B"
    structure[0].add_chain(copy)
    structure.setup_entities()
    result = parse_structure(structure.make_pdb_string().encode(), "dimer.pdb")
    assert len(result["sequences"]) == 1 and result["sequences"][0]["proteinChain"]["count"] == 2
    assert (result["num_chains"], result["num_residues"]) == (2, 140)


@pytest.mark.parametrize("filename", ["model.txt", "model.pdb.gz", "model"])
def test_other_extensions_are_refused(filename: str) -> None:
    with pytest.raises(UnsupportedStructureFormat, match="unsupported file type"):
        parse_structure(b"HEADER", filename)


@pytest.mark.parametrize(
    ("data", "filename"), [(b"not a cif", "x.cif"), (b"HEADER nothing\nEND\n", "x.pdb")]
)
def test_unreadable_or_empty_structures_are_parse_errors(data: bytes, filename: str) -> None:
    with pytest.raises(StructureParseError):
        parse_structure(data, filename)
