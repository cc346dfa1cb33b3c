"""An AlphaFold 3 job body, in either input dialect, read into one frozen model.

``read_input`` returns the model (``None`` when there are errors) and every problem found;
``validate`` returns the problems only and ``parse_input`` raises ``InputError`` listing them.
The ``alphafoldserver`` dialect keeps ``count`` per entity and gets chain ids when it is
converted (``convert.py``); ions of that dialect become single-code ligands, as in the other one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from cyclotron.alphafold.model import (
    AF3_KINDS,
    ALPHABETS,
    CCD_CODE,
    CHAIN_ID,
    DEFAULT_SEEDS,
    PASSTHROUGH,
    PRECISIONS,
    SERVER_KINDS,
    AlphaFoldInput,
    AtomRef,
    Entity,
    Modification,
    Problem,
)
from cyclotron.domain.ports import MAX_SEED
from cyclotron.errors import InputError

__all__ = [
    "AlphaFoldInput",
    "Entity",
    "Modification",
    "Problem",
    "parse_input",
    "read_input",
    "validate",
]


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Reader:
    """Walks a body once, collecting problems while it builds the entities."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, location: str, message: str) -> None:
        self.problems.append(Problem(location, message))

    def read(self, body: object) -> AlphaFoldInput | None:
        if not isinstance(body, Mapping):
            self.error("body", "must be a JSON object")
            return None
        name = body.get("name", "unnamed")
        if not isinstance(name, str) or not name.strip():
            self.error("name", "must be a non-empty string")
        dialect = body.get("dialect") or _guess_dialect(body.get("sequences"))
        if dialect not in ("alphafoldserver", "alphafold3"):
            self.error("dialect", "must be 'alphafoldserver' or 'alphafold3'")
            return None
        entities = self.sequences(body.get("sequences"), dialect)
        user_ccd = body.get("userCCD")
        if user_ccd is not None and not isinstance(user_ccd, str):
            self.error("userCCD", "must be a string or null")
        self.check_ccd_codes(entities, custom=bool(user_ccd))
        return AlphaFoldInput(
            name=name if isinstance(name, str) else "unnamed",
            dialect=dialect,
            seeds=self.seeds(body.get("modelSeeds")),
            entities=entities,
            bonded_atom_pairs=self.bonds(body.get("bondedAtomPairs"), entities),
            user_ccd=user_ccd if isinstance(user_ccd, str) else None,
            num_samples=self.positive(body, "numSamples"),
            diffusion_steps=self.positive(body, "diffusionSteps"),
            precision=self.precision(body.get("precision")),
            restraints=self.mapping(body, "restraints"),
            guidance=self.mapping(body, "guidance"),
        )

    def seeds(self, value: object) -> tuple[int, ...]:
        # AlphaFold Server writes [] for "pick a seed" and downloads seeds as digit strings.
        if value is None or value == []:
            return DEFAULT_SEEDS
        if not isinstance(value, list):
            self.error("modelSeeds", "must be a list of integers")
            return DEFAULT_SEEDS
        seeds: list[int] = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.isdigit():
                item = int(item)
            if not _is_int(item) or not 0 <= item <= MAX_SEED:
                self.error(f"modelSeeds[{i}]", f"must be an integer from 0 to {MAX_SEED}")
            elif item in seeds:
                self.error(f"modelSeeds[{i}]", f"duplicate seed {item}")
            else:
                seeds.append(item)
        return tuple(seeds) or DEFAULT_SEEDS

    def positive(self, body: Mapping[str, Any], key: str) -> int | None:
        value = body.get(key)
        if value is None:
            return None
        if not _is_int(value) or value < 1:
            self.error(key, "must be an integer of at least 1")
            return None
        return int(value)

    def precision(self, value: object) -> str | None:
        if value is None or value in PRECISIONS:
            return value
        self.error("precision", f"must be one of {', '.join(PRECISIONS)}")
        return None

    def mapping(self, body: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
        value = body.get(key)
        if value is not None and not isinstance(value, Mapping):
            self.error(key, "must be an object or null")
            return None
        return value

    def sequences(self, value: object, dialect: str) -> tuple[Entity, ...]:
        if not isinstance(value, list) or not value:
            self.error("sequences", "must be a non-empty list")
            return ()
        kinds = SERVER_KINDS if dialect == "alphafoldserver" else AF3_KINDS
        entities = []
        for i, entry in enumerate(value):
            keys = [k for k in entry if k in kinds] if isinstance(entry, Mapping) else []
            if len(keys) != 1 or not isinstance(entry[keys[0]], Mapping):
                names = ", ".join(kinds)
                self.error(f"sequences[{i}]", f"must hold exactly one of {names} ({dialect})")
                continue
            entity = self.entity(f"sequences[{i}].{keys[0]}", keys[0], entry[keys[0]], dialect)
            if entity is not None:
                entities.append(entity)
        self.check_chain_ids(entities)
        return tuple(entities)

    def entity(self, loc: str, key: str, data: Mapping[str, Any], dialect: str) -> Entity | None:
        server = dialect == "alphafoldserver"
        kind = SERVER_KINDS[key] if server else AF3_KINDS[key]
        count, ids = self.count(loc, data) if server else self.ids(loc, data)
        extras = {k: data[k] for k in PASSTHROUGH if k in data}
        if kind == "ligand":
            codes, smiles = self.ligand(loc, key, data)
            return Entity(kind, count, ids, ccd_codes=codes, smiles=smiles, extras=extras)
        sequence = data.get("sequence")
        if not isinstance(sequence, str) or not sequence:
            self.error(f"{loc}.sequence", "must be a non-empty string")
            return None
        bad = sorted(set(sequence) - ALPHABETS[kind])
        if bad:
            allowed = "".join(sorted(ALPHABETS[kind]))
            self.error(
                f"{loc}.sequence",
                f"letters {''.join(bad)!r} are not in the {kind} alphabet {allowed}",
            )
        mods = self.modifications(loc, kind, data.get("modifications"), len(sequence), server)
        glycans = self.glycans(loc, data.get("glycans"), len(sequence))
        return Entity(
            kind, count, ids, sequence, modifications=mods, glycans=glycans, extras=extras
        )

    def count(self, loc: str, data: Mapping[str, Any]) -> tuple[int, tuple[str, ...]]:
        count = data.get("count", 1)
        if not _is_int(count) or count < 1:
            self.error(f"{loc}.count", "must be an integer of at least 1")
            return 1, ()
        return int(count), ()

    def ids(self, loc: str, data: Mapping[str, Any]) -> tuple[int, tuple[str, ...]]:
        value = data.get("id")
        ids = [value] if isinstance(value, str) else value
        if not isinstance(ids, list) or not ids:
            self.error(f"{loc}.id", "must be a chain id or a non-empty list of chain ids")
            return 1, ()
        for chain in ids:
            if not isinstance(chain, str) or not CHAIN_ID.match(chain):
                self.error(f"{loc}.id", f"chain id {chain!r} must be upper-case letters A-Z")
        good = tuple(c for c in ids if isinstance(c, str))
        return max(len(good), 1), good

    def check_chain_ids(self, entities: list[Entity]) -> None:
        seen: set[str] = set()
        for entity in entities:
            for chain in entity.chain_ids:
                if chain in seen:
                    self.error("sequences", f"duplicate chain id {chain!r}")
                seen.add(chain)

    def ligand(
        self, loc: str, key: str, data: Mapping[str, Any]
    ) -> tuple[tuple[str, ...], str | None]:
        if key == "ion":  # AlphaFold Server ions carry no CCD_ prefix
            code = data.get("ion")
            return ((code,) if isinstance(code, str) else ("",)), None
        if key == "ligand" and "ligand" in data:  # AlphaFold Server: "CCD_ATP"
            code = data.get("ligand")
            if not isinstance(code, str) or not code.startswith("CCD_"):
                self.error(f"{loc}.ligand", "must be a CCD code written 'CCD_<code>'")
                return ("",), None
            return (code.removeprefix("CCD_"),), None
        codes, smiles = data.get("ccdCodes"), data.get("smiles")
        if (codes is None) == (smiles is None):
            self.error(loc, "must have exactly one of ccdCodes and smiles")
        elif smiles is not None and (not isinstance(smiles, str) or not smiles.strip()):
            self.error(f"{loc}.smiles", "must be a non-empty SMILES string")
        elif codes is not None and (not isinstance(codes, list) or not codes):
            self.error(f"{loc}.ccdCodes", "must be a non-empty list of CCD codes")
        if isinstance(codes, list):
            return tuple(str(c) for c in codes), None
        return (), smiles if isinstance(smiles, str) else None

    def check_ccd_codes(self, entities: tuple[Entity, ...], *, custom: bool) -> None:
        # With a userCCD the job may define its own component names.
        for entity in entities:
            codes = entity.ccd_codes + tuple(m.ccd for m in entity.modifications)
            for code in codes:
                if not CCD_CODE.match(code) and not (custom and code.strip()):
                    self.error(
                        "sequences", f"CCD code {code!r} must be 1-5 upper-case letters or digits"
                    )

    def modifications(
        self, loc: str, kind: str, items: object, length: int, server: bool
    ) -> tuple[Modification, ...]:
        if items is None:
            return ()
        if not isinstance(items, list):
            self.error(f"{loc}.modifications", "must be a list")
            return ()
        type_key, pos_key = (
            ("ptmType", "ptmPosition")
            if kind == "protein"
            else ("modificationType", "basePosition")
        )
        mods = []
        for i, item in enumerate(items):
            here = f"{loc}.modifications[{i}]"
            code = item.get(type_key) if isinstance(item, Mapping) else None
            pos = item.get(pos_key) if isinstance(item, Mapping) else None
            if not isinstance(code, str) or (server and not code.startswith("CCD_")):
                self.error(
                    f"{here}.{type_key}",
                    "must be a CCD code" + (" written 'CCD_<code>'" if server else ""),
                )
            elif not _is_int(pos) or not 1 <= pos <= length:
                self.error(f"{here}.{pos_key}", f"must be a residue index from 1 to {length}")
            else:
                mods.append(Modification(code.removeprefix("CCD_") if server else code, pos))
        return tuple(mods)

    def glycans(self, loc: str, items: object, length: int) -> tuple[tuple[str, int], ...]:
        glycans = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            pos = item.get("position") if isinstance(item, Mapping) else None
            residues = item.get("residues") if isinstance(item, Mapping) else None
            if not isinstance(residues, str) or not _is_int(pos) or not 1 <= pos <= length:
                self.error(
                    f"{loc}.glycans[{i}]", f"needs residues and a position from 1 to {length}"
                )
            else:
                glycans.append((residues, int(pos)))
        if glycans:
            self.problems.append(
                Problem(f"{loc}.glycans", "not supported by run_alphafold.py; dropped", True)
            )
        return tuple(glycans)

    def bonds(
        self, value: object, entities: tuple[Entity, ...]
    ) -> tuple[tuple[AtomRef, AtomRef], ...]:
        if value is None:
            return ()
        sizes = {c: _residue_count(e) for e in entities for c in e.chain_ids}
        pairs = []
        for i, pair in enumerate(value if isinstance(value, list) else [None]):
            atoms = [
                self.atom(f"bondedAtomPairs[{i}][{j}]", a, sizes) for j, a in enumerate(_pair(pair))
            ]
            if len(atoms) != 2:
                self.error(
                    f"bondedAtomPairs[{i}]",
                    "must be two atoms [chain id, residue index, atom name]",
                )
            elif atoms[0] is not None and atoms[1] is not None:
                pairs.append((atoms[0], atoms[1]))
        return tuple(pairs)

    def atom(self, loc: str, value: object, sizes: Mapping[str, int]) -> AtomRef | None:
        if not (isinstance(value, list) and len(value) == 3 and _is_int(value[1])):
            self.error(loc, "must be [chain id, residue index, atom name]")
            return None
        chain, index, atom = value
        if chain not in sizes:
            self.error(loc, f"unknown chain id {chain!r}")
        elif not 1 <= index <= sizes[chain]:
            self.error(loc, f"residue index {index} is outside chain {chain} (1 to {sizes[chain]})")
        elif not isinstance(atom, str) or not atom:
            self.error(loc, "atom name must be a non-empty string")
        else:
            return (chain, index, atom)
        return None


def _pair(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _residue_count(entity: Entity) -> int:
    if entity.kind != "ligand":
        return len(entity.sequence)
    return len(entity.ccd_codes) or 1


def _guess_dialect(sequences: object) -> str:
    """A body without ``dialect`` is ``alphafoldserver`` unless its entities say otherwise."""
    if isinstance(sequences, list):
        keys = {k for entry in sequences if isinstance(entry, Mapping) for k in entry}
        if keys & {"protein", "rna", "dna"} or any(
            isinstance(e, Mapping) and isinstance(e.get("ligand"), Mapping) and "id" in e["ligand"]
            for e in sequences
        ):
            return "alphafold3"
    return "alphafoldserver"


def read_input(body: object) -> tuple[AlphaFoldInput | None, list[Problem]]:
    """Read a body into the model; the model is ``None`` when any problem is an error."""
    reader = _Reader()
    model = reader.read(body)
    errors = [p for p in reader.problems if not p.warning]
    return (None if errors else model), reader.problems


def validate(body: object) -> list[Problem]:
    """Every problem of a body (errors and warnings), each with its location."""
    return read_input(body)[1]


def parse_input(body: object) -> AlphaFoldInput:
    """The model of a valid body; ``InputError`` listing every error otherwise."""
    model, problems = read_input(body)
    if model is None:
        raise InputError("; ".join(str(p) for p in problems if not p.warning))
    return model
