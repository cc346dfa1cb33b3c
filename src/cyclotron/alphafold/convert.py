"""Write a checked AlphaFold 3 job as the ``alphafold3``-dialect JSON ``run_alphafold.py`` reads.

Version 2 is the default because it is what AlphaFold 3.0.0 itself writes (``*_data.json``) and
every later release still reads it; version 4 adds the per-entity ``description``, which is
dropped for lower versions. Glycans (AlphaFold Server only) have no field there and are dropped;
``validate`` warns about them.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

from cyclotron.alphafold.inputs import AlphaFoldInput, Entity

ALPHAFOLD3_JSON_VERSION = 2


def chain_id_sequence() -> Iterator[str]:
    """A, B, …, Z, AA, AB, …: the ids given to chains that come with a count."""
    width = 1
    while True:
        for index in range(26**width):
            letters = []
            for _ in range(width):
                index, rest = divmod(index, 26)
                letters.append(string.ascii_uppercase[rest])
            yield "".join(reversed(letters))
        width += 1


def assign_chain_ids(model: AlphaFoldInput) -> list[tuple[str, ...]]:
    """The chain ids of each entity: its own, or the next free ones for ``count`` copies."""
    taken = {c for e in model.entities for c in e.chain_ids}
    fresh = (c for c in chain_id_sequence() if c not in taken)
    return [e.chain_ids or tuple(next(fresh) for _ in range(e.count)) for e in model.entities]


def _entity_json(entity: Entity, ids: tuple[str, ...], version: int) -> dict[str, Any]:
    body: dict[str, Any] = {"id": ids[0] if len(ids) == 1 else list(ids)}
    if entity.kind == "ligand":
        if entity.smiles is not None:
            body["smiles"] = entity.smiles
        else:
            body["ccdCodes"] = list(entity.ccd_codes)
    else:
        body["sequence"] = entity.sequence
        if entity.modifications:
            keys = (
                ("ptmType", "ptmPosition")
                if entity.kind == "protein"
                else ("modificationType", "basePosition")
            )
            body["modifications"] = [
                {keys[0]: m.ccd, keys[1]: m.position} for m in entity.modifications
            ]
    for key, value in entity.extras.items():
        if key != "description" or version >= 4:
            body[key] = value
    return {entity.kind: body}


def to_alphafold3_json(
    model: AlphaFoldInput, version: int = ALPHAFOLD3_JSON_VERSION
) -> dict[str, Any]:
    """The ``alphafold3``-dialect input for ``run_alphafold.py --json_path``."""
    ids = assign_chain_ids(model)
    result: dict[str, Any] = {
        "name": model.name,
        "modelSeeds": list(model.seeds),
        "sequences": [
            _entity_json(e, i, version) for e, i in zip(model.entities, ids, strict=True)
        ],
        "dialect": "alphafold3",
        "version": version,
    }
    if model.bonded_atom_pairs:
        result["bondedAtomPairs"] = [[list(a), list(b)] for a, b in model.bonded_atom_pairs]
    if model.user_ccd:
        result["userCCD"] = model.user_ccd
    return result
