"""The AlphaFold 3 input key of ``POST /api/cache/check`` and ``JobDetail.input.key`` (spec §9).

The cache behind it holds data-pipeline output (MSAs and templates), so the key covers the
molecules only: one ``[type, sequence, modifications]`` entry per chain, repeated ``count``
times and sorted. Chain order, chain ids, dialect, job name, seeds and the inference settings
(``numSamples``, ``diffusionSteps``, ``precision``, ``restraints``, ``guidance``) leave it
unchanged. Ligands stand in as ``ccd:<codes>`` or ``smiles:<text>``.
"""

from __future__ import annotations

from cyclotron.alphafold.inputs import AlphaFoldInput, Entity, parse_input
from cyclotron.domain.cachekeys import canonical_key

Molecule = tuple[str, str, tuple[tuple[str, int], ...]]


def _molecule(entity: Entity) -> Molecule:
    if entity.kind != "ligand":
        identity = entity.sequence
    elif entity.smiles is not None:
        identity = f"smiles:{entity.smiles}"
    else:
        identity = "ccd:" + ",".join(entity.ccd_codes)
    mods = tuple(sorted((m.ccd, m.position) for m in entity.modifications))
    return (entity.kind, identity, mods)


def canonical_molecules(model: AlphaFoldInput) -> list[Molecule]:
    """One sorted entry per chain: what decides the data-pipeline output."""
    return sorted(_molecule(e) for e in model.entities for _ in range(e.count))


def input_key(body: object, *, service: str = "alphafold3", plugin_version: str = "") -> str:
    """Lowercase hex SHA-256 of an AlphaFold 3 body's canonical input; ``InputError`` if invalid."""
    molecules = canonical_molecules(parse_input(body))
    payload = [[kind, identity, [list(m) for m in mods]] for kind, identity, mods in molecules]
    return canonical_key(service, plugin_version, payload)
