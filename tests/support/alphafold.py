"""Where the shared AlphaFold 3 fixtures are (``../shared/fixtures/alphafold3``, README there)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

AF3_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "alphafold3"
AF3_ABSENT = f"the shared AlphaFold 3 fixtures are absent ({AF3_FIXTURES})"
AF3_LOCAL_JOB = AF3_FIXTURES / "af3_local" / "7adt_a_u_no_peptide_msa_can"
# The double reads no genetic database; any existing folder as ``db_dir`` makes the service run
# the data pipeline by default, as a site's does.
DOUBLE_DB_DIR = str(AF3_FIXTURES)
DOUBLE_COMMAND = Path(__file__).resolve().parent / "alphafold3_command_double.py"


def double_service(**more: Any) -> dict[str, Any]:
    """An ``alphafold3`` service whose command is the test double (its licensed weights
    cannot run here), with ``more`` settings."""
    from support.doubles import DOUBLE_READS

    return {
        "plugin": "alphafold3",
        "command": [sys.executable, str(DOUBLE_COMMAND)],
        "read_only_paths": DOUBLE_READS,
        "db_dir": DOUBLE_DB_DIR,
        **more,
    }


# The AlphaFold 3 body of spec/native.md §4.2.
SPEC_EXAMPLE: dict[str, Any] = {
    "name": "desi1_dimer",
    "modelSeeds": [42, 7],
    "dialect": "alphafoldserver",
    "version": 1,
    "sequences": [
        {"proteinChain": {"sequence": "MKTAYIAKQRQISFVKSHFSRQ", "count": 2}},
        {"ligand": {"ligand": "CCD_ATP", "count": 1}},
    ],
    "numSamples": 5,
    "diffusionSteps": 200,
    "precision": "bfloat16",
    "runDataPipeline": True,
    "useCache": True,
    "restraints": None,
    "guidance": None,
}


def require_af3_fixtures() -> Path:
    """The fixture folder, or a skip naming where it was looked for."""
    if not AF3_FIXTURES.is_dir():
        pytest.skip(AF3_ABSENT)
    return AF3_FIXTURES


def chains_7adt() -> tuple[str, str]:
    """The sequences of chains A (148 aa) and U (28 aa) of the real job."""
    data = json.loads(next(AF3_LOCAL_JOB.glob("*_data.json")).read_text())
    a, u = (entry["protein"]["sequence"] for entry in data["sequences"])
    return a, u


def af3_body(seeds: list[int], **more: Any) -> dict[str, Any]:
    """The 7ADT job in the AlphaFold Server dialect, as that app's clients send it."""
    a, u = chains_7adt()
    return {
        "name": "7ADT A/U",
        "modelSeeds": seeds,
        "dialect": "alphafoldserver",
        "version": 1,
        "sequences": [
            {"proteinChain": {"sequence": a, "count": 1}},
            {"proteinChain": {"sequence": u, "count": 1}},
        ],
        **more,
    }
