"""The AlphaFold 3 input key: order, seeds, dialect and inference settings do not change it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from cyclotron.alphafold.cache_key import input_key
from cyclotron.errors import InputError

PROTEIN = "MKTAYIAKQRQISFVKSHFSRQ"
SERVER: dict[str, Any] = {
    "name": "desi1_dimer",
    "modelSeeds": [42, 7],
    "dialect": "alphafoldserver",
    "version": 1,
    "sequences": [
        {"proteinChain": {"sequence": PROTEIN, "count": 2}},
        {
            "dnaSequence": {
                "sequence": "GATTACA",
                "count": 1,
                "modifications": [{"modificationType": "CCD_6OG", "basePosition": 1}],
            }
        },
        {"ion": {"ion": "MG", "count": 1}},
    ],
}
AF3: dict[str, Any] = {
    "name": "other name",
    "modelSeeds": [1],
    "dialect": "alphafold3",
    "version": 3,
    "sequences": [
        {"ligand": {"id": "D", "ccdCodes": ["MG"]}},
        {
            "dna": {
                "id": "C",
                "sequence": "GATTACA",
                "modifications": [{"modificationType": "6OG", "basePosition": 1}],
            }
        },
        {"protein": {"id": ["A", "B"], "sequence": PROTEIN}},
    ],
}


def test_key_is_sha256_hex_of_the_documented_canonical_json() -> None:
    canonical = {
        "service": "alphafold3",
        "plugin_version": "",
        "input": [
            ["dna", "GATTACA", [["6OG", 1]]],
            ["ligand", "ccd:MG", []],
            ["protein", PROTEIN, []],
            ["protein", PROTEIN, []],
        ],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    assert input_key(SERVER) == hashlib.sha256(text.encode()).hexdigest()


def test_reordered_chains_and_other_seeds_give_the_same_key() -> None:
    reordered = {**SERVER, "sequences": SERVER["sequences"][::-1], "modelSeeds": [3], "name": "x"}
    assert input_key(reordered) == input_key(SERVER)


def test_dialects_describing_the_same_molecules_agree() -> None:
    assert input_key(AF3) == input_key(SERVER)
    repeated = {
        **AF3,
        "sequences": [
            *AF3["sequences"][:2],
            {"protein": {"id": "A", "sequence": PROTEIN}},
            {"protein": {"id": "B", "sequence": PROTEIN}},
        ],
    }
    assert input_key(repeated) == input_key(SERVER)


def test_inference_settings_are_left_out() -> None:
    tuned = {
        **SERVER,
        "numSamples": 1,
        "diffusionSteps": 50,
        "precision": "float32",
        "restraints": {},
    }
    assert input_key(tuned) == input_key(SERVER)


@pytest.mark.parametrize(
    "change",
    [
        {"sequences": [{"proteinChain": {"sequence": PROTEIN[:-1] + "A", "count": 2}}]},
        {"sequences": [{"proteinChain": {"sequence": PROTEIN, "count": 3}}]},
        {
            "sequences": [
                {
                    "proteinChain": {
                        "sequence": PROTEIN,
                        "count": 2,
                        "modifications": [{"ptmType": "CCD_SEP", "ptmPosition": 3}],
                    }
                }
            ]
        },
    ],
)
def test_changed_molecules_change_the_key(change: dict[str, Any]) -> None:
    base = {**SERVER, "sequences": SERVER["sequences"][:1]}
    assert input_key({**SERVER, **change}) != input_key(base)


def test_service_and_plugin_version_are_part_of_the_key() -> None:
    assert input_key(SERVER, service="af3-b") != input_key(SERVER)
    assert input_key(SERVER, plugin_version="1.1") != input_key(SERVER)


def test_invalid_body_raises() -> None:
    with pytest.raises(InputError, match="sequences"):
        input_key({"sequences": []})


def test_fixture_jobs_have_distinct_keys(af3_fixtures: Path) -> None:
    keys = set()
    for path in sorted((af3_fixtures / "inputs" / "alphafold3_dialect").glob("*.json")):
        keys.add(input_key(json.loads(path.read_text(encoding="utf-8"))))
    assert len(keys) == 7
