"""spec/native.md §4.1: a submission's ``input.primaries`` is the job's total number of primaries,
over what the editor project (``beam.numberOfParticles``) or the input files (SHIELD-HIT12A's
NSTAT) state. Each task is asked for its share, the engine runs that share, and the merged
results count the total: for the ``builtin`` engine with an editor project, and for the
SHIELD-HIT12A test double (``sim``) with the project and with its input files."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from native_support import FIXTURES, SIM, create, example_project, poll

CONFIG = {
    "services": {
        "builtin": {"plugin": "builtin"},
        "sim": {**SIM, "seconds": 0.2},
        "fluka": {"plugin": "fluka"},  # no rfluka here: refused before it would be run
    }
}
PRIMARIES = 2_000  # ex1's project says 10,000, its files NSTAT 666


def example_files() -> dict[str, str]:
    document = json.loads((FIXTURES / "ex1.json").read_text())
    files: dict[str, str] = document["input"]["inputFiles"]
    return files


def merged_primaries(client: httpx.Client, job_id: str) -> set[str]:
    """``number_of_primaries`` of every merged estimator."""
    results = client.get(f"/api/jobs/{job_id}/results")
    assert results.status_code == 200, results.text
    return {e["metadata"]["number_of_primaries"] for e in results.json()["estimators"]}


@pytest.mark.parametrize(
    ("service", "input_"),
    [
        ("builtin", {"kind": "editor", "project": example_project()}),
        ("sim", {"kind": "editor", "project": example_project()}),
        ("sim", {"kind": "files", "files": example_files()}),
    ],
    ids=["builtin-editor", "sim-editor", "sim-files"],
)
def test_input_primaries_are_what_the_engine_runs(
    client: httpx.Client, service: str, input_: dict[str, Any]
) -> None:
    body = {"service": service, "ntasks": 2, "input": {**input_, "primaries": PRIMARIES}}
    estimates = client.post("/api/validate", json=body).json()["estimates"]
    assert estimates["total_primaries"] == PRIMARIES
    assert estimates["primaries_per_task"] == [1_000, 1_000]
    job_id = create(client, body)
    detail = poll(client, job_id)
    assert detail["status"] == "completed", detail["error"]
    assert detail["input"]["primaries"] == PRIMARIES
    assert [t["requested_primaries"] for t in detail["tasks"]] == [1_000, 1_000]
    assert [t["simulated_primaries"] for t in detail["tasks"]] == [1_000, 1_000]
    assert merged_primaries(client, job_id) == {str(PRIMARIES)}


def test_files_keep_their_own_primaries_without_input_primaries(client: httpx.Client) -> None:
    body = {"service": "sim", "ntasks": 2, "input": {"kind": "files", "files": example_files()}}
    job_id = create(client, body)
    detail = poll(client, job_id)
    assert detail["status"] == "completed", detail["error"]
    assert [t["requested_primaries"] for t in detail["tasks"]] == [333, 333]
    assert [t["simulated_primaries"] for t in detail["tasks"]] == [333, 333]
    assert merged_primaries(client, job_id) == {"666"}


def test_stored_input_states_the_requested_total(client: httpx.Client) -> None:
    files = example_files()
    body = {"service": "sim", "input": {"kind": "files", "files": files, "primaries": 5}}
    job_id = create(client, body)
    beam = client.get(f"/api/jobs/{job_id}/files/input/beam.dat")
    assert beam.status_code == 200
    [nstat] = [line for line in beam.text.splitlines() if line.startswith("NSTAT")]
    assert nstat.split()[1] == "5"
    assert beam.text.replace(nstat, "") == files["beam.dat"].replace(
        next(line for line in files["beam.dat"].splitlines() if line.startswith("NSTAT")), ""
    )
    assert poll(client, job_id)["status"] == "completed"


def estimator_values(client: httpx.Client, job_id: str) -> list[Any]:
    """The merged estimators without their metadata (which names the job)."""
    results = client.get(f"/api/jobs/{job_id}/results").json()
    return [
        {k: v for k, v in estimator.items() if k != "metadata"}
        for estimator in results["estimators"]
    ]


def test_the_submitted_seeds_seed_the_engine(client: httpx.Client) -> None:
    """§4.1: seed i goes to task i. The same seeds give the same results; others do not."""

    def run(seeds: list[int]) -> list[Any]:
        project = {"kind": "editor", "project": example_project(), "primaries": 400}
        job_id = create(
            client, {"service": "builtin", "ntasks": 2, "seeds": seeds, "input": project}
        )
        detail = poll(client, job_id)
        assert detail["status"] == "completed", detail["error"]
        assert [t["seed"] for t in detail["tasks"]] == seeds
        return estimator_values(client, job_id)

    first = run([1_000_003, 17])
    assert run([1_000_003, 17]) == first
    assert run([1_000_004, 17]) != first


def test_seeds_outside_the_engine_range_are_refused(client: httpx.Client) -> None:
    before = client.get("/api/jobs").json()["total"]
    body = {
        "service": "fluka",
        "ntasks": 2,
        "seeds": [5, 900_000_000],
        "input": {"kind": "files", "files": {"a.inp": "START 10\n"}},
    }
    answer = client.post("/api/jobs", json=body)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "seeds", 1]
    assert "from 1 to 899999999" in problem["msg"]
    assert client.get("/api/jobs").json()["total"] == before
    checked = client.post("/api/validate", json=body).json()
    assert checked["valid"] is False
    assert any(e.startswith("seeds.1: the fluka engine takes") for e in checked["errors"])
