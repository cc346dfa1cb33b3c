"""The frozen model of an AlphaFold 3 job, shared by both input dialects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["protein", "rna", "dna", "ligand"]

ALPHABETS: dict[str, frozenset[str]] = {
    "protein": frozenset("ACDEFGHIKLMNPQRSTVWYX"),
    "rna": frozenset("ACGUN"),
    "dna": frozenset("ACGTN"),
}
CCD_CODE = re.compile(r"^[A-Z0-9]{1,5}$")
CHAIN_ID = re.compile(r"^[A-Z]+$")
PRECISIONS = ("float32", "float16", "bfloat16")
DEFAULT_SEEDS = (42,)
SERVER_KINDS: dict[str, Kind] = {
    "proteinChain": "protein",
    "rnaSequence": "rna",
    "dnaSequence": "dna",
    "ligand": "ligand",
    "ion": "ligand",
}
AF3_KINDS: dict[str, Kind] = {"protein": "protein", "rna": "rna", "dna": "dna", "ligand": "ligand"}
# Fields the converter passes through unchanged (MSAs, templates, description).
PASSTHROUGH = ("unpairedMsa", "pairedMsa", "templates", "description")

AtomRef = tuple[str, int, str]


@dataclass(frozen=True)
class Problem:
    """One finding about a body; ``str()`` gives the wire form ``"<location>: <message>"``."""

    location: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class Modification:
    """A modified residue: its CCD code (no ``CCD_`` prefix) at a 1-based position."""

    ccd: str
    position: int


@dataclass(frozen=True)
class Entity:
    """One entry of ``sequences``: ``count`` copies, with explicit ``chain_ids`` or none yet."""

    kind: Kind
    count: int
    chain_ids: tuple[str, ...] = ()
    sequence: str = ""
    ccd_codes: tuple[str, ...] = ()
    smiles: str | None = None
    modifications: tuple[Modification, ...] = ()
    glycans: tuple[tuple[str, int], ...] = ()
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlphaFoldInput:
    """A checked AlphaFold 3 job, independent of the dialect it came in."""

    name: str
    dialect: str
    seeds: tuple[int, ...]
    entities: tuple[Entity, ...]
    bonded_atom_pairs: tuple[tuple[AtomRef, AtomRef], ...] = ()
    user_ccd: str | None = None
    num_samples: int | None = None
    diffusion_steps: int | None = None
    precision: str | None = None
    restraints: Mapping[str, Any] | None = None
    guidance: Mapping[str, Any] | None = None
