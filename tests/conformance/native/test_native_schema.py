"""Schemathesis against ``/openapi.json`` over every ``/api`` route: no 5xx, and every answer
(status code, content type, body) is one the schema declares.

The server runs with API keys on and the test speaks with a key, so the 401 answers are
declared too. A completed ``example`` job (files), a completed ``sim`` job (estimators) and,
with the shared fixtures, a completed ``alphafold3`` job (confidence; the AlphaFold 3 command
is the test double replaying real outputs) are made first, and the ``{id}`` of generated cases
is often one of them, so the fuzzing reaches past 404. The WebSocket route is not in OpenAPI;
the SSE route is fuzzed (its seeded jobs have ended, so a stream ends after its terminal
event). Examples are bounded and derandomized.
"""

from __future__ import annotations

import hashlib

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from native_support import SIM, create, poll, script_body, sim_body
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.alphafold import AF3_LOCAL_JOB, af3_body, double_service
from support.live import LiveServer

KEY = "schema-key-" + "k" * 24
HEADERS = {"Authorization": f"Bearer {KEY}"}
CONFIG = {
    "auth": {
        "enabled": True,
        "keys": [{"sha256": hashlib.sha256(KEY.encode()).hexdigest(), "user_id": 1}],
    },
    "services": {
        "example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10},
        "sim": SIM,
        "alphafold3": double_service(),
    },
}
EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def seeded(server: LiveServer) -> list[str]:
    """Ids (and numbers) of two completed jobs, for the generated cases' ``{id}``."""
    ids: list[str] = []
    with server.client(headers=HEADERS) as client:
        bodies = [script_body("echo out > out.txt\n"), sim_body(ntasks=1)]
        if AF3_LOCAL_JOB.is_dir():
            bodies.append(af3_body([1]))
        for body in bodies:
            job_id = create(client, body)
            detail = poll(client, job_id, lambda d: d["status"] == "completed")
            ids += [job_id, str(detail["number"])]
    return ids


@pytest.fixture(scope="module")
def api(server: LiveServer, seeded: list[str]) -> BaseSchema:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", headers=HEADERS)
    return schema.include(path_regex="^/api/")


def fuzz(operation: APIOperation, mode: GenerationMode, server: LiveServer, ids: list[str]) -> None:
    """Bounded, derandomized cases of one operation; often with a seeded job's ``{id}``."""

    @given(case=operation.as_strategy(mode), pick=st.integers(min_value=0, max_value=7))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, pick: int) -> None:
        if "id" in case.path_parameters and pick < len(ids):
            case.path_parameters["id"] = ids[pick]
        case.call_and_validate(base_url=server.base_url, headers=HEADERS, checks=CHECKS, timeout=30)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_as_declared(
    api: BaseSchema, seeded: list[str], server: LiveServer, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 16, [op.label for op in operations]
    failures = {}
    for operation in operations:
        try:
            fuzz(operation, mode, server, seeded)
        except Unsatisfiable:
            # Negative mode has nothing to break in an operation whose only input is a free string.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # every operation is fuzzed; all failures are reported
            failures[operation.label] = exc
    assert not failures, "\n\n".join(f"{label}:\n{exc}" for label, exc in failures.items())
