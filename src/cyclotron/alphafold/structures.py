"""PDB and mmCIF files turned into AlphaFold 3 inputs: pure parsing, no network.

Errors (``services/intake/structures.py`` adds those of fetching; the structure routes map
them to HTTP in one place):

    InputError
    ├── UnsupportedStructureFormat   extension other than .pdb, .cif, .mmcif      → 422
    └── StructureParseError          gemmi cannot read it, or it has no polymer   → 422

Only polymer chains become ``sequences``; identical chains are grouped with a ``count``,
waters are dropped, and ligands and ions are named in ``warnings`` (crystals carry buffer
components such as sulfate that a prediction should not include unasked).
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from cyclotron.errors import InputError

if TYPE_CHECKING:
    import gemmi

EXTENSIONS = (".pdb", ".cif", ".mmcif")
# By the name of gemmi's PolymerType: gemmi is imported where a file is read, not by the
# server at start-up.
ENTITY_KEYS = {
    "PeptideL": ("proteinChain", "protein"),
    "Rna": ("rnaSequence", "rna"),
    "Dna": ("dnaSequence", "dna"),
}


class UnsupportedStructureFormat(InputError):
    """A file whose extension is not .pdb, .cif or .mmcif."""


class StructureParseError(InputError):
    """A structure file gemmi cannot read, or one without protein or nucleic-acid chains."""


def _read(data: bytes, filename: str) -> gemmi.Structure:
    import gemmi

    suffix = PurePath(filename).suffix.lower()
    if suffix not in EXTENSIONS:
        raise UnsupportedStructureFormat(
            f"unsupported file type {suffix or '(none)'!r}; use .pdb, .cif or .mmcif"
        )
    try:
        text = data.decode("utf-8", errors="replace")
        if suffix == ".pdb":
            structure = gemmi.read_pdb_string(text)
        else:
            structure = gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
        structure.setup_entities()
    except (ValueError, RuntimeError) as exc:
        raise StructureParseError(f"cannot parse {filename}: {exc}") from exc
    if len(structure) == 0:
        raise StructureParseError(f"{filename} has no model")
    return structure


def _one_letter(name: str) -> tuple[str, bool]:
    """The parent one-letter code of a residue and whether it is a modified one (MSE → M)."""
    import gemmi

    info = gemmi.find_tabulated_residue(name.split(",")[0])
    code = info.one_letter_code if info is not None else " "
    if not code.strip() or code == "?":
        return "X", True
    return code.upper(), code.islower()


def _chain_sequence(structure: gemmi.Structure, polymer: gemmi.ResidueSpan) -> list[str]:
    """Residue names of a chain: its entity's full (SEQRES) sequence if known, else the model's."""
    entity = structure.get_entity_of(polymer)
    if entity is not None and entity.full_sequence:
        return list(entity.full_sequence)
    return [residue.name for residue in polymer]


def _polymers(structure: gemmi.Structure, warnings: list[str]) -> list[tuple[str, str]]:
    chains: list[tuple[str, str]] = []
    for chain in structure[0]:
        polymer = chain.get_polymer()
        keys = ENTITY_KEYS.get(polymer.check_polymer_type().name) if len(polymer) else None
        if keys is None:
            if len(polymer):
                warnings.append(f"chain {chain.name}: polymer type not supported, skipped")
            continue
        codes = [_one_letter(name) for name in _chain_sequence(structure, polymer)]
        modified = sum(1 for _, is_modified in codes if is_modified)
        if modified:
            warnings.append(
                f"chain {chain.name}: {modified} modified residues replaced by their parents"
            )
        chains.append((keys[0], "".join(code for code, _ in codes)))
    return chains


def _hetero_warnings(structure: gemmi.Structure) -> list[str]:
    atoms: dict[str, list[int]] = {}
    for chain in structure[0]:
        for residue in chain.get_ligands():
            atoms.setdefault(residue.name, []).append(len(residue))
    return [
        f"{len(sizes)} x {'ion' if max(sizes) == 1 else 'ligand'} {name} not included"
        for name, sizes in sorted(atoms.items())
    ]


def parse_structure(
    data: bytes, filename: str, *, source: str = "upload", pdb_id: str | None = None
) -> dict[str, Any]:
    """A StructureParseResult: the polymer chains of the first model as an AlphaFold Server job."""
    structure = _read(data, filename)
    structure.remove_waters()
    warnings: list[str] = []
    if len(structure) > 1:
        warnings.append(f"{len(structure)} models; only the first is used")
    chains = _polymers(structure, warnings)
    if not chains:
        raise StructureParseError(f"{filename} has no protein, DNA or RNA chains")
    warnings.extend(_hetero_warnings(structure))
    counts = Counter(chains)  # insertion-ordered: first appearance decides the order
    sequences = [{key: {"sequence": seq, "count": n}} for (key, seq), n in counts.items()]
    name = pdb_id or _entry_id(structure) or PurePath(filename).stem
    return {
        "name": name,
        "sequences": sequences,
        "dialect": "alphafoldserver",
        "version": 1,
        "source": source,
        "pdb_id": pdb_id,
        "num_chains": len(chains),
        "num_residues": sum(len(seq) for _, seq in chains),
        "warnings": warnings,
    }


def _entry_id(structure: gemmi.Structure) -> str | None:
    entry = structure.info["_entry.id"] if "_entry.id" in structure.info else ""  # noqa: SIM401
    return entry or (structure.name if structure.name not in ("", "string") else None)
