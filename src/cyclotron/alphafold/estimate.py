"""Size and GPU-memory estimate of an AlphaFold 3 job, for ``POST /api/validate``.

Tokens: one per polymer residue, one per ligand heavy atom (how AlphaFold 3 tokenises). Ligand
atom counts are not known without the CCD, so a CCD ligand counts ``ATOMS_PER_CCD_LIGAND`` (a
typical drug-sized ligand), an ion (code of at most two letters) one, and a SMILES ligand its
written heavy atoms.

Memory: ``BASE_GB + PAIR_GB_PER_TOKEN2 × padded²``. The pair representation and triangle
updates grow with the square of the token count, padded up to ``run_alphafold.py``'s default
buckets. The constants put 5,120 tokens at 80 GB, the size the AlphaFold 3 documentation
gives for one A100 80 GB; ``BASE_GB`` covers the weights and the JAX runtime. It is a planning
figure, not a promise: real use also depends on flash attention, precision and unified memory.
"""

from __future__ import annotations

import re

from cyclotron.alphafold.inputs import AlphaFoldInput, Entity

BUCKETS = (256, 512, 768, 1024, 1280, 1536, 2048, 2560, 3072, 3584, 4096, 4608, 5120)
BASE_GB = 4.0
PAIR_GB_PER_TOKEN2 = 76.0 / 5120**2
ATOMS_PER_CCD_LIGAND = 30
_SMILES_ATOM = re.compile(r"\[[^\]]+\]|Cl|Br|[BCNOPSFI]|[bcnops]")


def ligand_atoms(entity: Entity) -> int:
    """Estimated heavy atoms of one copy of a ligand entity."""
    if entity.smiles is not None:
        return max(1, len(_SMILES_ATOM.findall(entity.smiles)))
    return sum(
        1 if len(code) <= 2 and code.isalpha() else ATOMS_PER_CCD_LIGAND
        for code in entity.ccd_codes
    )


def num_tokens(model: AlphaFoldInput) -> int:
    """Polymer residues plus ligand atoms, over every copy."""
    return sum(
        e.count * (ligand_atoms(e) if e.kind == "ligand" else len(e.sequence))
        for e in model.entities
    )


def padded_tokens(tokens: int) -> int:
    """The bucket ``run_alphafold.py`` pads to (the count itself past the last bucket)."""
    return next((b for b in BUCKETS if b >= tokens), tokens)


def estimate(model: AlphaFoldInput) -> dict[str, float | int]:
    """``{num_residues, num_chains, estimated_memory_gb}`` as ``/api/validate`` reports them."""
    padded = padded_tokens(num_tokens(model))
    return {
        "num_residues": sum(
            e.count * len(e.sequence) for e in model.entities if e.kind != "ligand"
        ),
        "num_chains": sum(e.count for e in model.entities),
        "estimated_memory_gb": round(BASE_GB + PAIR_GB_PER_TOKEN2 * padded**2, 1),
    }
